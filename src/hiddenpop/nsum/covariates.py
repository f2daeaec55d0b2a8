"""Respondent covariates of the Laga, Bao & Niu scale-up models, as the command line and the study file name them.

* ``x_columns``: ``GROUP=COLUMN`` entries, one per group that has one: COLUMN holds each respondent's answer about
  that group (e.g. how they regard it), the x_ik of the model;
* ``z_global`` / ``z_subpop``: survey columns of respondent covariates with one effect on every group, or one effect
  per group.

:func:`covariate_frame` takes those columns from the survey table for the respondents the survey reader kept, with
the project's one-line errors (file, row, column; never the value). Nothing heavy loads here: the option
declarations in :mod:`hiddenpop.nsum.specs` import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenpop.data.io import read_table
from hiddenpop.errors import ConfigError, DataError, locate

__all__ = ["COVARIATE_MODELS", "SCALINGS", "check_x_entry", "covariate_frame", "named_columns", "parse_x_columns",
           "survey_covariates"]

#: post-hoc scalings of the Laga models (docs/methods/nsum-bayes.md)
SCALINGS = ("all", "weighted")
#: the Bayesian models that take covariates and a scaling
COVARIATE_MODELS = ("correlated", "uncorrelated")


def parse_x_columns(entries: Sequence[str]) -> dict[str, str]:
    """``GROUP=COLUMN`` entries -> {group: column}; ConfigError naming the malformed entry's position."""
    mapping: dict[str, str] = {}
    for position, entry in enumerate(entries, start=1):
        group, sep, column = str(entry).partition("=")
        if not sep or not group.strip() or not column.strip():
            raise ConfigError(f"x_columns entry {position} must read GROUP=COLUMN (a count column, '=', the survey "
                              "column holding that group's covariate)")
        if group.strip() in mapping:
            raise ConfigError(f"x_columns names group {group.strip()!r} twice; give one column per group")
        mapping[group.strip()] = column.strip()
    return mapping


def check_x_entry(entry: str) -> None:
    parse_x_columns([entry])


def covariate_frame(table: pd.DataFrame, columns: Sequence[str], *, rows: np.ndarray | None = None,
                    source: str | None = None) -> pd.DataFrame:
    """The named covariate columns of a survey table as floats, for the respondents kept (``rows``: 1-based data
    rows, as :class:`~hiddenpop.data.ard.ARD` records them; default all). Missing or non-numeric cells raise
    :class:`DataError` naming the file, row and column (never the value)."""
    columns = list(dict.fromkeys(columns))
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise DataError(f"{locate(source, None, absent[0])}covariate column not found in the survey; check the "
                        "spelling in x_columns / z_global / z_subpop")
    positions = np.arange(len(table)) if rows is None else np.asarray(rows, dtype=int) - 1
    out = {}
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values[positions])
        if bad.any():
            row = int(positions[np.flatnonzero(bad)[0]]) + 1
            raise DataError(f"{locate(source, row, column)}covariate is missing or not a number "
                            f"({int(bad.sum())} such cells); the models need complete covariates: fix or drop "
                            "those respondents")
        out[column] = values[positions]
    return pd.DataFrame(out)


def named_columns(x_columns: Sequence[str], z_global: Sequence[str], z_subpop: Sequence[str]) -> list[str]:
    """Every survey column the options name, each once, in the order given."""
    return list(dict.fromkeys([*parse_x_columns(x_columns).values(), *z_global, *z_subpop]))


def survey_covariates(path: str | Path, rows: np.ndarray | None, x_columns: Sequence[str], z_global: Sequence[str],
                      z_subpop: Sequence[str]) -> pd.DataFrame | None:
    """The covariate columns the options name, read from the survey file for the respondents kept (``rows``, the
    1-based data rows the survey reader kept), or None when the options name none."""
    columns = named_columns(x_columns, z_global, z_subpop)
    if not columns:
        return None
    path = Path(path)
    return covariate_frame(read_table(path), columns, rows=rows, source=path.name)
