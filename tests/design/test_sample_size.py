"""Sample size and margin of error: Study 2's margin, textbook tables, closed forms, CLI."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from cli_commands import run_main
from hiddenpop.design.precision import margin_of_error, required_n_value, sample_size
from hiddenpop.errors import ConfigError


def test_study2_margin_of_error_closed_form():
    # Study 2: 3,600 interviews, population 113,771,856, 99% confidence, p = 0.5, deff = 1 -> +/-2.15%
    result = margin_of_error(3600, confidence=0.99, population=113_771_856)
    z = stats.norm.ppf(0.995)
    expected = z * math.sqrt(0.25 / 3600 * (113_771_856 - 3600) / (113_771_856 - 1))
    assert result.estimate("margin_of_error") == pytest.approx(expected, rel=1e-12)
    assert round(result.estimate("margin_of_error"), 4) == 0.0215
    assert result.get("margin_of_error")["margin_percent"] == 2.15


def test_study2_margin_cli(run_cli):
    done = run_cli(
        "design",
        "sample-size",
        "--population",
        "113771856",
        "--n",
        "3600",
        "--confidence",
        "0.99",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    row = payload["estimates"][0]
    assert row["quantity"] == "margin_of_error"
    assert round(row["estimate"], 4) == 0.0215
    assert payload["settings"]["population"] == 113771856


@pytest.mark.parametrize(
    ("population", "expected"),
    # Krejcie and Morgan (1970) table (95% confidence, 5% margin, p = 0.5), which rounds to the nearest unit
    [(100, 80), (500, 217), (1000, 278), (5000, 357), (10_000, 370), (100_000, 383), (1_000_000, 384)],
)
def test_krejcie_morgan_table(population, expected):
    assert round(required_n_value(0.05, confidence=0.95, population=population)) == expected


def test_infinite_population_and_rounding_up():
    result = sample_size(0.05, confidence=0.95)
    # n0 = 1.96^2 * 0.25 / 0.05^2 = 384.15 -> 385 (always round up so the margin is met)
    assert result.estimate("sample_size") == 385
    assert result.get("sample_size")["unrounded"] == pytest.approx(stats.norm.ppf(0.975) ** 2 * 0.25 / 0.0025)
    assert result.estimate("margin_achieved") <= 0.05
    assert margin_of_error(384).estimate("margin_of_error") > 0.05


def test_round_trip_and_fpc_never_exceeds_population():
    for population in (50, 400, 16_648, 56_193):
        result = sample_size(0.03, confidence=0.99, population=population)
        n = int(result.estimate("sample_size"))
        assert n <= population
        assert (
            margin_of_error(n, confidence=0.99, population=population).estimate("margin_of_error")
            <= 0.03 + 1e-12
        )
        if n > 1:
            assert (
                margin_of_error(n - 1, confidence=0.99, population=population).estimate("margin_of_error")
                > 0.03
            )


def test_design_effect_and_inflation_factors():
    base = sample_size(0.05).get("sample_size")["unrounded"]
    doubled = sample_size(0.05, design_effect=2.0).get("sample_size")["unrounded"]
    assert doubled == pytest.approx(2 * base)
    # Study 1: 80% of reviews came back unknown -> draw 5x the usable reviews needed
    plan = sample_size(0.05, population=56_193, expected_unknown=0.8)
    assert plan.estimate("sample_size_to_draw") == math.ceil(plan.estimate("sample_size") / 0.2)
    with_response = sample_size(0.05, response_rate=0.5)
    assert with_response.estimate("sample_size_to_draw") == 2 * with_response.estimate("sample_size")


def test_margin_with_design_effect_and_proportion():
    result = margin_of_error(1000, confidence=0.95, proportion=0.2, design_effect=1.5)
    assert result.estimate("margin_of_error") == pytest.approx(
        stats.norm.ppf(0.975) * math.sqrt(1.5 * 0.16 / 1000)
    )


def test_small_expected_count_warns():
    assert not sample_size(0.05).warnings
    assert "normal approximation is poor" in margin_of_error(50, proportion=0.05).warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.05, "confidence": 1.2}, "confidence must be strictly between 0 and 1"),
        ({"margin": 0.0}, "margin must be strictly between 0 and 1"),
        ({"margin": 0.05, "population": 0}, "population must be a positive count"),
        ({"margin": 0.05, "design_effect": -1}, "design effect must be positive"),
        ({"margin": 0.05, "response_rate": 0}, "response rate must be in"),
    ],
)
def test_sample_size_config_errors(kwargs, message):
    margin = kwargs.pop("margin")
    with pytest.raises(ConfigError, match=message):
        sample_size(margin, **kwargs)


def test_cli_errors_exit_2(capsys):
    code, out, _ = run_main(
        capsys, "design", "sample-size", "--population", "113771856", "--n", "3600", "--confidence", "0.99"
    )
    assert code == 0 and "2.15" in out  # the table view shows the margin in percentage points
    code, _, err = run_main(capsys, "design", "sample-size", "--margin", "0.05", "--n", "100")
    assert code == 2 and "give exactly one of --margin" in err
    code, _, err = run_main(capsys, "design", "sample-size", "--n", "5000", "--population", "100")
    assert code == 2 and err.startswith("error: n (5000) exceeds the population")
    code, _, err = run_main(capsys, "design", "sample-size", "--margin", "0.05", "--confidence", "95")
    assert code == 2 and "option --confidence must satisfy 0 < confidence < 1; got 95" in err
    code, out, _ = run_main(capsys, "design", "sample-size", "--margin", "0.05", "--format", "csv")
    assert code == 0 and out.startswith("quantity,method,estimate")
