"""Shared test fixtures: where the reference material lives, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    candidate = Path(os.environ.get("HIDDENPOP_SHARED", ROOT.parent / "shared"))
    if not (candidate / "fixtures").is_dir():
        raise RuntimeError(
            f"reference material not found at {candidate}; CI and developers have ../shared beside the checkout "
            "(set HIDDENPOP_SHARED to point elsewhere)"
        )
    return candidate


SHARED = _shared_dir()
FIXTURES = SHARED / "fixtures"
NSUM_DATA = SHARED / "nsum" / "data"
CAPTURE_DATA = SHARED / "capture" / "data"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def run_cli(tmp_path):
    """Run ``hiddenpop ARGS`` in a subprocess; returns CompletedProcess (text mode)."""

    def _run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **(env or {})}
        full_env.pop("HIDDENPOP_DEBUG", None)
        return subprocess.run(
            [sys.executable, "-m", "hiddenpop.cli", *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd or tmp_path,
            timeout=900,
        )

    return _run
