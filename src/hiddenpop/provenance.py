"""What a run ran with: package versions, settings, seeds and SHA-256 of every input.

Same inputs + same seed = same numbers; the provenance block lets a reader check that claim later.
Timings and timestamps live under ``"timing"`` so reproducibility checks can ignore them.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from hiddenpop.data.io import file_sha256

TRACKED_PACKAGES = (
    "hiddenpop",
    "numpy",
    "scipy",
    "pandas",
    "duckdb",
    "statsmodels",
    "jax",
    "numpyro",
    "arviz",
    "scikit-learn",
    "lightgbm",
    "mapie",
    "plotly",
    "matplotlib",
    "python-docx",
)


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def input_record(paths: list[str | Path] | tuple[str | Path, ...]) -> list[dict[str, Any]]:
    """Name and SHA-256 of each input file (names only: no content ever enters provenance)."""
    records = []
    for path in paths:
        p = Path(path)
        records.append({"file": p.name, "sha256": file_sha256(p), "bytes": p.stat().st_size})
    return records


def output_record(folder: str | Path) -> list[dict[str, Any]]:
    """Path (relative to ``folder``), size and SHA-256 of every file a run wrote, in path order; the manifest that
    holds this list is left out."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() != "manifest.json")
    return [{"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
            for p in files]


def provenance(inputs: list[str | Path] | tuple[str | Path, ...] = (), **settings: Any) -> dict[str, Any]:
    return {
        "versions": package_versions(),
        "platform": f"{platform.system()} {platform.machine()}",
        "command": Path(sys.argv[0]).name if sys.argv else "",
        "inputs": input_record(list(inputs)),
        "settings": settings,
    }
