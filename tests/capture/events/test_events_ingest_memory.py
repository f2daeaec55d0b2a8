"""Report-log ingest hashes each distinct identifier once, in memory, with DuckDB unable to spill.

Checked here: the identifier codes equal ranks of the reference HMAC-SHA256 (``hmac.new`` from the standard
library, not the reader's hasher) of each identifier's trimmed/canonical form; the in-memory path and the
per-batch fallback give identical pairs and audits; the in-memory path refuses a connection that can spill,
leaves its private folder empty and drops every table holding raw identifiers; when the distinct identifiers do
not fit in the memory limit the fallback runs and says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import unicodedata

import numpy as np
import pandas as pd
import pytest

from hiddenpop.capture.events import reader
from hiddenpop.capture.events.cleaning import CleaningRules
from hiddenpop.capture.events.reader import read_events
from hiddenpop.privacy import Pseudonymiser, canonical_ip

KEY_BYTES = "clé-secrète-αβγ-0123456789".encode()
KEY = Pseudonymiser(KEY_BYTES)
ORIGIN = dt.date(2016, 1, 1)
TOKENS = ("", "unknown", "na", "n/a", "null", "none", "-", "?")


def _reference(text: str) -> str:
    return hmac.new(KEY_BYTES, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _random_texts(rng: np.random.Generator, n: int) -> list[str | None]:
    """Identifiers drawn from ASCII, accented Latin, Greek, CJK and emoji, with padding, empties, tokens, NULLs."""
    alphabet = list("abcXYZ019.:-_ \t") + list("éüñßαβγ漢字한국") + ["\U0001F600", "\u00a0", "\u3000"]
    out: list[str | None] = []
    for _ in range(n):
        kind = rng.integers(0, 10)
        if kind == 0:
            out.append(None)
        elif kind == 1:
            out.append(" " * int(rng.integers(0, 3)) + str(rng.choice(TOKENS[1:])).upper() + " ")
        elif kind == 2:
            out.append(" " * int(rng.integers(0, 4)))  # empty after trimming
        else:
            length = int(rng.integers(1, 12))
            text = "".join(rng.choice(alphabet, size=length))
            out.append(" " * int(rng.integers(0, 2)) + text + " " * int(rng.integers(0, 2)))
    return out


def _write(tmp_path, identifiers: list[str | None], days: list[int] | None = None, name: str = "log.parquet"):
    """One row per identifier on its own day (so the pairs reveal which code each identifier received)."""
    days = list(range(len(identifiers))) if days is None else days
    times = [(pd.Timestamp(ORIGIN, tz="UTC") + pd.Timedelta(days=d, hours=6)).isoformat() for d in days]
    path = tmp_path / name
    frame = pd.DataFrame({"ip": pd.array(identifiers, dtype=object), "time": times,
                          "category": ["viral" if d % 7 == 3 else "standard" for d in days]})
    frame.to_parquet(path)
    return path


def _day_codes(log) -> dict[int, int]:
    rows = log.connection.execute("SELECT day, code FROM pairs").fetchall()
    return {int(day) + (log.origin - ORIGIN).days: int(code) for day, code in rows}


def _expected_codes(canonical: list[str | None]) -> dict[int, int]:
    """day -> rank of the reference pseudonym among the distinct pseudonyms (None: the row is dropped)."""
    hashes = [None if c is None else _reference(c) for c in canonical]
    ranks = {h: i for i, h in enumerate(sorted({h for h in hashes if h is not None}))}
    return {day: ranks[h] for day, h in enumerate(hashes) if h is not None}


def _text_canonical(text: str | None) -> str | None:
    if text is None:
        return None
    # DuckDB's trim() removes the Unicode space separators (category Zs: space, no-break space, ...), not tabs
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]) == "Zs":
        start += 1
    while end > start and unicodedata.category(text[end - 1]) == "Zs":
        end -= 1
    trimmed = text[start:end]
    return None if trimmed.lower() in TOKENS else trimmed


def test_text_codes_are_ranks_of_the_reference_hmac(tmp_path):
    rng = np.random.default_rng(24)
    identifiers = _random_texts(rng, 400)
    identifiers += [" same ", "same", "same  ", "\u00a0same", "漢字", " 漢字 "]  # repeats after trimming
    log = read_events([_write(tmp_path, identifiers)], identifier="ip", time="time", key=KEY,
                      rules=CleaningRules(start=ORIGIN))
    assert log.ingest == "in-memory"
    canonical = [_text_canonical(t) for t in identifiers]
    assert _day_codes(log) == _expected_codes(canonical)
    missing = sum(c is None for c in canonical)
    assert log.audit.set_index("step").loc["missing_identifier", "removed"] == missing > 0


def test_ip_codes_are_ranks_of_the_reference_hmac(tmp_path):
    rng = np.random.default_rng(7)
    spellings = ["010.000.000.001", " 10.0.0.1:443", "::ffff:10.0.0.1", "2001:DB8:0:0:0:0:0:1", "[2001:db8::1]:80",
                 "1.2.3.4.5", "999.1.1.1", "fe80::1%eth0", "not an address", "", None, "unknown"]
    octets = rng.integers(0, 256, size=(200, 4))
    spellings += [".".join(map(str, row)) for row in octets.tolist()]
    log = read_events([_write(tmp_path, spellings)], identifier="ip", time="time", key=KEY,
                      rules=CleaningRules(start=ORIGIN, identifier_kind="ip"))
    assert log.ingest == "in-memory"
    canonical = [None if _text_canonical(t) is None else canonical_ip(t) for t in spellings]
    assert _day_codes(log) == _expected_codes(canonical)
    audit = log.audit.set_index("step")
    assert audit.loc["invalid_address", "removed"] == 4
    assert audit.loc["missing_identifier", "removed"] == 3


def _per_batch(monkeypatch) -> None:
    """Force the fallback (as when the distinct identifiers do not fit in memory)."""
    monkeypatch.setattr(reader, "_stage_in_memory", lambda *args, **kwargs: False)


@pytest.mark.parametrize("kind", ["text", "ip"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_in_memory_and_per_batch_paths_give_identical_results(tmp_path, monkeypatch, kind, fmt):
    rng = np.random.default_rng(3)
    pool = [*_random_texts(rng, 60), "10.0.0.1", "010.0.0.1", "10.0.0.1:8080", "::ffff:10.0.0.1", "2001:db8::1",
            "2001:DB8::1", "203.0.113.9", "1.1.1.1", " same", "same"]
    pool += [".".join(map(str, row)) for row in rng.integers(0, 256, size=(60, 4)).tolist()]
    identifiers = [pool[i] for i in rng.integers(0, len(pool), size=3000)]
    identifiers[::97] = [None] * len(identifiers[::97])  # NULL identifiers must stay missing on every path
    days = rng.integers(0, 40, size=3000).tolist()
    path = _write(tmp_path, identifiers, days)
    if fmt == "csv":
        frame = pd.read_parquet(path)
        path = tmp_path / "log.csv"
        frame.to_csv(path, index=False)
    rules = dict(identifier_kind=kind, exclude=[("category", "viral"), ("ip", "10.0.0.1" if kind == "ip" else "same")],
                 exclude_ipv6=kind == "ip", timezone="Asia/Manila")
    results = []
    # in-memory joined on the values' 64-bit hashes, in-memory joined on the strings (as after a hash collision),
    # then the per-batch fallback
    for path_kind, join_on_hash in (("in-memory", True), ("in-memory", False), ("per-batch", None)):
        if join_on_hash is False:
            monkeypatch.setattr(reader, "_raw_hashes_unique", lambda con: False)
        if path_kind == "per-batch":
            _per_batch(monkeypatch)
        log = read_events([path], identifier="ip", time="time", key=KEY, rules=CleaningRules(**rules))
        assert log.ingest == path_kind
        pairs = log.connection.execute("SELECT code, day FROM pairs ORDER BY code, day").fetchall()
        results.append((pairs, log.audit, log.origin, log.n_identifiers, log.first_day, log.last_day))
        log.close()
    pairs_a, audit_a, *rest_a = results[0]
    assert len(pairs_a) > 100
    assert audit_a.set_index("step").loc["missing_identifier", "removed"] >= len(identifiers[::97])
    for pairs_b, audit_b, *rest_b in results[1:]:
        assert pairs_a == pairs_b
        pd.testing.assert_frame_equal(audit_a, audit_b)
        assert rest_a == rest_b


def test_codes_are_ranks_of_the_standard_library_hmac_and_flag_the_excluded_pseudonym():
    rng = np.random.default_rng(11)
    texts = [f"10.{a}.{b}.{c}" for a, b, c in rng.integers(0, 256, size=(3000, 3))]
    distinct = sorted(set(texts))
    reference = {t: hmac.new(KEY_BYTES, t.encode("utf-8"), hashlib.sha256).hexdigest()[:32] for t in distinct}
    rank = {pseudonym: i for i, pseudonym in enumerate(sorted(set(reference.values())))}
    excluded = distinct[7]
    codes, flags = reader._pseudonym_codes(KEY, distinct, {2: reference[excluded]})
    assert codes.dtype == np.int32
    assert codes.tolist() == [rank[reference[t]] for t in distinct]
    assert sorted(set(codes.tolist())) == list(range(len(distinct)))  # dense, from 0
    assert list(flags) == [2]
    assert np.flatnonzero(flags[2]).tolist() == [7]
    empty_codes, empty_flags = reader._pseudonym_codes(KEY, [], {0: reference[excluded]})
    assert empty_codes.size == 0 and empty_flags[0].size == 0


def test_in_memory_path_refuses_a_connection_that_can_spill(tmp_path):
    con = reader.connect(KEY, temp_directory=str(tmp_path))
    assert not reader.spilling_disabled(con)
    with pytest.raises(RuntimeError, match="without a temporary directory"):
        reader._stage_in_memory(con, KEY, "(SELECT 1 AS ip, 1 AS time)", "ip", "time", CleaningRules(), {})
    reader.close_private(con)


def _many_identifiers(tmp_path, n: int = 400_000):
    """``n`` rows of about ``0.63 n`` distinct long identifiers: at 400,000 the in-memory path needs over 40 MB."""
    rng = np.random.default_rng(5)
    ids = np.array([f"user-{i:08d}-padding-to-make-it-longer" for i in range(n)])
    picks = rng.integers(0, n, size=n)
    pd.DataFrame({"ip": ids[picks], "time": "2016-03-01T10:00:00Z"}).to_parquet(tmp_path / "many.parquet")
    return tmp_path / "many.parquet"


def _files_under(folder) -> list[str]:
    return [os.path.join(root, f) for root, _dirs, files in os.walk(folder) for f in files]


def test_out_of_memory_in_memory_path_writes_nothing_and_drops_raw_tables(tmp_path):
    path = _many_identifiers(tmp_path)
    spill = tmp_path / "spill"
    con = reader.connect(KEY, threads=1, memory_limit="40MB", temp_directory=str(spill), spill=False)
    assert reader.spilling_disabled(con)
    # the external file cache (bytes of the input files) is never written to disk either
    assert con.execute("SELECT current_setting('external_file_cache_spill'), "
                       "current_setting('cache_local_files')").fetchall() == [(False, False)]
    source = reader._source_sql([str(path)], "parquet")
    assert reader._stage_in_memory(con, KEY, source, "ip", "time", CleaningRules(), {}) is False
    assert _files_under(spill) == []  # the private folder exists, but DuckDB could not write into it
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == set()  # no hp_idents / hp_id_map left, no partial staged
    reader.allow_spilling(con)
    assert not reader.spilling_disabled(con)
    reader.close_private(con)


def test_fallback_when_the_identifiers_do_not_fit_gives_the_same_result(tmp_path):
    path = _many_identifiers(tmp_path)
    small = read_events([path], identifier="ip", time="time", key=KEY, memory_limit="40MB", threads=1,
                        temp_directory=str(tmp_path / "spill"))
    assert small.ingest == "per-batch"
    assert any("do not fit in DuckDB's memory limit" in note for note in small.notes)
    assert not reader.spilling_disabled(small.connection)  # later stages may spill (pseudonymised codes only)
    large = read_events([path], identifier="ip", time="time", key=KEY, memory_limit="1GB", threads=1)
    assert large.ingest == "in-memory"
    assert not any("do not fit" in note for note in large.notes)
    query = "SELECT code, day FROM pairs ORDER BY code, day"
    assert small.connection.execute(query).fetchall() == large.connection.execute(query).fetchall()
    pd.testing.assert_frame_equal(small.audit, large.audit)
    for note in small.notes:
        assert "user-" not in note
    small.close()
    large.close()


def test_parquet_logs_too_large_for_the_memory_limit_skip_the_in_memory_path(tmp_path):
    path = _many_identifiers(tmp_path, n=50_000)  # 50,000 rows need about 4 MB in memory
    source = reader._source_sql([str(path)], "parquet")
    for limit, fits in (("2MB", False), ("1GB", True)):
        con = reader.connect(KEY, memory_limit=limit, spill=False)
        assert reader._fits_in_memory(con, source, "parquet") is fits
        assert reader._fits_in_memory(con, source, "csv") is True  # unknown row count: try, fall back on OOM
        reader.close_private(con)
