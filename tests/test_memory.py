"""The command line's processes leave NumPy's huge-page advice off unless the user's environment says otherwise."""

import os
import subprocess
import sys

import pytest

from hiddenpop.memory import HUGE_PAGES_VARIABLE, prefer_base_pages

PROBE = "import hiddenpop.cli, numpy; print(numpy._core.multiarray._get_madvise_hugepage())"


def run_probe(value: str | None) -> str:
    env = {key: item for key, item in os.environ.items() if key != HUGE_PAGES_VARIABLE}
    if value is not None:
        env[HUGE_PAGES_VARIABLE] = value
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env)
    return done.stdout.strip()


@pytest.mark.parametrize(("value", "expected"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_command_line_sets_huge_pages_before_numpy_loads(value, expected):
    assert run_probe(value) == expected


def test_prefer_base_pages_says_when_it_is_too_late(monkeypatch):
    import numpy  # noqa: F401  (loaded: the setting can no longer reach it)

    monkeypatch.delenv(HUGE_PAGES_VARIABLE, raising=False)
    assert prefer_base_pages() is False
    assert os.environ[HUGE_PAGES_VARIABLE] == "0"
