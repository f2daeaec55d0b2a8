"""The capture package's lazy public API: every export resolves, and importing the package loads no scipy."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_import_is_lazy_every_export_resolves_and_mse_is_the_function():
    out = _run(
        "import sys, types, hiddenpop, hiddenpop.capture as c\n"
        "print('scipy' in sys.modules)\n"
        "from hiddenpop.capture import mse\n"
        "from hiddenpop.capture.lists.models import mse as function\n"
        "print(mse is function, isinstance(mse, types.FunctionType))\n"
        "missing = [name for name in c.__all__ if getattr(c, name, None) is None]\n"
        "rooms = [getattr(__import__(f'hiddenpop.capture.{r}', fromlist=['x']), n, None) is None\n"
        "         for r in ('core', 'closed', 'lists', 'events')\n"
        "         for n in __import__(f'hiddenpop.capture.{r}', fromlist=['x']).__all__]\n"
        "print(missing, any(rooms))\n"
    )
    assert out.splitlines() == ["False", "True True", "[] False"]


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("select_model", "hiddenpop.capture.lists.selection"),
        ("check_extended_mle", "hiddenpop.capture.lists.existence"),
        ("sample_coverage", "hiddenpop.capture.lists.coverage"),
        ("coverage_mth", "hiddenpop.capture.lists.coverage"),
    ],
)
def test_mse_and_coverage_functions_are_exported(name, module):
    import importlib

    import hiddenpop.capture as capture

    assert getattr(capture, name) is getattr(importlib.import_module(module), name)
