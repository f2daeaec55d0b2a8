"""CLI: capture events / histories / open; outputs and errors never contain a raw identifier."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from hiddenpop.capture.events.rolling import SERIES_COLUMNS
from hiddenpop.simulate.reports import simulate_reports
from refdata import CAPTURE_DATA, load_fixture

FAULTS = dict(missing_identifier=7, missing_timestamp=3, ipv6=5, foreign=9, flagged=11, before_start=4)


@pytest.fixture(scope="module")
def stream():
    return simulate_reports(initial=600, arrival_rate=1.0, mean_stay_days=200, days=364, rate_median=0.03,
                            rate_sdlog=0.5, seed=5, **FAULTS)


@pytest.fixture
def setup(stream, tmp_path):
    stream.write(tmp_path / "reports.csv", files=2)
    key = tmp_path / "key.txt"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    raw = [ip for ip in stream.frame()["ip"].unique() if ip != "unknown"]
    return tmp_path, key, raw


def _assert_no_identifier(texts: list[str], raw: list[str]) -> None:
    pattern = re.compile(r"(?<![0-9A-Fa-f.:])(" + "|".join(map(re.escape, raw)) + r")(?![0-9A-Fa-f.:])")
    for text in texts:
        match = pattern.search(text)
        assert match is None, f"raw identifier leaked: {match and match.group(0)[:3]}..."


COMMON = ["--id", "ip", "--time", "time", "--country-column", "country", "--country", "PH",
          "--exclude", "category=viral", "--exclude-ipv6", "--start", "2014-01-01", "--timezone", "Asia/Manila"]


def test_events_writes_series_audit_figures_without_identifiers(setup, stream, run_cli):
    tmp_path, key, raw = setup
    out = tmp_path / "run"
    done = run_cli("capture", "events", str(tmp_path / "reports_*.csv"), *COMMON, "--occasion", "7D",
                   "--occasions", "4", "--step", "3D", "--base", "5485000", "--key-file", key, "--out-dir", out,
                   "--quiet")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [".hiddenpop-output.json", "audit.csv", "result.json", "series.csv", "series.html", "series.png"]
    series = pd.read_csv(out / "series.csv", keep_default_na=False, na_values=[""])
    assert list(series.columns) == SERIES_COLUMNS
    assert len(series) == len(range(0, 364 - 27, 3)) and (series["model"] == "Mth Chao (LB)").all()
    audit = pd.read_csv(out / "audit.csv").set_index("step")
    for step in ("missing_identifier", "missing_timestamp", "ipv6", "country", "date_range",
                 "exclude category=viral", "dedupe"):
        # the excluded value is recorded by position, never as given (it may be an identifier)
        assert audit.loc[step.replace("=viral", "=value #1"), "removed"] == stream.injected[step]
    html = (out / "series.html").read_text()
    assert html.count("plotly.js v") == 1 and "<script src=" not in html  # plotly.js inlined once
    result = json.loads((out / "result.json").read_text())
    assert result["tables"]["audit"][0]["step"] == "read"
    assert len(result["provenance"]["settings"]["key_fingerprint"]) == 12
    texts = [p.read_bytes().decode("latin-1") for p in out.iterdir()] + [done.stdout, done.stderr]
    _assert_no_identifier(texts, raw)


def test_histories_then_open_model(setup, run_cli):
    tmp_path, key, raw = setup
    out = tmp_path / "hist"
    done = run_cli("capture", "histories", str(tmp_path / "reports_*.csv"), *COMMON, "--end", "2014-12-30",
                   "--occasion", "28D", "--occasions", "13", "--key-file", key, "--out-dir", out, "--quiet")
    assert done.returncode == 0, done.stderr
    histories = pd.read_csv(out / "histories.csv", dtype={"history": str})
    assert len(histories) == 2**13 - 1 and histories["window_start"].nunique() == 1
    assert histories["count"].sum() > 0
    fitted = run_cli("capture", "open", out / "histories.csv", "--format", "json")
    assert fitted.returncode == 0, fitted.stderr
    payload = json.loads(fitted.stdout)
    quantities = {row["quantity"] for row in payload["estimates"]}
    assert {"abundance", "survival", "arrivals", "total_ever_present"} <= quantities
    texts = [p.read_text() for p in out.iterdir()] + [done.stdout, done.stderr, fitted.stdout, fitted.stderr]
    _assert_no_identifier(texts, raw)


def test_open_command_reproduces_rcapture(run_cli):
    expected = load_fixture("capture_duck_open.json")["expected"]
    done = run_cli("capture", "open", CAPTURE_DATA / "rcapture_duck.csv", "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["diagnostics"]["deviance"] == pytest.approx(expected["deviance"], rel=1e-6)
    total = next(r for r in payload["estimates"] if r["quantity"] == "total_ever_present")
    assert total["estimate"] == pytest.approx(expected["total_ever_present"], rel=1e-6)


def test_errors_are_one_line_exit_2_and_never_echo_identifiers(setup, run_cli):
    tmp_path, key, raw = setup
    no_key = run_cli("capture", "events", str(tmp_path / "reports_*.csv"), "--id", "ip", "--time", "time",
                     env={"HIDDENPOP_KEY": ""})
    assert no_key.returncode == 2 and "no pseudonymisation key" in no_key.stderr
    bad = tmp_path / "bad.csv"
    frame = pd.DataFrame({"ip": raw[:3], "time": ["2014-01-02T10:00:00+08:00", "not a time", "2014-01-03"]})
    frame.to_csv(bad, index=False)
    bad_time = run_cli("capture", "events", bad, "--id", "ip", "--time", "time", "--key-file", key)
    assert bad_time.returncode == 2
    assert "bad.csv, row 2, column 'time'" in bad_time.stderr
    wrong_column = run_cli("capture", "events", bad, "--id", "address", "--time", "time", "--key-file", key)
    assert wrong_column.returncode == 2 and "column 'address'" in wrong_column.stderr
    for done in (no_key, bad_time, wrong_column):
        assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error:")
    _assert_no_identifier([bad_time.stderr, wrong_column.stderr, bad_time.stdout], raw)


def test_the_series_figure_is_the_same_file_every_time(tmp_path):
    """Plotly draws a random element id per figure; the written page must not change between identical runs."""
    from hiddenpop.capture.events.rolling import plot_series_html

    series = pd.DataFrame({"window_start": ["2020-01-01", "2020-01-02"], "window_end": ["2020-01-28", "2020-01-29"],
                           "observed": [10, 12], "estimate": [20.0, 25.0], "lower": [15.0, 18.0],
                           "upper": [30.0, 35.0], "per_10000": [1.0, 1.2]})
    first = plot_series_html(series, tmp_path / "a.html", title="t").read_bytes()
    second = plot_series_html(series, tmp_path / "b.html", title="t").read_bytes()
    assert first == second


def test_events_rerun_writes_the_same_bytes(setup, run_cli):
    """Two runs with the same inputs and key: every file identical (the plot's id comes from its content)."""
    tmp_path, key, _raw = setup
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        done = run_cli("capture", "events", str(tmp_path / "reports_*.csv"), *COMMON, "--occasion", "7D",
                       "--occasions", "4", "--step", "7D", "--key-file", key, "--out-dir", out, "--quiet")
        assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir()) and "series.html" in names
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_histories_in_primary_periods_then_robust_design(setup, run_cli):
    tmp_path, key, raw = setup
    out = tmp_path / "robust"
    done = run_cli("capture", "histories", str(tmp_path / "reports_*.csv"), *COMMON, "--occasion", "2D",
                   "--occasions", "7", "--periods", "4", "--key-file", key, "--out-dir", out, "--quiet")
    assert done.returncode == 0, done.stderr
    histories = pd.read_csv(out / "histories.csv")
    occasions = [f"p{i}_{j}" for i in range(1, 5) for j in range(1, 8)]
    assert list(histories.columns) == ["window_start", "window_end", *occasions, "count"]
    assert histories["window_start"].nunique() == 364 // 56  # back-to-back windows of 4 x 7 x 2 days
    assert (histories[occasions].sum(axis=1) > 0).all() and (histories["count"] > 0).all()
    first = histories["window_start"].iloc[0]
    fitted = run_cli("capture", "robust", out / "histories.csv", "--periods", "7,7,7,7", "--window", first,
                     "--format", "json")
    assert fitted.returncode == 0, fitted.stderr
    payload = json.loads(fitted.stdout)
    sizes = [row for row in payload["estimates"] if row["quantity"] == "abundance"]
    assert len(sizes) == 4 and all(row["estimate"] > 0 for row in sizes)
    several = run_cli("capture", "robust", out / "histories.csv", "--periods", "7,7,7,7")
    assert several.returncode == 2 and "choose one with --window" in several.stderr
    texts = [p.read_text() for p in out.iterdir()] + [done.stdout, done.stderr, fitted.stdout, fitted.stderr]
    _assert_no_identifier(texts, raw)
