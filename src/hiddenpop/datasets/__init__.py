"""Public reference datasets bundled with hiddenpop, as statsmodels and Rcapture bundle theirs.

Every file is a public dataset shipped by an R package of the field (Rcapture, MultipleSystemsEstimation, CARE1,
LCMCR, conting, singleRcapture, networkreporting, networkscaleup, NSUM, surveybootstrap), converted to CSV without
changing a value; the registry (``registry.csv`` beside this file) names each one's source, licence and SHA-256.
None of it is case data.

    from hiddenpop import datasets
    datasets.list()                       # name, family, format, description, source, licence
    hare = datasets.load("rcapture_hare")  # a DataFrame
    datasets.path("mse_UKdat_5")           # a file path, for readers and commands that take paths

The command line: ``hiddenpop datasets list`` and ``hiddenpop datasets export NAME... [--out-dir DIR]``.
"""

from __future__ import annotations

import csv
import difflib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from hiddenpop.data.io import file_sha256
from hiddenpop.errors import ConfigError

__all__ = ["info", "list", "load", "path", "verify"]

_PACKAGE = "hiddenpop.datasets"


@cache
def _registry() -> dict[str, dict[str, str]]:
    text = resources.files(_PACKAGE).joinpath("registry.csv").read_text(encoding="utf-8")
    return {row["name"]: row for row in csv.DictReader(text.splitlines())}


def _entry(name: str) -> dict[str, str]:
    registry = _registry()
    if name not in registry:
        close = difflib.get_close_matches(name, [*registry], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; see `hiddenpop datasets list`"
        raise ConfigError(f"no bundled dataset named {name!r}{hint}")
    return registry[name]


def list() -> Any:
    """The registry as a DataFrame: name, file, family, format, description, source, licence, sha256."""
    return pd.DataFrame(_registry().values())


def info(name: str) -> dict[str, str]:
    """The registry record of one dataset."""
    return dict(_entry(name))


def path(name: str) -> Path:
    """A filesystem path to the bundled file (inside the installed package)."""
    return Path(str(resources.files(_PACKAGE).joinpath("data", _entry(name)["file"])))


def load(name: str) -> Any:
    """The dataset as a pandas DataFrame, read as the reference tests read it (missing cells as NaN)."""
    return pd.read_csv(path(name))


def verify(name: str) -> bool:
    """True when the bundled file's bytes still have the SHA-256 the registry records."""
    return file_sha256(path(name)) == _entry(name)["sha256"]
