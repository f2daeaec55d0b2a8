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


def test_degree_histogram_never_hides_degrees_outside_a_bins_edges():
    """The degrees above the 99th percentile get their own open-ended row reaching the largest degree."""
    import numpy as np

    from hiddenpop.nsum.analyses import degree_histogram

    values = np.concatenate([np.arange(1.0, 201.0), [401.0]])
    table = degree_histogram("adult", values, bins=10)
    assert table["respondents"].sum() == values.size
    last = table.iloc[-1]
    assert bool(last["open_ended"]) and last["bin_right"] == 401.0 and last["respondents"] == values[
        values > np.quantile(values, 0.99)].size
    for row in table.itertuples():
        inside = (values >= row.bin_left) & (values <= row.bin_right)
        assert inside.sum() >= row.respondents
    assert not table["open_ended"].iloc[:-1].any()
