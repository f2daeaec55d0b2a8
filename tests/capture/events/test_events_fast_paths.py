"""The optimised report-log paths agree with straightforward computations on small, messy inputs.

* ingestion: identifiers are trimmed, validated and coded once per *distinct raw value*, timestamps are parsed
  before trimming; the (code, day) pairs and the audit must equal what a row-by-row pandas computation gives,
  including whitespace variants of one identifier, unknown tokens in any case, blank and padded timestamps.
* counting: batches regrouped for speed give the same history counts as the brute-force implementation.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.events.cleaning import DEFAULT_MISSING_TOKENS, CleaningRules
from hiddenpop.capture.events.occasions import pattern_counts_naive, plan_windows, window_pattern_counts
from hiddenpop.capture.events.reader import read_events
from hiddenpop.privacy import Pseudonymiser

KEY = Pseudonymiser(b"fast-path-equivalence-key-000001")

MESSY = pd.DataFrame({
    "ip": ["1.1.1.1", " 1.1.1.1", "1.1.1.1  ", "UNKNOWN", " na ", "", None, "2.2.2.2", "2001:db8::1",
           "3.3.3.3", "3.3.3.3", "2.2.2.2", "N/A", "-", "4.4.4.4", "4.4.4.4", "5.5.5.5", "1.1.1.1"],
    "time": ["2017-03-01T23:30:00Z", "  2017-03-02T08:00:00+08:00 ", "2017-03-03 10:00:00", "2017-03-01T01:00:00Z",
             "2017-03-01T01:00:00Z", "2017-03-01T01:00:00Z", "2017-03-01T01:00:00Z", "", "2017-03-04T05:00:00Z",
             "   ", None, "2017-03-05T16:30:00Z", "2017-03-01T01:00:00Z", "2017-03-01T01:00:00Z",
             "2017-03-02T00:00:00+08:00", "2017-03-06T00:00:00+08:00", "2017-03-07T12:00:00Z",
             "2017-03-09T23:59:59Z"],
    "country": ["PH", "PH", "ph ", "PH", "PH", "PH", "PH", "PH", "PH", "PH", "PH", "PH", "PH", "PH", "XX", "PH",
                "PH", None],
    "category": ["std", "std", "std", "std", "std", "std", "std", "std", "std", "std", "std", "std", "std", "std",
                 "std", "viral", "std", "std"],
})


def _expected(frame: pd.DataFrame, rules: CleaningRules):
    """Row-by-row reference: audit counts and the set of (code, day) pairs."""
    ident = frame["ip"].astype("string").str.strip()
    valid_ident = ident.notna() & ~ident.str.lower().isin(DEFAULT_MISSING_TOKENS)
    text = frame["time"].astype("string").str.strip()
    has_time = text.notna() & (text != "")
    instants = pd.to_datetime(text.where(has_time), utc=True, format="ISO8601")
    local_day = instants.dt.tz_convert(rules.timezone).dt.date
    country_ok = frame["country"].astype("string").str.strip().str.upper().eq(rules.country).fillna(False)
    viral = frame["category"].astype("string").str.strip().eq("viral").fillna(False)
    ipv6 = ident.str.contains(":", regex=False).fillna(False)
    keep = valid_ident.copy()
    counts = [len(frame), int(keep.sum())]
    for condition in (has_time, ~ipv6, country_ok, ~viral):
        keep &= condition.astype(bool)
        counts.append(int(keep.sum()))
    pseudonyms = sorted({KEY.hash_one(v) for v in ident[valid_ident]})
    code_of = {p: i for i, p in enumerate(pseudonyms)}
    kept = pd.DataFrame({"ident": ident[keep], "day": local_day[keep]})
    origin = kept["day"].min()
    pairs = {(code_of[KEY.hash_one(i)], (d - origin).days) for i, d in zip(kept["ident"], kept["day"], strict=True)}
    return counts, pairs, origin, len(pseudonyms)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("timezone", ["UTC", "Asia/Manila"])
def test_ingestion_equals_row_by_row_reference(tmp_path, fmt, timezone):
    path = tmp_path / f"messy.{fmt}"
    if fmt == "csv":
        MESSY.to_csv(path, index=False)
        # pandas writes None and "" alike; the CSV reader sees both as missing, so the reference must too
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    else:
        MESSY.to_parquet(path, index=False)
        frame = MESSY
    rules = CleaningRules(country_column="country", country="PH", exclude=[("category", "viral")],
                          exclude_ipv6=True, timezone=timezone)
    log = read_events([path], identifier="ip", time="time", key=KEY, rules=rules)
    counts, pairs, origin, n_codes = _expected(frame, rules)
    audit = log.audit.set_index("step")
    steps = ["read", "missing_identifier", "missing_timestamp", "ipv6", "country", "exclude category=value #1"]
    assert [int(audit.loc[s, "rows_out"]) for s in steps] == counts
    got = {tuple(map(int, r)) for r in log.connection.execute("SELECT code, day FROM pairs").fetchall()}
    assert got == pairs
    assert audit.loc["dedupe", "rows_out"] == len(pairs) == log.n_pairs
    assert log.origin == origin
    # codes are dense over every valid identifier (pseudonym order), whatever later steps removed
    assert max(c for c, _ in pairs) < n_codes


def test_pairs_stream_in_batches_that_never_split_an_identifier(tmp_path):
    rng = np.random.default_rng(5)
    n = 4_000
    frame = pd.DataFrame({
        "ip": [f"10.0.{i // 256}.{i % 256}" for i in rng.integers(0, 600, n)],
        "time": pd.Timestamp("2018-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 70 * 86400, n), unit="s"),
    })
    frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    log = read_events([tmp_path / "r.parquet"], identifier="ip", time="time", key=KEY)
    whole = log.connection.execute("SELECT code, day FROM pairs ORDER BY code, day").fetchnumpy()
    plan = plan_windows(log.first_day, log.last_day, occasion="7D", occasions=4, step="1D")
    brute_force = pattern_counts_naive(whole["code"], whole["day"], plan)
    assert brute_force[:, 1:].sum() > 0
    for batch_rows in (500, 1_777, 1_000_000):
        batches = list(log.iter_pairs(batch_rows))
        codes = np.concatenate([c for c, _ in batches])
        days = np.concatenate([d for _, d in batches])
        np.testing.assert_array_equal(codes, whole["code"])
        np.testing.assert_array_equal(days, whole["day"])
        for (c1, _), (c2, _) in itertools.pairwise(batches):
            assert c1[-1] < c2[0]
        if batch_rows < 1_000:
            assert len(batches) > 1
        np.testing.assert_array_equal(window_pattern_counts(iter(batches), plan), brute_force)


def test_engine_settings_are_explicit_and_recorded(tmp_path, run_cli):
    MESSY.to_parquet(tmp_path / "r.parquet", index=False)
    log = read_events([tmp_path / "r.parquet"], identifier="ip", time="time", key=KEY, threads=1,
                      memory_limit="500MB")
    assert log.engine["threads"] == 1
    assert log.engine["memory_limit"].endswith("MiB") and float(log.engine["memory_limit"].split()[0]) < 500
    assert any("DuckDB" in note and "1 threads" in note for note in log.notes)
    key = tmp_path / "key.txt"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    done = run_cli("capture", "histories", str(tmp_path / "r.parquet"), "--id", "ip", "--time", "time",
                   "--occasion", "1D", "--occasions", "2", "--key-file", key, "--threads", "1",
                   "--memory-limit", "400MB", "--format", "json", "--quiet")
    assert done.returncode == 0, done.stderr
    engine = json.loads(done.stdout)["provenance"]["settings"]["engine"]
    assert engine["threads"] == 1 and float(engine["memory_limit"].split()[0]) < 400
