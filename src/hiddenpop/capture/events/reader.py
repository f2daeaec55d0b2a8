"""Report-log ingestion with DuckDB: read, pseudonymise at read time, clean with an audit.

Pipeline (one DuckDB connection per :class:`EventLog`):

1. **Read** CSV or Parquet files (globs allowed) with a column mapping (identifier, timestamp, optional country
   and flag columns). CSV columns are read as text so nothing is guessed.
2. **Pseudonymise inside the reader.** The distinct identifiers of the scan are hashed by a vectorised DuckDB
   UDF that computes exactly :meth:`hiddenpop.privacy.Pseudonymiser.hash_one` (HMAC-SHA256, 32 hex chars) and are
   replaced by a dense integer code within the same query. Everything that depends on the identifier alone
   (trimming, the unknown-token test, the IPv6 test, the keyed hash, the code) is computed once per distinct
   raw value, never once per row (see :func:`_staging_sql`). The raw identifier never leaves that query: the
   tables kept in memory hold only codes, pseudonyms and day numbers; outputs, logs and error messages never
   contain identifier values.
3. **Timestamps, explicitly zoned.** Timestamps carrying an offset are read as instants; naive timestamps are
   taken to be in ``input_timezone`` (default UTC). Days (for dedupe, occasions and date ranges) are calendar
   days in ``timezone`` (default UTC), e.g. ``Asia/Manila`` for a country-level study.
4. **Cleaning** with one audit row per step (see :mod:`hiddenpop.capture.events.cleaning`).

The result is a table of distinct (identifier code, day) pairs, the input of :mod:`hiddenpop.capture.events.occasions`.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.events.cleaning import CleaningRules, add_dedupe_step, audit_steps
from hiddenpop.data.io import missing_column
from hiddenpop.errors import ConfigError, DataError
from hiddenpop.privacy import Pseudonymiser

PSEUDONYM_FUNCTION = "hiddenpop_pseudonym"


def pseudonym_udf(key: Pseudonymiser):
    """A vectorised (Arrow) function computing ``key.hash_one`` for every string of an Arrow array.

    Uses :meth:`hiddenpop.privacy.Pseudonymiser.hasher` (HMAC-SHA256 from precomputed pad states), so the DuckDB
    path and the Python path share one keyed-hash implementation.
    """
    import pyarrow as pa

    pseudonym = key.hasher()

    def hash_array(values: Any) -> Any:
        out = [None if text is None else pseudonym(text) for text in values.to_pylist()]
        return pa.array(out, type=pa.string())

    return hash_array


def connect(key: Pseudonymiser, *, threads: int | None = None, memory_limit: str | None = None,
            temp_directory: str | None = None):
    """A DuckDB connection with the pseudonymisation UDF registered.

    ``threads`` (DuckDB's default: one per core) and ``memory_limit`` (DuckDB's default: 80% of physical memory;
    e.g. ``"3GB"``) bound the engine; beyond the limit, aggregates, sorts and the temporary tables spill to
    ``temp_directory`` (DuckDB's default: a ``.tmp`` folder in the working directory). Peak memory of a run
    is about this limit plus the Python side's history-count batches (a few hundred MB).
    """
    import duckdb

    con = duckdb.connect(config=engine_config(threads, memory_limit, temp_directory))
    con.create_function(
        PSEUDONYM_FUNCTION, pseudonym_udf(key), [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        type="arrow", side_effects=False,
    )
    return con


def engine_config(threads: int | None = None, memory_limit: str | None = None,
                  temp_directory: str | None = None) -> dict[str, Any]:
    """DuckDB connection settings; unset ones keep DuckDB's defaults."""
    config: dict[str, Any] = {}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    if temp_directory:
        config["temp_directory"] = temp_directory
    return config


def engine_settings(con) -> dict[str, Any]:
    """DuckDB version, threads and memory limit in effect on ``con`` (recorded with every event log)."""
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

    def date_of(self, day: int | np.ndarray) -> Any:
        return pd.Timestamp(self.origin) + pd.to_timedelta(day, unit="D")

    def day_of(self, when: date | str) -> int:
        return int((pd.Timestamp(when).normalize() - pd.Timestamp(self.origin)).days)

    def iter_pairs(self, batch_rows: int = 2_000_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream (code, day) arrays sorted by code then day, in batches that never split an identifier."""
        reader = self.connection.sql("SELECT code, day FROM pairs ORDER BY code, day").to_arrow_reader(
            batch_rows
        )
        carry_code = np.empty(0, dtype=np.int64)
        carry_day = np.empty(0, dtype=np.int64)
        for chunk in _gather(reader, batch_rows):
            codes = np.concatenate([carry_code, *(b.column(0).to_numpy() for b in chunk)]).astype(np.int64)
            days = np.concatenate([carry_day, *(b.column(1).to_numpy() for b in chunk)]).astype(np.int64)
            if codes.size == 0:
                continue
            last = codes[-1]
            cut = int(np.searchsorted(codes, last, side="left"))
            if cut == 0:
                carry_code, carry_day = codes, days
                continue
            carry_code, carry_day = codes[cut:], days[cut:]
            yield codes[:cut], days[:cut]
        if carry_code.size:
            yield carry_code, carry_day


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
    con = connect(key, threads=threads, memory_limit=memory_limit, temp_directory=temp_directory)
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
            raise missing_column(files[0], column, columns, role=role)
    con.execute(f"SET TimeZone = {_literal(rules.input_timezone)}")
    try:
        con.execute(_staging_sql(source, identifier, time, rules))
    except Exception as exc:
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
    notes: list[str] = []
    if origin_row[0] is None:
        raise DataError(
            f"{files[0]}: no report rows left after cleaning; check the audit: "
            + "; ".join(f"{r.step} removed {r.removed}" for r in audit.itertuples())
        )
    origin = rules.start if rules.start is not None else origin_row[0]
    # staged has one row per (code, day, flags) and every kept row has the same flags, so (code, day) is
    # already unique among kept rows: no DISTINCT needed
    con.execute(
        f"""
        CREATE TEMP TABLE pairs AS
        SELECT code, CAST(date_diff('day', DATE {_literal(str(origin))}, local_day) AS INTEGER) AS day
        FROM staged WHERE {keep_sql}
        """
    )
    if rules.dedupe == "week":
        kept_units = con.execute(
            f"SELECT count(DISTINCT (code, date_trunc('week', local_day))) FROM staged WHERE {keep_sql}"
        ).fetchall()[0][0]
    con.execute("DROP TABLE staged")
    n_pairs, n_ids, first_day, last_day = con.execute(
        "SELECT count(*), count(DISTINCT code), min(day), max(day) FROM pairs"
    ).fetchall()[0]
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
        engine=engine,
    )


def _staging_sql(source: str, identifier: str, time: str, rules: CleaningRules) -> str:
    """The one query that reads every row, pseudonymises and aggregates: ``CREATE TEMP TABLE staged``.

    The raw identifier exists only inside this query. Work that depends on the identifier alone is done once
    per *distinct raw value* (a few million at most), not once per row: trimming, the unknown-token test, the
    IPv6 test, the keyed hash and the dense code (``row_number`` in pseudonym order over the distinct trimmed
    identifiers, so whitespace variants of one identifier share a code). The row scan then only looks up each
    raw value's code (a hash join against the distinct values) and aggregates rows to one row per (code, day,
    flags) with the row count ``n``. Timestamps are parsed as they are and trimmed only when that fails, so
    the common case costs one cast per row.
    """
    raw_ident = f"CAST({_quote(identifier)} AS VARCHAR)"
    tokens = ", ".join(_literal(t.lower()) for t in rules.missing_tokens)
    raw_time = f"CAST({_quote(time)} AS VARCHAR)"
    # TRY_CAST of the untrimmed text first; trim (and treat blank as missing) only where that fails
    # (no nullif: DuckDB rewrites it to a CASE that mentions its argument twice, and common-subexpression
    # elimination would then trim every row; a blank text does not cast anyway)
    parsed = f"coalesce(TRY_CAST({raw_time} AS TIMESTAMPTZ), TRY_CAST(trim({raw_time}) AS TIMESTAMPTZ))"
    extra_select = []
    if rules.country_column:
        target = _literal(rules.country.strip().upper())
        extra_select.append(
            f"coalesce(upper(trim(CAST({_quote(rules.country_column)} AS VARCHAR))) = {target}, false) AS country_ok"
        )
    for i, (column, value) in enumerate(rules.exclude):
        extra_select.append(f"coalesce(trim(CAST({_quote(column)} AS VARCHAR)) = {_literal(value)}, false) AS flag_{i}")
    extra = (", " + ", ".join(extra_select)) if extra_select else ""
    flags = [item.rsplit(" AS ", 1)[1] for item in extra_select]
    inner_names = "".join(f", {name}" for name in flags)
    names = "".join(f", rows.{name}" for name in flags)
    return f"""
        CREATE TEMP TABLE staged AS
        WITH raw_ids AS (
            SELECT DISTINCT {raw_ident} AS raw FROM {source}
        ),
        ids AS (
            SELECT raw, trim(raw) AS ident, coalesce(lower(trim(raw)) NOT IN ({tokens}), false) AS valid
            FROM raw_ids
        ),
        coded AS (
            SELECT ident, valid, valid AND contains(ident, ':') AS ipv6,
                   CASE WHEN valid THEN CAST(row_number() OVER (
                       PARTITION BY valid ORDER BY {PSEUDONYM_FUNCTION}(CASE WHEN valid THEN ident END)
                   ) - 1 AS INTEGER) END AS code
            FROM (SELECT DISTINCT ident, valid FROM ids)
        ),
        lookup AS (
            SELECT ids.raw, coded.code, coded.ipv6 FROM ids JOIN coded ON ids.ident = coded.ident
        )
        SELECT lookup.code, coalesce(lookup.ipv6, false) AS ipv6, rows.has_time, rows.local_day{names},
               count(*) AS n
        FROM (
            SELECT raw, CASE WHEN parsed IS NOT NULL THEN true ELSE coalesce(ltrim(rtrim(raw_time)) <> '', false) END AS has_time,
                   CAST(timezone({_literal(rules.timezone)}, parsed) AS DATE) AS local_day{inner_names}
            FROM (
                SELECT {raw_ident} AS raw, {raw_time} AS raw_time, {parsed} AS parsed{extra}
                FROM {source}
            )
        ) AS rows
        LEFT JOIN lookup ON rows.raw = lookup.raw
        GROUP BY ALL
    """


def _raise_bad_timestamp(con, files: list[str], source: str, time: str, count: int) -> None:
    """Find the first unparseable timestamp (file and 1-based data row) without touching identifiers."""
    for f in files:
        kind = "parquet" if f.lower().endswith((".parquet", ".pq")) else "csv"
        values = con.execute(
            f"SELECT nullif(trim(CAST({_quote(time)} AS VARCHAR)), '') IS NOT NULL "
            f"AND TRY_CAST(nullif(trim(CAST({_quote(time)} AS VARCHAR)), '') AS TIMESTAMPTZ) IS NULL "
            f"FROM {_source_sql([f], kind)}"
        ).fetchnumpy()
        flags = next(iter(values.values()))
        hits = np.flatnonzero(np.asarray(flags, dtype=bool))
        if hits.size:
            raise DataError(
                f"{Path(f).name}, row {int(hits[0]) + 1}, column {time!r}: timestamp cannot be parsed "
                f"({count} such rows in all); use ISO 8601 such as 2017-03-01T14:05:00+08:00"
            )
    raise DataError(f"{count} timestamps in column {time!r} cannot be parsed; use ISO 8601")
