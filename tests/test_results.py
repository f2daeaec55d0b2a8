import json

import numpy as np
import pandas as pd
import pytest

from hiddenpop import Estimates, ModelError


def _est():
    return Estimates.from_rows(
        [
            {"quantity": "a", "method": "mle", "estimate": 10.0, "se": 1.0, "lower": 8.0, "upper": 12.0, "level": 0.95},
            {"quantity": "b", "method": "mle", "estimate": float("nan"), "deviance": 3.5},
        ],
        warnings=["careful"],
        seed=3,
    )


def test_core_columns_first_and_extras_kept():
    est = _est()
    assert list(est.table.columns[:7]) == ["quantity", "method", "estimate", "se", "lower", "upper", "level"]
    assert "deviance" in est.table.columns
    assert est.estimate("a") == 10.0


def test_json_is_strict_and_nan_becomes_null():
    payload = json.loads(_est().to_json())
    assert payload["estimates"][1]["estimate"] is None
    assert payload["warnings"] == ["careful"]
    assert payload["seed"] == 3


def test_get_ambiguous_raises_model_error():
    est = _est().combine(_est())
    with pytest.raises(ModelError, match="expected one row"):
        est.get("a")


def test_summary_shows_warnings():
    text = _est().summary()
    assert "careful" in text and "Warnings" in text


def test_plot_returns_axes():
    ax = _est().plot()
    assert len(ax.get_yticks()) == 1
    assert np.isclose(ax.lines[0].get_xdata()[0], 10.0)
    assert isinstance(_est().conf_int(), pd.DataFrame)


def test_lazy_extras_build_once_on_first_read_and_survive_combine():
    from hiddenpop.results import LazyExtras

    calls = []
    extras = LazyExtras({"draws": 1}).lazy("idata", lambda: calls.append(1) or "built")
    assert "idata" in extras and "missing" not in extras and calls == []
    assert sorted(extras) == ["draws", "idata"] and len(extras) == 2 and calls == []
    first = Estimates(table=pd.DataFrame({"quantity": ["a"], "estimate": [1.0]}), extras=extras)
    second = Estimates(table=pd.DataFrame({"quantity": ["b"], "estimate": [2.0]}), extras={"other": 3})
    merged = first.combine(second)
    assert calls == [] and sorted(merged.extras.keys()) == ["draws", "idata", "other"]
    assert merged.extras["idata"] == "built" and merged.extras.get("idata") == "built" and calls == [1]
    assert extras["idata"] == "built" and calls == [1, 1]  # the original keeps its own factory
    assert extras.get("missing", 0) == 0
    with pytest.raises(KeyError):
        extras["missing"]


def test_table_in_final_order_is_kept_as_built_and_independent_of_the_callers_frame():
    rows = [
        {"quantity": "a", "method": "mle", "estimate": 1.5, "se": 0.5, "lower": 0.5, "upper": 2.5, "level": 0.9,
         "period": "1", "flag": True},
        {"quantity": "b", "method": "mle", "estimate": 2.0, "se": np.nan, "lower": np.nan, "upper": np.nan,
         "level": 0.9, "period": "2", "flag": False},
    ]
    ordered = pd.DataFrame(rows, index=[5, 7])  # core columns first: no reordering needed
    shuffled = ordered[["period", "upper", "quantity", "flag", "estimate", "level", "se", "method", "lower"]]
    kept = Estimates(table=ordered).table
    reordered = Estimates(table=shuffled).table
    pd.testing.assert_frame_equal(kept, reordered, check_exact=True)
    assert list(kept.index) == [0, 1] and list(ordered.index) == [5, 7]
    ordered.loc[5, "estimate"] = -1.0  # the caller changing its frame afterwards
    assert kept["estimate"].tolist() == [1.5, 2.0]
