"""National consistency and benchmarking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiddenpop.errors import ConfigError
from hiddenpop.smallarea.national import calibrate, national_consistency


def _table():
    return pd.DataFrame({"area": list("abcd"), "estimate": [0.01, 0.02, 0.005, 0.03],
                         "lower": [0.005, 0.01, 0.002, 0.02], "upper": [0.02, 0.03, 0.01, 0.05]})


def test_consistency_closed_form():
    table = _table()
    population = np.array([100.0, 300.0, 50.0, 50.0])
    result = national_consistency(table["estimate"], population, (0.018, 0.016, 0.02))
    implied = (0.01 * 100 + 0.02 * 300 + 0.005 * 50 + 0.03 * 50) / 500
    assert result["implied_rate"] == pytest.approx(implied)
    assert result["implied_count"] == pytest.approx(implied * 500)
    assert result["within_national_interval"] is (0.016 <= implied <= 0.02)
    with pytest.raises(ConfigError):
        national_consistency(table["estimate"], population, (0.03, 0.016, 0.02))


@pytest.mark.parametrize("method", ["scale", "logit"])
def test_benchmark_hits_national(method):
    table = _table()
    population = np.array([100.0, 300.0, 50.0, 50.0])
    adjusted, info = calibrate(table, population, 0.015, method=method)
    assert info["implied_after"] == pytest.approx(0.015, rel=1e-9)
    assert info["implied_before"] == pytest.approx(national_consistency(table["estimate"], population)["implied_rate"])
    assert (adjusted["lower"] <= adjusted["estimate"]).all() and (adjusted["estimate"] <= adjusted["upper"]).all()
    assert adjusted["estimate_unbenchmarked"].equals(table["estimate"])
    # order of areas is preserved
    assert (np.argsort(adjusted["estimate"].to_numpy()) == np.argsort(table["estimate"].to_numpy())).all()
    if method == "scale":
        assert adjusted["estimate"].to_numpy() / table["estimate"].to_numpy() == pytest.approx(info["factor"])


def test_benchmark_rejects_bad_method():
    with pytest.raises(ConfigError):
        calibrate(_table(), None, 0.01, method="rake-it")


def test_the_old_module_name_still_works_with_a_deprecation_warning():
    import importlib
    import sys

    sys.modules.pop("hiddenpop.smallarea.benchmark", None)
    with pytest.warns(DeprecationWarning, match="hiddenpop.smallarea.national"):
        old = importlib.import_module("hiddenpop.smallarea.benchmark")
    assert old.benchmark is calibrate and old.national_consistency is national_consistency
