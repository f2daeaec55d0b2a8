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
