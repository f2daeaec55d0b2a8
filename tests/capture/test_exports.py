"""The capture package's lazy public API: every export resolves, and importing the package loads no scipy."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_import_is_lazy_every_export_resolves_and_mse_is_callable():
    out = _run(
        "import sys, hiddenpop, hiddenpop.capture as c\n"
        "print('scipy' in sys.modules)\n"
        "from hiddenpop.capture import mse\n"
        "from hiddenpop.capture.mse import mse as function, NO_MLE\n"
        "print(callable(mse), mse.NO_MLE == NO_MLE, mse.mse is function)\n"
        "missing = [name for name in c.__all__ if getattr(c, name, None) is None]\n"
        "print(missing)\n"
    )
    assert out.splitlines() == ["False", "True True True", "[]"]


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("select_model", "hiddenpop.capture.mse"),
        ("check_extended_mle", "hiddenpop.capture.mse"),
        ("sample_coverage", "hiddenpop.capture.coverage"),
        ("coverage_mth", "hiddenpop.capture.coverage"),
    ],
)
def test_mse_and_coverage_functions_are_exported(name, module):
    import importlib

    import hiddenpop.capture as capture

    assert getattr(capture, name) is getattr(importlib.import_module(module), name)
