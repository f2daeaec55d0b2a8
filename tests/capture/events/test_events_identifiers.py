"""Identifier hygiene: one canonical form per IP address (SQL and Python agree), invalid addresses counted,
extreme timestamps refused, excluded values never recorded as given."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hiddenpop.capture.events.cleaning import CleaningRules
from hiddenpop.capture.events.reader import canonical_ip_sql, connect, read_events
from hiddenpop.errors import DataError
from hiddenpop.privacy import Pseudonymiser, canonical_ip

KEY = Pseudonymiser(bytes(range(32)))

#: spelling -> canonical address (None: not an address)
SPELLINGS = {
    "10.0.0.1": "10.0.0.1",
    "010.000.000.001": "10.0.0.1",
    " 10.0.0.1 ": "10.0.0.1",
    "10.0.0.1:443": "10.0.0.1",
    "::ffff:10.0.0.1": "10.0.0.1",
    "::FFFF:10.0.0.1": "10.0.0.1",
    "0:0:0:0:0:ffff:10.0.0.1": "10.0.0.1",
    "[::ffff:10.0.0.1]:8080": "10.0.0.1",
    "::ffff:a00:1": "10.0.0.1",
    "2001:DB8:0:0:0:0:0:1": "2001:db8::1",
    "2001:0db8::0001": "2001:db8::1",
    "[2001:db8::1]:443": "2001:db8::1",
    "2001:db8:0:0:1:0:0:1": "2001:db8::1:0:0:1",
    "::1": "::1",
    "1.2.3.4.5": None,
    "999.1.1.1": None,
    "256.0.0.1": None,
    "1.2.3": None,
    "0010.0.0.1": None,
    "10.0.0.1:": None,
    "10.0.0.1:123456": None,
    "not an address": None,
    "2001:db8::1::2": None,
    "fe80::1%eth0": None,
    "١٠.0.0.1": None,
}


def test_python_canonical_form():
    assert {text: canonical_ip(text) for text in SPELLINGS} == SPELLINGS


def test_sql_canonical_form_equals_python():
    con = connect(KEY)
    con.register("spellings", pd.DataFrame({"raw": list(SPELLINGS)}))
    query = "SELECT trim(raw) AS ident FROM spellings"
    for name, expression in canonical_ip_sql("ident"):
        query = f"SELECT *, {expression} AS {name} FROM ({query})"
    rows = con.execute(f"SELECT canon FROM ({query})").fetchall()
    assert dict(zip(SPELLINGS, (r[0] for r in rows), strict=True)) == SPELLINGS


def test_spellings_of_one_address_hash_the_same():
    con = connect(KEY)
    con.register("spellings", pd.DataFrame({"raw": ["010.000.000.001", "10.0.0.1:443", "::ffff:10.0.0.1"]}))
    query = "SELECT trim(raw) AS ident FROM spellings"
    for name, expression in canonical_ip_sql("ident"):
        query = f"SELECT *, {expression} AS {name} FROM ({query})"
    hashes = {r[0] for r in con.execute(f"SELECT hiddenpop_pseudonym(canon) FROM ({query})").fetchall()}
    assert hashes == {KEY.hash_one("10.0.0.1")}


def _log(tmp_path, ips, times=None):
    times = times or [f"2016-03-0{1 + i % 9}T10:00:00Z" for i in range(len(ips))]
    path = tmp_path / "log.csv"
    pd.DataFrame({"ip": ips, "time": times, "category": ["x"] * len(ips)}).to_csv(path, index=False)
    return path


def test_ip_spellings_are_one_identifier_and_invalid_addresses_are_counted(tmp_path):
    ips = ["010.000.000.001", "10.0.0.1", "::ffff:10.0.0.1", "10.0.0.1:443", "1.2.3.4.5", "999.1.1.1",
           "hello", "unknown", "2001:db8::1", "2001:DB8:0::1"]
    path = _log(tmp_path, ips, ["2016-03-01T10:00:00Z"] * len(ips))
    log = read_events([path], identifier="ip", time="time", key=KEY, rules=CleaningRules(identifier_kind="ip"))
    audit = log.audit.set_index("step")
    assert audit.loc["missing_identifier", "removed"] == 1
    assert audit.loc["invalid_address", "removed"] == 3
    assert log.n_identifiers == 2  # 10.0.0.1 and 2001:db8::1
    text = CleaningRules()  # the default kind keeps every spelling as its own identifier (no address rules)
    assert "invalid_address" not in read_events([path], identifier="ip", time="time", key=KEY,
                                                rules=text).audit["step"].tolist()


@pytest.mark.parametrize("bad", ["infinity", "-infinity", "9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z",
                                 "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
def test_extreme_timestamps_are_an_error_naming_file_row_column(tmp_path, bad):
    times = ["2016-03-01T10:00:00Z", "2016-03-02T10:00:00Z", bad]
    path = _log(tmp_path, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], times)
    with pytest.raises(DataError, match=r"log.csv, row 3, column 'time': timestamp is outside") as info:
        read_events([path], identifier="ip", time="time", key=KEY)
    assert "10.0.0.3" not in str(info.value)


def test_excluded_identifier_is_matched_canonically_and_recorded_only_as_a_hash(tmp_path):
    path = _log(tmp_path, ["10.0.0.1", "010.0.0.1", "10.0.0.2", "10.0.0.3"])
    rules = CleaningRules(identifier_kind="ip", exclude=[("ip", "10.0.0.1")])
    log = read_events([path], identifier="ip", time="time", key=KEY, rules=rules)
    audit = log.audit.set_index("step")
    assert audit.loc["exclude ip=value #1", "removed"] == 2
    recorded = log.audit.to_csv() + json.dumps(log.rules.to_dict())
    assert "10.0.0.1" not in recorded and KEY.hash_one("10.0.0.1")[:12] in recorded
