"""Local calendar days without a per-row time-zone call, and pairs read back in order.

The reader turns each instant into its calendar day in the study's time zone by integer arithmetic on the
instant's microseconds, choosing the UTC offset from the zone's transitions (:func:`zone_offsets`, found with
DuckDB's own time-zone data). Reference: DuckDB's ``CAST(timezone(zone, instant) AS DATE)`` (ICU), what the
reader computed per row before, at every transition of 1970-2100 (one second and one microsecond either side,
and every hour for 30 hours either side, so the local midnights next to each transition are crossed), and at
random instants; plus hand-worked cases checked against the published rules.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest

from hiddenpop.capture.events import reader
from hiddenpop.capture.events.reader import (
    TIME_RANGE,
    _check_sorted,
    _local_day_sql,
    read_events,
    zone_offsets,
)
from hiddenpop.privacy import Pseudonymiser

ZONES = ["UTC", "Asia/Manila", "Europe/London", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kathmandu",
         "Pacific/Apia", "America/St_Johns", "America/Los_Angeles"]


def _micros(text: str) -> int:
    return int(np.datetime64(text, "us").astype(np.int64))


@pytest.mark.parametrize("zone", ZONES)
def test_local_day_equals_duckdb_time_zone_conversion(zone):
    con = duckdb.connect()
    offsets = zone_offsets(con, zone)
    assert len(offsets.offsets) == len(offsets.starts) + 1
    assert list(offsets.starts) == sorted(set(offsets.starts))
    low, high = (_micros(bound) for bound in TIME_RANGE)
    near = [t + d for t in offsets.starts for d in (-1_000_000, -1, 0, 1, 1_000_000)]
    near += [t + h * 3_600_000_000 for t in offsets.starts for h in range(-30, 31)]
    rng = np.random.default_rng(11)
    instants = np.concatenate([np.array(near, dtype=np.int64), rng.integers(low, high, 20_000),
                               np.array([low, low + 1, high - 1])])
    instants = instants[(instants >= low) & (instants < high)]
    con.execute("CREATE TABLE t AS SELECT make_timestamptz(us) AS parsed FROM (SELECT unnest(?::BIGINT[]) AS us)",
                [instants.tolist()])
    fast = _local_day_sql("parsed", offsets)
    zone_literal = "'" + zone + "'"
    total, wrong = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {fast} <> CAST(timezone({zone_literal}, parsed) AS DATE)) FROM t"
    ).fetchall()[0]
    assert total == instants.size
    assert wrong == 0


@pytest.mark.parametrize(("zone", "instant", "day"), [
    # British Summer Time began 2021-03-28 01:00 UTC and ended 2021-10-31 01:00 UTC
    ("Europe/London", "2021-03-28T00:59:59", "2021-03-28"),
    ("Europe/London", "2021-10-30T23:30:00", "2021-10-31"),  # 00:30 BST
    ("Europe/London", "2021-12-31T23:30:00", "2021-12-31"),  # 23:30 GMT
    # Brazil's DST of 2018 began at local midnight, 2018-11-04 03:00 UTC: 00:00-00:59 did not exist
    ("America/Sao_Paulo", "2018-11-04T02:59:59", "2018-11-03"),
    ("America/Sao_Paulo", "2018-11-04T03:00:00", "2018-11-04"),
    # Samoa skipped 30 December 2011: 23:59:59 on the 29th (UTC-10) was followed by 00:00 on the 31st (UTC+14)
    ("Pacific/Apia", "2011-12-30T09:59:59", "2011-12-29"),
    ("Pacific/Apia", "2011-12-30T10:00:00", "2011-12-31"),
    # Manila, UTC+8 without DST since 1990
    ("Asia/Manila", "2017-03-01T15:59:59", "2017-03-01"),
    ("Asia/Manila", "2017-03-01T16:00:00", "2017-03-02"),
    # Kathmandu, UTC+5:45 since 1986
    ("Asia/Kathmandu", "2020-06-30T18:14:59", "2020-06-30"),
    ("Asia/Kathmandu", "2020-06-30T18:15:00", "2020-07-01"),
])
def test_local_day_at_hand_worked_instants(zone, instant, day):
    con = duckdb.connect()
    day_sql = _local_day_sql("parsed", zone_offsets(con, zone))
    got = con.execute(f"SELECT {day_sql} FROM (SELECT make_timestamptz(?) AS parsed)", [_micros(instant)]).fetchall()
    assert got[0][0] == dt.date.fromisoformat(day)


def test_pairs_out_of_order_are_refused():
    _check_sorted(np.array([1, 1, 2]), np.array([3, 4, 0]))
    with pytest.raises(RuntimeError, match="order"):
        _check_sorted(np.array([1, 2, 1]), np.array([3, 0, 5]))
    with pytest.raises(RuntimeError, match="order"):
        _check_sorted(np.array([1, 1]), np.array([4, 4]))


@pytest.mark.parametrize("path", ["in-memory", "per-batch"])
def test_pairs_of_a_larger_log_stream_in_order_with_several_threads(tmp_path, monkeypatch, path):
    # enough rows for DuckDB to split the work over threads; iter_pairs reads the table without ORDER BY
    import pandas as pd

    if path == "per-batch":
        monkeypatch.setattr(reader, "_stage_in_memory", lambda *args, **kwargs: False)

    rng = np.random.default_rng(3)
    n = 600_000
    ids = rng.integers(0, 40_000, n)
    seconds = rng.integers(0, 400 * 86400, n)
    frame = pd.DataFrame({
        "ip": [f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}" for i in ids],
        "time": (np.datetime64("2018-01-01T00:00:00") + seconds.astype("timedelta64[s]")).astype(str),
    })
    frame.to_parquet(tmp_path / "r.parquet", index=False, row_group_size=50_000)
    log = read_events([tmp_path / "r.parquet"], identifier="ip", time="time",
                      key=Pseudonymiser(b"local-day-order-test-key-0000001"), threads=2)
    assert log.ingest == path
    whole = log.connection.execute("SELECT code, day FROM pairs ORDER BY code, day").fetchnumpy()
    batches = list(log.iter_pairs(100_000))
    np.testing.assert_array_equal(np.concatenate([c for c, _ in batches]), whole["code"])
    np.testing.assert_array_equal(np.concatenate([d for _, d in batches]), whole["day"])
    distinct = len(set(zip(ids.tolist(), (seconds // 86400).tolist(), strict=True)))
    assert log.n_pairs == whole["code"].size == distinct
    assert log.n_identifiers == np.unique(ids).size
