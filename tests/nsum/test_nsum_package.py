import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (module caches and start-up imports are those of a new process)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def test_public_names_are_the_functions_even_after_submodule_imports():
    code = (
        "import hiddenpop.nsum.estimators, hiddenpop.nsum.degrees\n"
        "from hiddenpop import nsum\n"
        "from hiddenpop.nsum import degree, estimate, consistency\n"
        "assert callable(degree) and callable(estimate) and callable(consistency)\n"
        "assert nsum.degree is degree\n"
    )
    _python(code)


def test_cli_start_up_does_not_import_heavy_libraries():
    code = (
        "import sys, hiddenpop.cli\n"
        "heavy = [m for m in ('jax', 'scipy.stats', 'numpyro', 'duckdb', 'lightgbm', 'statsmodels', 'sklearn')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    assert _python(code).stdout.strip() == ""
