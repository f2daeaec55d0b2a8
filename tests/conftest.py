"""Shared test fixtures: where the reference material lives, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from refdata import CAPTURE_DATA, FIXTURES, NSUM_DATA, ROOT, load_fixture  # noqa: F401 (re-exported)


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
