"""Report-log ingestion: in-reader pseudonymisation, audit counts equal injected faults, time zones, errors."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.events.cleaning import CleaningRules, parse_exclusions
from hiddenpop.capture.events.reader import connect, read_events
from hiddenpop.errors import ConfigError, DataError, PrivacyError
from hiddenpop.privacy import Pseudonymiser, load_key
from hiddenpop.simulate.reports import simulate_reports

KEY = Pseudonymiser(bytes(range(32)))
FAULTS = dict(missing_identifier=17, missing_timestamp=5, ipv6=11, foreign=23, flagged=31, before_start=13)


def _rules(**extra) -> CleaningRules:
    base = dict(country_column="country", country="PH", exclude=[("category", "viral")],
                start=dt.date(2014, 1, 1), exclude_ipv6=True, timezone="Asia/Manila")
    return CleaningRules(**(base | extra))


@pytest.fixture(scope="module")
def stream():
    return simulate_reports(initial=1500, days=90, rate_median=0.05, rate_sdlog=0.7, seed=11, **FAULTS)


@pytest.mark.parametrize("key_bytes", [bytes(range(32)), b"x" * 100, "clé-secrète-αβγ-0123".encode()])
def test_duckdb_pseudonyms_equal_python_pseudonyms(key_bytes):
    key = Pseudonymiser(key_bytes)
    identifiers = ["203.0.113.7", "2001:db8::1", "10.0.0.1", "ü-ñ-漢字", "a" * 300]
    con = connect(key)
    con.register("ids", pd.DataFrame({"ident": identifiers}))
    from_duckdb = [r[0] for r in con.execute("SELECT hiddenpop_pseudonym(ident) FROM ids").fetchall()]
    assert from_duckdb == [key.hash_one(i) for i in identifiers]
    assert from_duckdb == key.hash_many(identifiers)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_audit_counts_equal_injected_faults_exactly(stream, tmp_path, fmt):
    paths = stream.write(tmp_path / f"reports.{fmt}", files=3)
    log = read_events([str(tmp_path / f"reports_*.{fmt}")], identifier="ip", time="time", key=KEY, rules=_rules())
    audit = log.audit.set_index("step")
    injected = stream.injected
    assert audit.loc["read", "rows_out"] == injected["rows"] == stream.n_rows
    for step in ("missing_identifier", "missing_timestamp", "ipv6", "country", "date_range",
                 "exclude category=viral", "dedupe"):
        # the excluded value is recorded by position, never as given (it may be an identifier)
        name = step.replace("=viral", "=value #1")
        assert audit.loc[name, "removed"] == injected[step], step
    assert audit.loc["dedupe", "rows_out"] == injected["clean_pairs"] == log.n_pairs
    # the audit chains: rows_out of each step is rows_in of the next
    assert (log.audit["rows_in"].iloc[1:].to_numpy() == log.audit["rows_out"].iloc[:-1].to_numpy()).all()
    assert (log.audit["removed"] == log.audit["rows_in"] - log.audit["rows_out"]).all()
    assert len(paths) == 3


def test_pairs_match_the_simulated_reports(stream, tmp_path):
    stream.write(tmp_path / "reports.parquet")
    log = read_events([tmp_path / "reports.parquet"], identifier="ip", time="time", key=KEY, rules=_rules())
    valid = (stream.identifier_index >= 0) & (stream.identifier_index < stream.n_identifiers) & (
        stream.category == "standard") & ~np.isnan(stream.seconds) & (stream.seconds >= 0)
    days = np.floor(stream.seconds[valid] / 86400).astype(int)
    expected = np.unique(stream.identifier_index[valid].astype(np.int64) * 1000 + days)
    got = log.connection.execute("SELECT day, count(*) FROM pairs GROUP BY day ORDER BY day").fetchall()
    per_day = np.bincount(expected % 1000, minlength=stream.days)
    assert [c for _, c in got] == per_day[per_day > 0].tolist()
    assert log.n_identifiers == np.unique(expected // 1000).size
    assert log.origin == dt.date(2014, 1, 1)


def test_days_follow_the_declared_time_zone(tmp_path):
    path = tmp_path / "tz.csv"
    pd.DataFrame({
        "ip": ["1.1.1.1", "1.1.1.1", "2.2.2.2", "3.3.3.3"],
        # 23:30 UTC on 1 March is 07:30 on 2 March in Manila; the naive one is read in --input-timezone
        "time": ["2017-03-01T23:30:00Z", "2017-03-02T08:00:00+08:00", "2017-03-01 20:00:00", "2017-03-01T12:00:00Z"],
    }).to_csv(path, index=False)

    def days(**kw):
        log = read_events([path], identifier="ip", time="time", key=KEY, rules=CleaningRules(**kw))
        rows = log.connection.execute("SELECT day FROM pairs ORDER BY day").fetchall()
        return log.origin, [r[0] for r in rows]

    origin, utc_days = days(timezone="UTC")
    assert origin == dt.date(2017, 3, 1) and utc_days == [0, 0, 0, 1]  # 1.1.1.1 seen on two UTC days
    origin, manila_days = days(timezone="Asia/Manila")
    assert origin == dt.date(2017, 3, 1) and manila_days == [0, 1, 1]  # 1.1.1.1 twice on 2 March: one pair
    origin, naive_manila = days(timezone="Asia/Manila", input_timezone="Asia/Manila")
    # the naive 20:00 is now Manila time: still 1 March; 2.2.2.2 on day 0
    assert naive_manila == [0, 0, 1]


def test_missing_key_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("HIDDENPOP_KEY", raising=False)
    with pytest.raises(PrivacyError, match="no pseudonymisation key"):
        load_key(None)


def test_bad_timestamp_names_file_row_column_without_identifier(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"ip": ["9.8.7.6", "5.4.3.2"], "time": ["2017-01-01T00:00:00Z", "yesterday"]}).to_csv(
        path, index=False)
    with pytest.raises(DataError) as info:
        read_events([path], identifier="ip", time="time", key=KEY)
    message = str(info.value)
    assert "bad.csv, row 2, column 'time'" in message
    assert "5.4.3.2" not in message and "9.8.7.6" not in message


def test_configuration_errors(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame({"ip": ["1.1.1.1"], "time": ["2017-01-01"]}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="column 'addr'"):
        read_events([path], identifier="addr", time="time", key=KEY)
    with pytest.raises(DataError, match="no file matches"):
        read_events([str(tmp_path / "none_*.csv")], identifier="ip", time="time", key=KEY)
    with pytest.raises(ConfigError, match="time zone"):
        read_events([path], identifier="ip", time="time", key=KEY, rules=CleaningRules(timezone="Mars/Base"))
    with pytest.raises(ConfigError):
        CleaningRules(country="PH").validate()
    with pytest.raises(ConfigError):
        parse_exclusions(["category"])
    with pytest.raises(ConfigError, match="dedupe"):
        CleaningRules(dedupe="hour").validate()


def test_week_dedupe_and_no_dedupe_audit(stream, tmp_path):
    stream.write(tmp_path / "r.csv")
    none = read_events([tmp_path / "r.csv"], identifier="ip", time="time", key=KEY, rules=_rules(dedupe="none"))
    assert "dedupe" not in set(none.audit["step"])
    week = read_events([tmp_path / "r.csv"], identifier="ip", time="time", key=KEY, rules=_rules(dedupe="week"))
    day = read_events([tmp_path / "r.csv"], identifier="ip", time="time", key=KEY, rules=_rules())
    assert week.audit.iloc[-1]["rows_out"] < day.audit.iloc[-1]["rows_out"]
    # captures per day are what histories use, whatever the dedupe unit reported in the audit
    assert week.n_pairs == day.n_pairs


def test_connection_holds_no_raw_identifier(stream, tmp_path):
    stream.write(tmp_path / "r.parquet")
    log = read_events([tmp_path / "r.parquet"], identifier="ip", time="time", key=KEY, rules=_rules())
    assert log.ingest == "in-memory" and log.pair_arrays is not None
    # nothing is left in DuckDB but the view of the (code, day) arrays
    tables = [r[0] for r in log.connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    assert tables == []
    views = log.connection.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views == [("pairs",)]
    columns = [r[0] for r in log.connection.execute("DESCRIBE pairs").fetchall()]
    assert columns == ["code", "day"]
    assert isinstance(log.connection, duckdb.DuckDBPyConnection)
