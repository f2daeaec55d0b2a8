"""Report-log ingestion with DuckDB: read, pseudonymise at read time, clean with an audit.

Pipeline (one DuckDB connection per :class:`EventLog`):

1. **Read** CSV or Parquet files (globs allowed) with a column mapping (identifier, timestamp, optional country
   and flag columns). CSV columns are read as text so nothing is guessed.
2. **Pseudonymise inside the reader.** Everything that depends on the identifier alone (trimming, the
   unknown-token test, the canonical address, the IPv6 test, the keyed hash, the dense integer code) is computed
   once per distinct raw value, never once per row: the distinct values are collected by DuckDB, hashed in
   Python with exactly :meth:`hiddenpop.privacy.Pseudonymiser.hash_one` (HMAC-SHA256, 32 hex chars; by one
   forked process per core for large logs, which receive the values in memory and return only digests) and
   joined back to the rows as codes (:func:`_stage_in_memory`). While raw values are held, the connection has no
   temporary directory, so DuckDB cannot write them to disk; if they do not fit in the memory limit, the
   per-batch path runs instead (:func:`_staging_sql`: a vectorised UDF hashes each batch before any operator
   that can spill). Afterwards the tables kept hold only codes and day numbers; outputs, logs and error
   messages never contain identifier values.
3. **Timestamps, explicitly zoned.** Timestamps carrying an offset are read as instants; naive timestamps are
   taken to be in ``input_timezone`` (default UTC). Days (for dedupe, occasions and date ranges) are calendar
   days in ``timezone`` (default UTC), e.g. ``Asia/Manila`` for a country-level study, computed by integer
   arithmetic from the zone's offsets (:func:`zone_offsets`, taken from DuckDB's time-zone data), not by a
   time-zone call per row.
4. **Cleaning** with one audit row per step (see :mod:`hiddenpop.capture.events.cleaning`).

The result is the distinct (identifier code, day) pairs, the input of :mod:`hiddenpop.capture.events.occasions`:
NumPy arrays (also a DuckDB view) on the in-memory path, a DuckDB table on the per-batch path.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.events.cleaning import CleaningRules, add_dedupe_step, audit_steps
from hiddenpop.data.io import check_header_names, first_line_fields, missing_column
from hiddenpop.errors import ConfigError, DataError
from hiddenpop.parallel import even_ranges, map_shared, worker_limit
from hiddenpop.privacy import PSEUDONYM_HEX_CHARS, Pseudonymiser, canonical_ip

PSEUDONYM_FUNCTION = "hiddenpop_pseudonym"
CANONICAL_IPV6_FUNCTION = "hiddenpop_canonical_ipv6"
#: Distinct raw values whose pseudonym is remembered in Python memory (never spilled: DuckDB does not manage it).
#: Report logs repeat identifiers, so most rows cost a dictionary lookup instead of an HMAC.
HASH_CACHE_ENTRIES = 2_000_000
#: Timestamps outside this range (UTC) are an input error: no report log of IP addresses predates 1970, and
#: year 1 or 9999 (or ``infinity``) is a placeholder, not a report time.
TIME_RANGE = ("1970-01-01", "2100-01-01")
#: DuckDB's ``temp_directory`` value meaning "no temporary directory": blocks can then never be offloaded to disk
#: and a query that outgrows ``memory_limit`` fails with an out-of-memory error instead of spilling.
NO_SPILL = ""


def pseudonym_udf(key: Pseudonymiser):
    """A vectorised (Arrow) function computing ``key.hash_one`` for every string of an Arrow array.

    Uses :meth:`hiddenpop.privacy.Pseudonymiser.hasher` (HMAC-SHA256 from precomputed pad states), so the DuckDB
    path and the Python path share one keyed-hash implementation. Used by the per-batch fallback
    (:func:`_staging_sql`), where it is called on every batch of the scan (before any operator that can spill),
    so it remembers up to :data:`HASH_CACHE_ENTRIES` pseudonyms in process memory.
    """
    # Arrow is loaded only when this runs: importing it costs start-up time
    import pyarrow as pa

    pseudonym = key.hasher()
    cache: dict[str, str] = {}

    def miss(text: str | None) -> str | None:
        if text is None:
            return None
        hashed = pseudonym(text)
        if len(cache) < HASH_CACHE_ENTRIES:
            cache[text] = hashed
        return hashed

    def hash_array(values: Any) -> Any:
        get = cache.get
        # a pseudonym is never empty, so `or` falls through to `miss` exactly for uncached values and None
        return pa.array([get(text) or miss(text) for text in values.to_pylist()], type=pa.string())

    return hash_array


def canonical_ipv6_udf():
    """A vectorised (Arrow) function mapping IPv6-shaped strings to :func:`hiddenpop.privacy.canonical_ip`.

    IPv4 spellings are canonicalised in SQL (:func:`canonical_ip_sql`); only values containing ``:`` that are
    not ``IPv4:port`` reach this function, which compresses them (RFC 5952) with :mod:`ipaddress`.
    """
    # Arrow is loaded only when this runs: importing it costs start-up time
    import pyarrow as pa

    cache: dict[str, str | None] = {}

    def canonical_array(values: Any) -> Any:
        out = []
        for text in values.to_pylist():
            if text is None:
                out.append(None)
                continue
            if text not in cache:
                if len(cache) >= HASH_CACHE_ENTRIES:
                    cache.clear()
                cache[text] = canonical_ip(text)
            out.append(cache[text])
        return pa.array(out, type=pa.string())

    return canonical_array


_IPV4_SQL = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?::\d{1,5})?$"
_MAPPED_SQL = r"^(?:::|(?:0{1,4}:){5})ffff:(\d{1,3}(?:\.\d{1,3}){3})$"


def canonical_ip_sql(text: str) -> list[tuple[str, str]]:
    """:func:`hiddenpop.privacy.canonical_ip` of the trimmed text column ``text`` as SQL projection layers.

    Returns ``(name, expression)`` pairs, each layer reading the previous ones' columns; the last is ``canon``
    (NULL when not an address). IPv4 (optionally ``::ffff:``-mapped, optionally with a port) costs one regular
    expression per row and is rebuilt from its four octets read as decimal integers, all vectorised; only rows
    containing ``:`` that are not IPv4 go to :func:`canonical_ipv6_udf` (one Python call per such row).
    """
    octets = [f"CAST(v4_parts.o{i} AS INTEGER)" for i in range(1, 5)]
    return [
        ("v4", f"CASE WHEN contains({text}, ':') THEN regexp_replace(lower({text}), '{_MAPPED_SQL}', '\\1') "
               f"ELSE {text} END"),
        ("v4_parts", f"regexp_extract(v4, '{_IPV4_SQL}', ['o1', 'o2', 'o3', 'o4'])"),
        ("canon", f"CASE WHEN v4_parts.o1 <> '' THEN "
                  f"CASE WHEN greatest({', '.join(octets)}) <= 255 THEN concat_ws('.', {', '.join(octets)}) END "
                  f"WHEN contains({text}, ':') THEN {CANONICAL_IPV6_FUNCTION}({text}) END"),
    ]


#: Private spill folders of open connections, removed at exit, on SIGTERM/SIGINT and by :meth:`EventLog.close`.
_PRIVATE_DIRS: dict[str, Any] = {}
_CREATED_PARENTS: list[str] = []
#: Signals received; a query interrupted by one must end the run quietly, not be reported as bad input.
_TERMINATED: list[int] = []
_HANDLERS_INSTALLED = False
#: The process that created each folder above (and each created parent). A forked process (e.g. a
#: multiprocessing worker) inherits them and the connections but owns neither: it must not remove folders its
#: parent is still using, nor touch (or drop, which runs its destructor) a DuckDB connection, which does not
#: survive a fork.
_OWNERS: dict[str, int] = {}


def private_temp_directory(parent: str | None = None) -> str:
    """A fresh owner-only (0700) folder for DuckDB's spill files, never the working directory.

    Created with :func:`tempfile.mkdtemp` in ``parent`` (default: the system temporary folder) and removed on
    every exit path Python sees: :meth:`EventLog.close`, normal exit, SIGTERM and SIGINT. SIGKILL cannot be
    caught, which is why raw identifiers are held only while DuckDB cannot spill (:func:`_stage_in_memory`) or
    hashed before any operator that can spill (:func:`_staging_sql`).
    """

    global _HANDLERS_INSTALLED
    if parent is not None and not os.path.isdir(parent):
        # a --temp-dir that does not exist yet is created for the run and removed with it
        os.makedirs(parent, mode=0o700)
        _CREATED_PARENTS.append(parent)
        _OWNERS[parent] = os.getpid()
    path = tempfile.mkdtemp(prefix="hiddenpop-duckdb-", dir=parent)
    _OWNERS[path] = os.getpid()
    _PRIVATE_DIRS[path] = None
    if not _HANDLERS_INSTALLED:
        atexit.register(_remove_private_dirs)
        _install_signal_handlers()
        _HANDLERS_INSTALLED = True
    return path


def _remove_private_dirs() -> None:
    me = os.getpid()
    for path, con in list(_PRIVATE_DIRS.items()):
        if _OWNERS.get(path) != me:
            continue
        if con is not None:
            try:
                con.interrupt()
            except Exception:  # a closed connection has nothing to interrupt
                pass
        shutil.rmtree(path, ignore_errors=True)
        _PRIVATE_DIRS.pop(path, None)
    for parent in reversed(_CREATED_PARENTS):
        if _OWNERS.get(parent) != me:
            continue
        try:
            os.rmdir(parent)  # only while empty: never removes anything hiddenpop did not create
        except OSError:
            pass
    _CREATED_PARENTS[:] = [parent for parent in _CREATED_PARENTS if _OWNERS.get(parent) != me]


def _install_signal_handlers() -> None:
    """On SIGTERM/SIGINT: stop running queries, remove the spill folders, then exit as the signal asked."""

    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number, frame, previous=previous):
            _TERMINATED.append(number)
            _remove_private_dirs()
            if callable(previous):
                previous(number, frame)
            raise SystemExit(128 + number)

        signal.signal(signum, handler)


def _exit_if_terminated() -> None:
    """Inside ``except``: a query stopped by SIGTERM/SIGINT ends the run with 128 + signal, no error line."""
    if _TERMINATED:
        raise SystemExit(128 + _TERMINATED[0])


def close_private(con) -> None:
    """Close ``con`` and remove its private spill folder."""

    for path, owner in list(_PRIVATE_DIRS.items()):
        if owner is con:
            con.close()
            shutil.rmtree(path, ignore_errors=True)
            _PRIVATE_DIRS.pop(path, None)


def connect(key: Pseudonymiser, *, threads: int | None = None, memory_limit: str | None = None,
            temp_directory: str | None = None, spill: bool = True):
    """A DuckDB connection with the pseudonymisation and IPv6 UDFs registered and a private spill folder.

    ``threads`` (DuckDB's default: one per core) and ``memory_limit`` (DuckDB's default: 80% of physical memory;
    e.g. ``"3GB"``) bound the engine; beyond the limit, aggregates, sorts and the temporary tables spill to a
    fresh 0700 folder (:func:`private_temp_directory`) inside ``temp_directory`` (default: the system temporary
    folder). Peak memory of a run is about this limit plus the Python side's history-count batches (a few
    hundred MB, for each worker process when windows are counted on several cores). With ``spill=False`` the
    connection starts with no temporary directory at all (DuckDB then cannot write any block to disk and raises
    an out-of-memory error instead); :func:`allow_spilling` points it at the private folder once no table
    holding raw identifiers is left.
    """
    # DuckDB is loaded only when this runs: importing it costs start-up time
    import duckdb

    private = private_temp_directory(temp_directory)
    config = engine_config(threads, memory_limit, private)
    if not spill:
        config["temp_directory"] = NO_SPILL
    con = duckdb.connect(config=config)
    _PRIVATE_DIRS[private] = con
    _keep_file_cache_off_disk(con)
    con.create_function(
        PSEUDONYM_FUNCTION, pseudonym_udf(key), [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        type="arrow", side_effects=False,
    )
    con.create_function(
        CANONICAL_IPV6_FUNCTION, canonical_ipv6_udf(), [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        type="arrow", side_effects=False, null_handling="special",
    )
    return con


#: DuckDB settings (where the installed version has them) that would let the external file cache, which holds
#: bytes of the input files and so raw identifiers, write them to the temporary directory. Both are off by
#: default; they are pinned off so a changed default cannot put raw file contents on disk.
_FILE_CACHE_SETTINGS = {"external_file_cache_spill": "false", "cache_local_files": "false"}


def _keep_file_cache_off_disk(con) -> None:
    names = {row[0] for row in con.execute(
        "SELECT name FROM duckdb_settings() WHERE name IN ('external_file_cache_spill', 'cache_local_files')"
    ).fetchall()}
    for name in sorted(names):
        con.execute(f"SET {name} = {_FILE_CACHE_SETTINGS[name]}")


def engine_config(threads: int | None = None, memory_limit: str | None = None,
                  temp_directory: str | None = None) -> dict[str, Any]:
    """DuckDB connection settings; unset ones keep DuckDB's defaults, except that a table's rows are always read
    back in insertion order (:meth:`EventLog.iter_pairs` relies on it)."""
    config: dict[str, Any] = {"preserve_insertion_order": True}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    if temp_directory:
        config["temp_directory"] = temp_directory
    return config


def allow_spilling(con) -> None:
    """Let ``con`` spill again, into its private folder (:func:`connect` with ``spill=False`` started without one).

    Call only when no table or query on ``con`` holds raw identifiers: from here on DuckDB may write any block
    it manages to that folder.
    """
    for path, owner in _PRIVATE_DIRS.items():
        if owner is con:
            con.execute(f"SET temp_directory = {_literal(path)}")
            return
    raise RuntimeError("allow_spilling: the connection has no private spill folder (use reader.connect)")


def spilling_disabled(con) -> bool:
    """True when DuckDB has no temporary directory on ``con``, so no block it manages can be written to disk."""
    return con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] == ""


def engine_settings(con) -> dict[str, Any]:
    """DuckDB version, threads and memory limit in effect on ``con`` (recorded with every event log)."""
    # DuckDB is loaded only when this runs: importing it costs start-up time
    import duckdb

    threads, memory_limit = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchall()[0]
    return {"duckdb": duckdb.__version__, "threads": int(threads), "memory_limit": str(memory_limit)}


def expand_inputs(paths: Sequence[str | Path]) -> tuple[list[str], str]:
    """Expand globs; all files must exist and share one format (csv or parquet)."""
    if not paths:
        raise ConfigError("no input files given")
    files: list[str] = []
    for pattern in map(str, paths):
        matches = sorted(glob.glob(pattern)) if any(ch in pattern for ch in "*?[") else [pattern]
        if not matches:
            raise DataError(f"{pattern}: no file matches this pattern")
        for match in matches:
            if not Path(match).is_file():
                raise DataError(f"{match}: file not found")
        files.extend(matches)
    kinds = set()
    for f in files:
        suffix = "".join(Path(f).suffixes[-2:]).lower()
        if suffix.endswith((".parquet", ".pq")):
            kinds.add("parquet")
        elif suffix.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            kinds.add("csv")
        else:
            raise DataError(f"{f}: unsupported report-log format (use .csv, .csv.gz or .parquet)")
    if len(kinds) > 1:
        raise DataError("mixing CSV and Parquet report logs in one run is not supported; convert one set first")
    return files, kinds.pop()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _source_sql(files: list[str], kind: str) -> str:
    listing = "[" + ", ".join(_literal(f) for f in files) + "]"
    if kind == "parquet":
        return f"read_parquet({listing}, union_by_name = true)"
    return f"read_csv({listing}, header = true, all_varchar = true, union_by_name = true)"


@dataclass
class EventLog:
    """Cleaned, pseudonymised report events: distinct (identifier code, day) pairs in a DuckDB table.

    ``origin`` is the calendar date of day 0 (in ``rules.timezone``); ``audit`` the cleaning audit; the table
    ``pairs`` (columns ``code``, ``day``) lives in ``connection``. Identifier codes are dense integers
    numbered in pseudonym order (deterministic for a given key); neither pseudonyms nor codes are written to any
    output, only counts. ``engine`` records the DuckDB settings in effect (version, threads, memory limit).
    """

    connection: Any
    origin: date
    first_day: int
    last_day: int
    n_identifiers: int
    n_pairs: int
    audit: pd.DataFrame
    rules: CleaningRules
    inputs: list[str]
    key_fingerprint: str
    notes: list[str] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)
    key_warnings: list[str] = field(default_factory=list)
    #: how identifiers were pseudonymised: "in-memory" (once per distinct value, :func:`_stage_in_memory`) or
    #: "per-batch" (the fallback when they do not fit in memory, :func:`_staging_sql`)
    ingest: str = "in-memory"
    #: the in-memory path's (code, day) pairs as two int32 arrays sorted by code then day (also the view ``pairs``
    #: of ``connection``); ``None`` on the per-batch path, whose pairs are DuckDB's table ``pairs``
    pair_arrays: tuple[np.ndarray, np.ndarray] | None = None

    def close(self) -> None:
        """Close the DuckDB connection and remove its private spill folder (also done at exit)."""
        close_private(self.connection)

    def date_of(self, day: int | np.ndarray) -> Any:
        return pd.Timestamp(self.origin) + pd.to_timedelta(day, unit="D")

    def day_of(self, when: date | str) -> int:
        return int((pd.Timestamp(when).normalize() - pd.Timestamp(self.origin)).days)

    def iter_pairs(self, batch_rows: int = 2_000_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream (code, day) arrays sorted by code then day, in batches that never split an identifier."""
        if self.pair_arrays is not None:
            yield from array_batches(*self.pair_arrays, batch_rows)
            return
        # ``pairs`` is created in (code, day) order and DuckDB returns a table's rows in insertion order
        # (``preserve_insertion_order``, set by engine_config), so no sort is needed; _check_sorted verifies it
        reader = self.connection.sql("SELECT code, day FROM pairs").to_arrow_reader(batch_rows)
        carry_code = np.empty(0, dtype=np.int64)
        carry_day = np.empty(0, dtype=np.int64)
        for chunk in _gather(reader, batch_rows):
            codes = np.concatenate([carry_code, *(b.column(0).to_numpy() for b in chunk)]).astype(np.int64)
            days = np.concatenate([carry_day, *(b.column(1).to_numpy() for b in chunk)]).astype(np.int64)
            if codes.size == 0:
                continue
            _check_sorted(codes, days)
            last = codes[-1]
            cut = int(np.searchsorted(codes, last, side="left"))
            if cut == 0:
                carry_code, carry_day = codes, days
                continue
            carry_code, carry_day = codes[cut:], days[cut:]
            yield codes[:cut], days[:cut]
        if carry_code.size:
            yield carry_code, carry_day


def array_batches(codes: np.ndarray, days: np.ndarray, batch_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """:meth:`EventLog.iter_pairs` over (code, day) arrays sorted by code then day: int64 batches of about
    ``batch_rows`` pairs, each ending where an identifier ends (an identifier with more pairs is one batch)."""
    start, n = 0, int(codes.size)
    while start < n:
        stop = start + batch_rows
        if stop < n:
            stop = int(np.searchsorted(codes, codes[stop], side="left"))
            if stop <= start:
                stop = int(np.searchsorted(codes, codes[start], side="right"))
        else:
            stop = n
        yield codes[start:stop].astype(np.int64), days[start:stop].astype(np.int64)
        start = stop


def identifier_ranges(codes: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` contiguous (start, stop) ranges of the sorted ``codes`` of about equal size, each cut where
    an identifier ends, none empty: independent pieces of work over the pairs (e.g. one per process)."""
    n = int(codes.size)
    cuts = [0]
    for target in np.linspace(0, n, max(parts, 1) + 1)[1:-1].astype(int):
        cut = int(np.searchsorted(codes, codes[target], side="left")) if target < n else n
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(n)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _check_sorted(codes: np.ndarray, days: np.ndarray) -> None:
    """Raise if consecutive (code, day) pairs are not strictly increasing (the order ``pairs`` is created in)."""
    step = codes[1:] - codes[:-1]
    if np.any((step < 0) | ((step == 0) & (days[1:] <= days[:-1]))):
        raise RuntimeError("the (code, day) pairs came back from DuckDB out of (code, day) order; this is a bug, "
                           "please report it")


def _gather(reader: Any, rows: int) -> Iterator[list[Any]]:
    """Group an Arrow reader's record batches into lists of at least ``rows`` rows (the last may be shorter).

    DuckDB hands out batches of its own vector-aligned size (about 120,000 rows) whatever size is asked for;
    counting histories per batch has a fixed cost, so small batches are gathered first.
    """
    chunk: list[Any] = []
    size = 0
    for batch in reader:
        chunk.append(batch)
        size += batch.num_rows
        if size >= rows:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def read_events(
    paths: Sequence[str | Path],
    *,
    identifier: str,
    time: str,
    key: Pseudonymiser,
    rules: CleaningRules | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
) -> EventLog:
    """Read report logs, pseudonymise identifiers inside DuckDB, clean them and audit every step.

    Parameters
    ----------
    paths:
        CSV or Parquet files or glob patterns.
    identifier, time:
        Column names of the identifier (e.g. the IP address) and the report timestamp.
    key:
        The pseudonymisation key (:func:`hiddenpop.privacy.load_key`); required.
    rules:
        :class:`~hiddenpop.capture.events.cleaning.CleaningRules` (country, exclusions, date range, dedupe unit,
        time zones, IPv6 exclusion, tokens meaning "unknown identifier").
    """
    rules = rules or CleaningRules()
    rules.validate()
    files, kind = expand_inputs(paths)
    if kind == "csv":  # DuckDB would rename a repeated header name and read the wrong copy
        for file in files:
            check_header_names(first_line_fields(file), Path(file).name)
    # no temporary directory until the tables holding raw identifiers are gone (see _stage_in_memory)
    con = connect(key, threads=threads, memory_limit=memory_limit, temp_directory=temp_directory, spill=False)
    source = _source_sql(files, kind)
    try:
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    except Exception as exc:
        raise DataError(f"{files[0]}: cannot read the report log ({type(exc).__name__}); check the file format") from None
    needed = {"identifier": identifier, "time": time}
    if rules.country_column:
        needed["country"] = rules.country_column
    for column, _value in rules.exclude:
        needed[f"exclude {column}"] = column
    for role, column in needed.items():
        if column not in columns:
            raise missing_column(files[0], column, columns, role=role, error=ConfigError)
    con.execute(f"SET TimeZone = {_literal(rules.input_timezone)}")
    identifier_exclusions = _identifier_exclusions(identifier, rules, key)
    rules.exclude_pseudonyms = [key.hash_one(value)[:12] for _column, value in rules.exclude]
    notes: list[str] = []
    try:
        zone = zone_offsets(con, rules.timezone)
        in_memory = _fits_in_memory(con, source, kind) and _stage_in_memory(
            con, key, source, identifier, time, rules, identifier_exclusions, zone=zone)
        allow_spilling(con)
        if not in_memory:
            notes.append(
                f"the report rows and distinct identifiers do not fit in DuckDB's memory limit "
                f"({engine_settings(con)['memory_limit']}) without spilling: each batch of rows was pseudonymised "
                "before any operator that can spill (slower; raise --memory-limit to avoid it)"
            )
            con.execute(_staging_sql(source, identifier, time, rules, identifier_exclusions, zone=zone))
    except Exception as exc:
        _exit_if_terminated()
        raise DataError(
            f"{files[0]}: DuckDB could not read or pseudonymise the report log ({type(exc).__name__}); "
            "check the column mapping and file format"
        ) from None
    bad_time = con.execute("SELECT coalesce(sum(n), 0) FROM staged WHERE has_time AND local_day IS NULL").fetchall()[0][0]
    if bad_time:
        _raise_bad_timestamp(con, files, source, time, bad_time)
    audit, keep_sql = audit_steps(con, rules)
    origin_row = con.execute(
        f"SELECT min(local_day), max(local_day) FROM staged WHERE {keep_sql}"
    ).fetchall()[0]
    if origin_row[0] is None:
        raise DataError(
            f"{files[0]}: no report rows left after cleaning; check the audit: "
            + "; ".join(f"{r.step} removed {r.removed}" for r in audit.itertuples())
        )
    origin = rules.start if rules.start is not None else origin_row[0]
    if rules.dedupe == "week":
        kept_units = con.execute(
            f"SELECT count(DISTINCT (code, date_trunc('week', local_day))) FROM staged WHERE {keep_sql}"
        ).fetchall()[0][0]
    kept = (f"SELECT code, CAST(date_diff('day', DATE {_literal(str(origin))}, local_day) AS INTEGER) AS day "
            f"FROM staged WHERE {keep_sql} ORDER BY code, day")
    pair_arrays = None
    if in_memory:
        pair_arrays = _distinct_sorted_pairs(con, kept)
        n_pairs, n_ids, first_day, last_day = _pair_summary(*pair_arrays)
    else:
        # staged has one row per (code, day, flags) and every kept row has the same flags, so (code, day) is
        # already unique among kept rows: no DISTINCT needed
        con.execute(f"CREATE TEMP TABLE pairs AS {kept}")
        n_pairs, n_ids, first_day, last_day = con.execute(
            "SELECT count(*), count(DISTINCT code), min(day), max(day) FROM pairs"
        ).fetchall()[0]
    con.execute("DROP TABLE IF EXISTS staged")
    audit = add_dedupe_step(audit, rules, kept_units if rules.dedupe == "week" else n_pairs)
    if rules.end is not None:
        last_day = max(int(last_day), int((pd.Timestamp(rules.end) - pd.Timestamp(origin)).days))
    if rules.start is not None:
        first_day = 0
    notes.append(
        f"{int(n_ids):,} distinct identifiers on {int(n_pairs):,} identifier-days after cleaning; days are calendar "
        f"days in {rules.timezone}; timestamps without an offset read as {rules.input_timezone}"
    )
    engine = engine_settings(con)
    notes.append(f"DuckDB {engine['duckdb']}: {engine['threads']} threads, memory limit {engine['memory_limit']}")
    return EventLog(
        connection=con, origin=origin, first_day=int(first_day), last_day=int(last_day), n_identifiers=int(n_ids),
        n_pairs=int(n_pairs), audit=audit, rules=rules, inputs=files, key_fingerprint=key.fingerprint, notes=notes,
        engine=engine, key_warnings=list(key.warnings), ingest="in-memory" if in_memory else "per-batch",
        pair_arrays=pair_arrays,
    )


def _distinct_sorted_pairs(con, kept: str) -> tuple[np.ndarray, np.ndarray]:
    """The in-memory path's distinct (code, day) pairs, sorted, as int32 arrays, also registered on ``con`` as the
    view ``pairs`` (no copy); ``staged`` is dropped.

    ``kept`` selects the kept rows' (code, day) ordered by code then day; DuckDB sorts them (in parallel, far
    cheaper than a hash aggregate into one group per pair) and repeated pairs, now adjacent, are dropped in NumPy.
    The in-memory path holds every report row in memory already, so holding the kept (code, day) columns
    (8 bytes a row) is within its budget.
    """
    # Arrow is loaded only when this runs: importing it costs start-up time
    import pyarrow as pa

    columns = con.execute(kept).fetchnumpy()
    codes, days = np.asarray(columns["code"]), np.asarray(columns["day"])
    del columns
    con.execute("DROP TABLE staged")
    first = np.ones(codes.size, dtype=bool)
    np.logical_or(codes[1:] != codes[:-1], days[1:] != days[:-1], out=first[1:])
    codes, days = codes[first], days[first]
    # with repeats dropped, rows in (code, day) order are strictly increasing, and rows out of it are not
    _check_sorted(codes, days)
    con.register("pairs", pa.table({"code": codes, "day": days}))
    return codes, days


def _pair_summary(codes: np.ndarray, days: np.ndarray) -> tuple[int, int, int, int]:
    """Number of pairs and of identifiers, first and last day of sorted, distinct (code, day) arrays."""
    n_ids = int(np.count_nonzero(codes[1:] != codes[:-1])) + 1
    return int(codes.size), n_ids, int(days.min()), int(days.max())


def _parsed_sql(raw_time: str) -> str:
    """SQL of the instant a text timestamp expression gives (NULL when it does not parse)."""
    # TRY_CAST of the untrimmed text first; trim only where that fails (a blank text does not cast anyway)
    return f"coalesce(TRY_CAST({raw_time} AS TIMESTAMPTZ), TRY_CAST(trim({raw_time}) AS TIMESTAMPTZ))"


def _in_range_sql(parsed: str) -> str:
    """SQL test that the instant ``parsed`` lies within :data:`TIME_RANGE`."""
    low, high = TIME_RANGE
    return (f"({parsed} >= TIMESTAMPTZ {_literal(low + ' 00:00:00+00')} "
            f"AND {parsed} < TIMESTAMPTZ {_literal(high + ' 00:00:00+00')})")


def _identifier_exclusions(identifier: str, rules: CleaningRules, key: Pseudonymiser) -> dict[int, str]:
    """Exclusions on the identifier column itself: index -> pseudonym of the (canonical) excluded value."""
    out = {}
    for i, (column, value) in enumerate(rules.exclude):
        if column != identifier:
            continue
        canonical = canonical_ip(value) if rules.identifier_kind == "ip" else value.strip()
        if not canonical:
            raise ConfigError(
                f"--exclude {column}=value #{i + 1}: the value is not a valid IP address (the identifier column is "
                "declared an IP with --id-kind ip); give the address as a.b.c.d or an IPv6 address"
            )
        out[i] = key.hash_one(canonical)
    return out


#: Tables that hold raw identifiers during :func:`_stage_in_memory`; dropped before spilling is allowed.
_RAW_TABLES = ("hp_idents", "hp_id_map")
_HASHES_VIEW = "hp_hashes"


def _stage_in_memory(con, key: Pseudonymiser, source: str, identifier: str, time: str, rules: CleaningRules,
                     identifier_exclusions: dict[int, str], zone: ZoneOffsets | None = None) -> bool:
    """Build ``staged`` (as :func:`_staging_sql` does) hashing each distinct identifier once; False if out of memory.

    ``con`` must have no temporary directory (:func:`connect` with ``spill=False``), checked here: every
    operator below that holds raw identifiers (the DISTINCT, the identifier map, the join) then lives in memory
    only, and a query that outgrows the memory limit fails instead of spilling. Steps:

    1. ``hp_idents``: the distinct identifier values as read, each trimmed, tested against the unknown tokens and
       canonicalised (the same SQL as the per-batch path, run once per distinct value instead of once per row);
    2. the distinct canonical values are hashed in Python (:meth:`hiddenpop.privacy.Pseudonymiser.digester`,
       HMAC-SHA256 as everywhere; by forked processes for many values, :data:`HASHES_PER_WORKER`) and numbered in
       pseudonym order in NumPy, as the per-batch path numbers them (:func:`_pseudonym_codes`);
    3. ``hp_id_map`` (value as read -> code, state, IPv6 flag, identifier exclusions) is joined to every row on
       the untrimmed value (on its 64-bit DuckDB ``hash`` when no two distinct values share one, which is
       checked; a join on integers is cheaper than on strings) into ``staged``, one row per report row with the
       columns of :func:`_staging_sql` (NULL identifiers find no map row and count as missing); the distinct
       (code, day) pairs are found later by sorting (:func:`_distinct_sorted_pairs`).

    The tables holding raw identifiers are dropped before returning, whatever happens. On DuckDB's
    out-of-memory error the partial ``staged`` is dropped too and False returned: the caller then allows
    spilling and runs :func:`_staging_sql`, which hashes before any operator that can spill.
    """
    # DuckDB and Arrow are loaded only when this runs: importing them costs start-up time
    import duckdb
    import pyarrow as pa

    if not spilling_disabled(con):
        raise RuntimeError("_stage_in_memory needs a connection without a temporary directory")
    try:
        con.execute(_identifiers_sql(source, identifier, rules))
        canon = con.sql("SELECT DISTINCT canon FROM hp_idents WHERE canon IS NOT NULL").to_arrow_table().column(0)
        codes, flags = _pseudonym_codes(key, canon.to_pylist(), identifier_exclusions,
                                        workers=engine_settings(con)["threads"])
        hashes = pa.table({"canon": canon, "code": codes, **{f"flag_{i}": flag for i, flag in flags.items()}})
        del canon, codes, flags
        con.register(_HASHES_VIEW, hashes)
        con.execute(_identifier_map_sql(identifier_exclusions))
        con.unregister(_HASHES_VIEW)
        del hashes
        con.execute("DROP TABLE hp_idents")
        con.execute(_mapped_staging_sql(source, identifier, time, rules, identifier_exclusions,
                                        join_on_hash=_raw_hashes_unique(con), zone=zone))
        return True
    except duckdb.OutOfMemoryException:
        con.execute("DROP TABLE IF EXISTS staged")
        return False
    finally:
        try:
            con.unregister(_HASHES_VIEW)
        except Exception:  # not registered (or already unregistered)
            pass
        for table in _RAW_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")


#: Memory the in-memory path needs per report row, an upper estimate: 20 million benchmark rows (1.9 million
#: identifiers, almost one (identifier, day) pair per row) fit under a 1.49 GiB limit (75 bytes a row) and not
#: under 0.93 GiB (50 bytes a row).
IN_MEMORY_BYTES_PER_ROW = 80
_BYTE_UNITS = {"bytes": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _fits_in_memory(con, source: str, kind: str) -> bool:
    """False when a Parquet log clearly has too many rows for :func:`_stage_in_memory` under the memory limit.

    Parquet row counts come from the file footers (no scan); for CSV the row count is unknown and the
    in-memory path is tried (DuckDB's out-of-memory error sends it to the fallback).
    """
    if kind != "parquet":
        return True
    limit = str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]).strip()
    number, _, unit = limit.partition(" ")
    try:
        limit_bytes = float(number) * _BYTE_UNITS[unit.strip().lower() or "bytes"]
    except (KeyError, ValueError):  # an unexpected spelling: try, the out-of-memory fallback still applies
        return True
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    return rows * IN_MEMORY_BYTES_PER_ROW <= limit_bytes


def _pseudonym_codes(key: Pseudonymiser, canon: list[str], identifier_exclusions: dict[int, str], *,
                     workers: int | None = None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Dense codes of ``canon`` in pseudonym order, and per identifier exclusion whether the pseudonym is excluded.

    The pseudonym is the hex of the digest's first 16 bytes, so ordering the bytes as two big-endian 64-bit
    integers orders the pseudonyms; equal pseudonyms share a code (the per-batch path's numbering of distinct
    pseudonyms). The digests are computed by :func:`_digests`, with at most ``workers`` processes.
    """
    width = PSEUDONYM_HEX_CHARS // 2
    packed = np.frombuffer(_digests(key, canon, width, workers), dtype=">u8").reshape(-1, 2)
    high, low = packed[:, 0].astype(np.uint64), packed[:, 1].astype(np.uint64)
    # the first 8 bytes alone order the pseudonyms unless two share them (for random digests, about one chance
    # in 10 million at 2 million values); only then is the second word needed
    order = np.argsort(high)
    high_sorted = high[order]
    tied = high_sorted[1:] == high_sorted[:-1]
    if tied.any():
        order = np.lexsort((low, high))
        high_sorted = high[order]
        tied = high_sorted[1:] == high_sorted[:-1]
    low_sorted = low[order]
    starts = np.ones(order.size, dtype=bool)
    starts[1:] = ~tied | (low_sorted[1:] != low_sorted[:-1])
    codes = np.empty(order.size, dtype=np.int32)
    codes[order] = np.cumsum(starts) - 1
    flags = {}
    for i, pseudonym in identifier_exclusions.items():
        target = np.frombuffer(bytes.fromhex(pseudonym), dtype=">u8")
        flags[i] = (high == target[0]) & (low == target[1])
    return codes, flags


#: Distinct identifiers each worker process hashes at least: ``n // HASHES_PER_WORKER`` forked processes (at most
#: one per core) hash them, so by two from 400,000. Below that, starting processes (tens of milliseconds) costs more
#: than it saves.
HASHES_PER_WORKER = 200_000


def _digests(key: Pseudonymiser, canon: list[str], width: int, workers: int | None = None) -> bytes:
    """The first ``width`` bytes of every value's digest (:meth:`~hiddenpop.privacy.Pseudonymiser.digester`),
    concatenated in the order of ``canon``.

    Contiguous ranges of at least :data:`HASHES_PER_WORKER` values are hashed by forked processes
    (:func:`hiddenpop.parallel.map_shared`): the values and the key reach them by the fork, in memory; only
    digests come back through the pipes; at most ``workers`` processes (default: one per core). The bytes are the
    same for any number of processes.
    """
    workers = min(worker_limit(workers), max(len(canon) // HASHES_PER_WORKER, 1))
    ranges = even_ranges(len(canon), workers)
    return b"".join(map_shared(_digest_range, (key, canon, width), ranges, workers=workers))


def _digest_range(shared: tuple[Pseudonymiser, list[str], int], bounds: tuple[int, int]) -> bytes:
    key, canon, width = shared
    digest = key.digester()
    start, stop = bounds
    return b"".join([digest(text)[:width] for text in canon[start:stop]])


def _identifiers_sql(source: str, identifier: str, rules: CleaningRules) -> str:
    """``CREATE TEMP TABLE hp_idents``: each distinct identifier as read, its unknown-token test and canonical form."""
    # distinct untrimmed values: trimming once per distinct value is cheaper than once per row
    query = f"""
        SELECT raw, ident, {_missing_sql("ident", rules)} AS missing
        FROM (SELECT raw, trim(raw) AS ident
              FROM (SELECT DISTINCT CAST({_quote(identifier)} AS VARCHAR) AS raw FROM {source}))"""
    return f"CREATE TEMP TABLE hp_idents AS SELECT raw, missing, canon FROM ({_canonical_layers(query, rules)})"


def _missing_sql(ident: str, rules: CleaningRules) -> str:
    """True when the trimmed identifier ``ident`` is NULL or one of ``rules.missing_tokens`` (any case)."""
    tokens = ", ".join(_literal(t.lower()) for t in rules.missing_tokens)
    return f"({ident} IS NULL OR list_position([{tokens}], lower({ident})) IS NOT NULL)"


def _canonical_layers(query: str, rules: CleaningRules) -> str:
    """``query`` (with columns ``ident`` and ``missing``) plus ``canon``: the canonical identifier, NULL if missing.

    For ``identifier_kind = "ip"`` one projection per layer of :func:`canonical_ip_sql` (NULL when not an
    address); otherwise the trimmed identifier itself.
    """
    layers = canonical_ip_sql("ident") if rules.identifier_kind == "ip" else [("canon", "ident")]
    for name, expression in layers:
        guarded = f"CASE WHEN NOT missing THEN {expression} END" if name == "canon" else expression
        query = f"SELECT *, {guarded} AS {name} FROM ({query})"
    return query


def _state_sql(prefix: str = "") -> str:
    """Identifier state from ``missing`` and ``canon``: 0 usable, 1 missing or an unknown token, 2 not an address."""
    return f"CASE WHEN {prefix}missing THEN 1 WHEN {prefix}canon IS NULL THEN 2 ELSE 0 END"


def _ipv6_sql(prefix: str = "") -> str:
    """True when the canonical identifier is an IPv6 address (false when there is none)."""
    return f"coalesce(contains({prefix}canon, ':'), false)"


def _day_sql(rules: CleaningRules, zone: ZoneOffsets | None = None) -> str:
    """``has_time`` and ``local_day`` from the columns ``raw_time`` (text) and ``parsed`` (:func:`_parsed_sql`).

    ``has_time`` is false only for a missing or blank timestamp; ``local_day`` is the calendar day in
    ``rules.timezone``, NULL when the timestamp is missing, unparseable or outside :data:`TIME_RANGE`. With
    ``zone`` (:func:`zone_offsets` of ``rules.timezone``) the day is integer arithmetic on the instant's
    microseconds (:func:`_local_day_sql`); without it, DuckDB's time-zone conversion runs on every row.
    """
    if zone is None:
        day = f"CAST(timezone({_literal(rules.timezone)}, parsed) AS DATE)"
    else:
        day = _local_day_sql("parsed", zone)
    return (f"CASE WHEN parsed IS NOT NULL THEN true ELSE coalesce(ltrim(rtrim(raw_time)) <> '', false) END "
            f"AS has_time, CASE WHEN {_in_range_sql('parsed')} THEN {day} END AS local_day")


_MICROS_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class ZoneOffsets:
    """A time zone's UTC offsets over :data:`TIME_RANGE`: ``offsets[0]`` before ``starts[0]``, ``offsets[i + 1]``
    from ``starts[i]`` on (instants and offsets in microseconds)."""

    starts: tuple[int, ...]
    offsets: tuple[int, ...]


_ZONE_CACHE: dict[tuple[str, str], ZoneOffsets] = {}


def zone_offsets(con, zone: str) -> ZoneOffsets:
    """Every change of ``zone``'s UTC offset within :data:`TIME_RANGE`, as DuckDB's own time-zone data has them.

    The offset (local wall time minus UTC) is sampled every six hours over the range; each six hours in which it
    changes are sampled again every minute, and each such minute every second, so a transition is located to
    the second (time-zone transitions fall on whole seconds, and no zone changes its offset and back within six
    hours). Remembered per DuckDB version and zone in this process.
    """
    # DuckDB is loaded only when this runs: importing it costs start-up time
    import duckdb

    cache_key = (duckdb.__version__, zone)
    if cache_key in _ZONE_CACHE:
        return _ZONE_CACHE[cache_key]
    low, high = (int(np.datetime64(bound, "s").astype(np.int64)) for bound in TIME_RANGE)
    offset = f"epoch_us(timezone({_literal(zone)}, make_timestamptz(s * 1000000))) - s * 1000000"

    def changes(intervals: str) -> list[tuple[int, int, int]]:
        """(last sample before, first sample after, offset after) of each change among the samples ``intervals``."""
        rows = con.execute(f"""
            SELECT prev_s, s, off FROM (
                SELECT s, off, lag(s) OVER (ORDER BY s) AS prev_s, lag(off) OVER (ORDER BY s) AS prev_off
                FROM (SELECT DISTINCT s, {offset} AS off FROM ({intervals}))
            ) WHERE off <> prev_off ORDER BY s""").fetchall()
        return [(int(a), int(b), int(c)) for a, b, c in rows]

    first = int(con.execute(f"SELECT {offset} FROM (SELECT {low} AS s)").fetchall()[0][0])
    found = changes(f"SELECT range AS s FROM range({low}, {high + 21600}, 21600)")
    for step in (60, 1):
        if not found:
            break
        grid = " UNION ALL ".join(f"SELECT range AS s FROM range({a}, {b + 1}, {step})" for a, b, _ in found)
        found = changes(grid)
    result = ZoneOffsets(starts=tuple(b * 1_000_000 for _, b, _ in found),
                         offsets=(first, *(c for _, _, c in found)))
    _ZONE_CACHE[cache_key] = result
    return result


def _local_day_sql(parsed: str, zone: ZoneOffsets) -> str:
    """The calendar day (DATE) in ``zone`` of the in-range instant ``parsed``, without a per-row time-zone call.

    The offset in effect is chosen by a balanced tree of comparisons of the instant's microseconds since 1970
    with the transitions (about log2 of their number per row); the day is then floor((instant + offset) / day).
    One day is added before the integer division and taken off after it, so the dividend stays positive for
    instants within a day after 1970-01-01 in zones west of UTC (the division is then a floor).
    """
    micros = f"epoch_us({parsed})"

    def tree(first: int, last: int) -> str:
        if first == last:
            return str(zone.offsets[first])
        mid = (first + last + 1) // 2
        return f"CASE WHEN {micros} < {zone.starts[mid - 1]} THEN {tree(first, mid - 1)} ELSE {tree(mid, last)} END"

    offset = tree(0, len(zone.offsets) - 1)
    return (f"(DATE '1970-01-01' + CAST(({micros} + {offset} + {_MICROS_PER_DAY}) // {_MICROS_PER_DAY} - 1 "
            f"AS INTEGER))")


def _identifier_map_sql(identifier_exclusions: dict[int, str]) -> str:
    """``CREATE TEMP TABLE hp_id_map``: non-NULL identifier as read -> code, state, IPv6, identifier exclusions."""
    hashed = "".join(f", coalesce(h.flag_{i}, false) AS flag_{i}" for i in identifier_exclusions)
    return f"""
        CREATE TEMP TABLE hp_id_map AS
        SELECT i.raw, hash(i.raw) AS raw_hash, h.code, {_state_sql("i.")} AS state,
               {_ipv6_sql("i.")} AS ipv6{hashed}
        FROM hp_idents AS i LEFT JOIN {_HASHES_VIEW} AS h ON i.canon = h.canon
        WHERE i.raw IS NOT NULL
    """


def _raw_hashes_unique(con) -> bool:
    """True when no two identifier values in ``hp_id_map`` share a ``raw_hash``, so a join on it is exact."""
    return bool(con.execute("SELECT count(*) = count(DISTINCT raw_hash) FROM hp_id_map").fetchall()[0][0])


def _mapped_staging_sql(source: str, identifier: str, time: str, rules: CleaningRules,
                        identifier_exclusions: dict[int, str], join_on_hash: bool = False,
                        zone: ZoneOffsets | None = None) -> str:
    """``CREATE TEMP TABLE staged`` from every row joined to ``hp_id_map``: the columns of :func:`_staging_sql`,
    one row per report row (``n`` = 1), not aggregated: :func:`_distinct_sorted_pairs` finds the distinct
    (code, day) pairs by sorting, which costs a fraction of a hash aggregate into about one group per row.

    ``join_on_hash`` joins on ``raw_hash`` (exact only when :func:`_raw_hashes_unique`); the rows are read from
    the same files as the map, so every non-NULL value has its map row.
    """
    raw_time = f"CAST({_quote(time)} AS VARCHAR)"
    parsed = _parsed_sql(raw_time)
    plain_flags = _plain_flag_sql(identifier_exclusions, rules)
    plain_names = [item.rsplit(" AS ", 1)[1] for item in plain_flags]
    carry = "".join(f", r.{name}" for name in plain_names)
    extra = "".join(f", {item}" for item in plain_flags)
    hashed = "".join(f", coalesce(m.flag_{i}, false) AS flag_{i}" for i in identifier_exclusions)
    key = f"CAST({_quote(identifier)} AS VARCHAR)"
    if join_on_hash:  # hash(NULL) is a number: keep NULL identifiers NULL so they find no map row
        key = f"CASE WHEN {key} IS NOT NULL THEN hash({key}) END"
    # NULL identifiers have no row in hp_id_map: missing (state 1), not IPv6, not excluded
    return f"""
        CREATE TEMP TABLE staged AS
        SELECT m.code, coalesce(m.state, 1) AS state, coalesce(m.ipv6, false) AS ipv6, r.has_time,
               r.local_day{carry}{hashed}, CAST(1 AS UTINYINT) AS n
        FROM (
            SELECT raw, {_day_sql(rules, zone)}{"".join(f", {name}" for name in plain_names)}
            FROM (
                SELECT {key} AS raw, {raw_time} AS raw_time, {parsed} AS parsed{extra}
                FROM {source}
            )
        ) AS r LEFT JOIN hp_id_map AS m ON r.raw = m.{"raw_hash" if join_on_hash else "raw"}
    """


def _plain_flag_sql(identifier_exclusions: dict[int, str], rules: CleaningRules) -> list[str]:
    """Per-row flags not on the identifier: ``expression AS flag_i`` for exclusions, then ``country_ok``."""
    flags = []
    for i, (column, value) in enumerate(rules.exclude):
        if i not in identifier_exclusions:
            flags.append(f"coalesce(trim(CAST({_quote(column)} AS VARCHAR)) = {_literal(value)}, false) AS flag_{i}")
    if rules.country_column:
        target = _literal(rules.country.strip().upper())
        flags.append(
            f"coalesce(upper(trim(CAST({_quote(rules.country_column)} AS VARCHAR))) = {target}, false) AS country_ok"
        )
    return flags


def _staging_sql(source: str, identifier: str, time: str, rules: CleaningRules,
                 identifier_exclusions: dict[int, str] | None = None, zone: ZoneOffsets | None = None) -> str:
    """The per-batch fallback: one query that reads every row, pseudonymises and aggregates into ``staged``.

    Used when the distinct identifiers do not fit in memory for :func:`_stage_in_memory` (same table, same codes).

    The raw identifier exists only in the row-wise projections at the bottom of this query, which DuckDB
    streams and never spills: each row's identifier is trimmed, tested against the unknown tokens, brought to
    its canonical form (``identifier_kind = "ip"``, :func:`canonical_ip_sql`) and replaced by its keyed hash
    there. Every operator that can spill to disk (the aggregate to one row per (pseudonym, day, flags), the
    DISTINCT, the window numbering pseudonyms and the join) sees only pseudonyms. ``state`` is 0 for a usable
    identifier, 1 for a missing one (or an unknown token), 2 for a text that is not a valid address.
    ``identifier_exclusions`` maps an exclusion's index to the pseudonym of its (canonical) value when the
    excluded column is the identifier itself, so the raw value is compared as a hash and never written into
    the query.
    """
    identifier_exclusions = identifier_exclusions or {}
    raw_time = f"CAST({_quote(time)} AS VARCHAR)"
    parsed = _parsed_sql(raw_time)
    plain_flags = _plain_flag_sql(identifier_exclusions, rules)
    plain_names = [item.rsplit(" AS ", 1)[1] for item in plain_flags]
    hashed_flags = [f"coalesce(pseudonym = {_literal(h)}, false) AS flag_{i}"
                    for i, h in identifier_exclusions.items()]
    all_names = plain_names + [item.rsplit(" AS ", 1)[1] for item in hashed_flags]
    carry = "".join(f", {name}" for name in plain_names)
    extra = "".join(f", {item}" for item in plain_flags)
    hashed = "".join(f", {item}" for item in hashed_flags)
    # innermost: read, trim, test the unknown tokens, parse the time; then one projection per canonical layer
    query = _canonical_layers(f"""
                    SELECT ident, {_missing_sql("ident", rules)} AS missing, {_day_sql(rules, zone)}{carry}
                    FROM (
                        SELECT trim(CAST({_quote(identifier)} AS VARCHAR)) AS ident, {raw_time} AS raw_time,
                               {parsed} AS parsed{extra}
                        FROM {source}
                    )""", rules)
    canonical_layers = f"SELECT canon, missing, has_time, local_day{carry} FROM ({query})"
    return f"""
        CREATE TEMP TABLE staged AS
        WITH hashed AS (
            SELECT CASE WHEN canon IS NOT NULL THEN {PSEUDONYM_FUNCTION}(canon) END AS pseudonym,
                   {_state_sql()} AS state, {_ipv6_sql()} AS ipv6, has_time, local_day{carry}
            FROM ({canonical_layers})
        ),
        grouped AS (
            SELECT pseudonym, state, ipv6, has_time, local_day{carry}{hashed}, count(*) AS n
            FROM hashed
            GROUP BY ALL
        ),
        coded AS (
            SELECT pseudonym, CAST(row_number() OVER (ORDER BY pseudonym) - 1 AS INTEGER) AS code
            FROM (SELECT DISTINCT pseudonym FROM grouped WHERE pseudonym IS NOT NULL)
        )
        SELECT coded.code, grouped.state, grouped.ipv6, grouped.has_time, grouped.local_day{
            "".join(f", grouped.{name}" for name in all_names)}, grouped.n
        FROM grouped LEFT JOIN coded ON grouped.pseudonym = coded.pseudonym
    """


def _raise_bad_timestamp(con, files: list[str], source: str, time: str, count: int) -> None:
    """Find the first unparseable or out-of-range timestamp (file, 1-based data row) without touching identifiers."""
    raw_time = f"CAST({_quote(time)} AS VARCHAR)"
    parsed = _parsed_sql(raw_time)
    in_range = _in_range_sql(parsed)
    present = f"nullif(trim({raw_time}), '') IS NOT NULL"
    low, high = TIME_RANGE
    for f in files:
        kind = "parquet" if f.lower().endswith((".parquet", ".pq")) else "csv"
        values = con.execute(
            f"SELECT {present} AND {parsed} IS NULL AS unparsed, "
            f"{present} AND {parsed} IS NOT NULL AND NOT {in_range} AS outside "
            f"FROM {_source_sql([f], kind)}"
        ).fetchnumpy()
        unparsed = np.asarray(values["unparsed"], dtype=bool)
        outside = np.asarray(values["outside"], dtype=bool)
        hits = np.flatnonzero(unparsed | outside)
        if hits.size:
            row = int(hits[0])
            if unparsed[row]:
                problem = "timestamp cannot be parsed"
                fix = "use ISO 8601 such as 2017-03-01T14:05:00+08:00"
            else:
                problem = f"timestamp is outside {low} to {high} (infinite, a placeholder year or out of range)"
                fix = "correct or remove such rows; report logs start after 1970"
            raise DataError(
                f"{Path(f).name}, row {row + 1}, column {time!r}: {problem} ({count} bad timestamps in all); {fix}"
            )
    raise DataError(f"{count} timestamps in column {time!r} cannot be parsed or are out of range; use ISO 8601")
