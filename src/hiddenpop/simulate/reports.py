"""Synthetic tipline report streams with known truth per window and exactly known injected faults.

Model
    * Identifiers (IPv4 addresses) arrive and leave: ``initial`` are present at day 0, further arrivals follow a
      Poisson process whose rate grows by ``growth`` per year (``arrival_rate * exp(growth * day / 365)`` per
      day); each stays an exponential time with mean ``mean_stay_days`` (``None`` = until the end: closed).
    * While present, identifier ``i`` is reported as a Poisson process with daily rate ``lambda_i``,
      log-normal with median ``rate_median`` and log-sd ``rate_sdlog`` (heterogeneity; 0 = homogeneous). So the
      probability of being seen in an occasion of ``L`` days is ``1 - exp(-L lambda_i)`` for an identifier
      present throughout; several reports on one day are natural duplicates.
    * Faults are extra rows, each with exactly one fault and otherwise valid: missing identifiers, rows without
      timestamp, IPv6 identifiers, foreign identifiers (another country), flagged categories (``viral``) and
      rows dated before the study start. Their counts are exact and recorded in ``injected``, so a cleaning
      audit can be checked to the row.

Truth: for any window ``[start, end]`` (days) the number of identifiers present at some time in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

DAY_SECONDS = 86_400


@dataclass
class ReportStream:
    """Report rows as arrays (fast to write with DuckDB) plus the truth behind them.

    Row arrays: ``identifier_index`` (-1 = missing identifier; indices >= ``n_identifiers`` are foreign or IPv6
    addresses), ``seconds`` (local seconds since ``origin`` midnight; NaN = missing timestamp), ``country`` code,
    ``category`` and ``ipv6`` flag.
    """

    origin: date
    days: int
    utc_offset_hours: int
    identifier_index: np.ndarray
    seconds: np.ndarray
    country: np.ndarray
    category: np.ndarray
    ipv6: np.ndarray
    entry_day: np.ndarray
    exit_day: np.ndarray
    rate: np.ndarray
    target_country: str
    injected: dict[str, int] = field(default_factory=dict)
    seed: int | None = None

    @property
    def n_identifiers(self) -> int:
        return int(self.entry_day.size)

    @property
    def n_rows(self) -> int:
        return int(self.seconds.size)

    def truth(self, window_start: np.ndarray, window_days: int) -> np.ndarray:
        """Number of identifiers present at some time in each window ``[s, s + window_days)`` (days)."""
        window_start = np.asarray(window_start, dtype=float)
        entry = np.sort(self.entry_day)
        exit_ = np.sort(self.exit_day)
        not_yet = self.n_identifiers - np.searchsorted(entry, window_start + window_days, side="left")
        gone = np.searchsorted(exit_, window_start, side="right")
        return self.n_identifiers - not_yet - gone

    def _select_sql(self, con) -> str:
        con.register("raw", pd.DataFrame({
            "report_id": np.arange(1, self.n_rows + 1, dtype=np.int64), "ix": self.identifier_index.astype(np.int64),
            "seconds": self.seconds, "country": pd.Categorical(self.country),
            "category": pd.Categorical(self.category), "v6": self.ipv6,
        }))
        salt = _salt(self.seed)
        offset = f"{'+' if self.utc_offset_hours >= 0 else '-'}{abs(self.utc_offset_hours):02d}:00"
        return f"""
            SELECT report_id,
                   CASE WHEN seconds IS NULL OR isnan(seconds) THEN ''
                        ELSE strftime(TIMESTAMP '{self.origin} 00:00:00' + to_seconds(CAST(seconds AS BIGINT)),
                                      '%Y-%m-%dT%H:%M:%S') || '{offset}' END AS time,
                   {_address_sql('ix', 'v6', salt)} AS ip,
                   CAST(country AS VARCHAR) AS country, CAST(category AS VARCHAR) AS category
            FROM raw
        """

    def frame(self) -> pd.DataFrame:
        """The report rows as a DataFrame (report_id, time, ip, country, category), exactly as written."""
        # DuckDB is loaded only when this runs: importing it costs start-up time
        import duckdb

        con = duckdb.connect()
        try:
            return con.execute(f"SELECT * FROM ({self._select_sql(con)}) ORDER BY report_id").df()
        finally:
            con.close()

    def write(self, path: str | Path, *, fmt: str | None = None, files: int = 1) -> list[Path]:
        """Write the rows to CSV or Parquet (via DuckDB, fast for millions of rows); returns the paths."""
        # DuckDB is loaded only when this runs: importing it costs start-up time
        import duckdb

        path = Path(path)
        fmt = fmt or ("parquet" if path.suffix == ".parquet" else "csv")
        con = duckdb.connect()
        select = self._select_sql(con)
        paths = []
        if files == 1:
            targets = [(path, "true")]
        else:
            targets = [(path.with_name(f"{path.stem}_{k:03d}{path.suffix}"), f"report_id % {files} = {k}")
                       for k in range(files)]
            # format the rows once (timestamps and addresses are the expensive part), then split them
            con.execute(f"CREATE TEMP TABLE formatted AS {select}")
            select = "SELECT * FROM formatted"
        for target, where in targets:
            option = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER)"
            con.execute(f"COPY (SELECT * FROM ({select}) WHERE {where} ORDER BY report_id) TO '{target}' {option}")
            paths.append(target)
        con.close()
        return paths


def _salt(seed: int | None) -> int:
    return int(np.random.default_rng(seed if seed is not None else 0).integers(1, 2**31 - 1))


def _address_sql(ix: str, v6: str, salt: int) -> str:
    """Distinct, reproducible address strings for identifier indices (a bijective hash of the index mod 2^32)."""
    mixed = f"((CAST({ix} AS BIGINT) * 2654435761 + {salt}) % 4294967296)"
    ipv4 = (f"CAST({mixed} // 16777216 AS VARCHAR) || '.' || CAST(({mixed} // 65536) % 256 AS VARCHAR)"
            f" || '.' || CAST(({mixed} // 256) % 256 AS VARCHAR) || '.' || CAST({mixed} % 256 AS VARCHAR)")
    ipv6 = f"'2001:db8:' || printf('%x', ({mixed} // 65536) % 65536) || ':' || printf('%x', {mixed} % 65536) || '::1'"
    return f"CASE WHEN {ix} < 0 THEN 'unknown' WHEN {v6} THEN {ipv6} ELSE {ipv4} END"


def simulate_reports(
    *,
    initial: int = 2000,
    arrival_rate: float = 0.0,
    growth: float = 0.0,
    mean_stay_days: float | None = None,
    days: int = 365,
    origin: date | str = "2014-01-01",
    rate_median: float = 0.03,
    rate_sdlog: float = 0.0,
    missing_identifier: int = 0,
    missing_timestamp: int = 0,
    ipv6: int = 0,
    foreign: int = 0,
    flagged: int = 0,
    before_start: int = 0,
    target_country: str = "PH",
    utc_offset_hours: int = 8,
    seed: int | None = None,
) -> ReportStream:
    """Simulate a report stream (see the module docstring). Same seed, same stream."""
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp(origin).date()
    # presence
    arrivals_expected = arrival_rate * (
        days if growth == 0 else 365 / growth * (np.exp(growth * days / 365) - 1)
    )
    n_arrivals = int(rng.poisson(arrivals_expected)) if arrival_rate > 0 else 0
    if n_arrivals:
        u = rng.random(n_arrivals)
        if growth == 0:
            arrival_days = u * days
        else:
            arrival_days = 365 / growth * np.log1p(u * (np.exp(growth * days / 365) - 1))
    else:
        arrival_days = np.empty(0)
    entry = np.concatenate([np.zeros(initial), np.sort(arrival_days)])
    n = entry.size
    if mean_stay_days is None:
        exit_ = np.full(n, float(days))
    else:
        exit_ = np.minimum(entry + rng.exponential(mean_stay_days, n), float(days))
    rate = rate_median * np.exp(rate_sdlog * rng.standard_normal(n)) if rate_sdlog > 0 else np.full(n, rate_median)
    # reports while present
    counts = rng.poisson(rate * (exit_ - entry))
    owner = np.repeat(np.arange(n), counts)
    times = (entry[owner] + rng.random(owner.size) * (exit_ - entry)[owner]) * DAY_SECONDS
    rows_ix = [owner]
    rows_sec = [np.floor(times)]
    rows_country = [np.full(owner.size, target_country, dtype=object)]
    rows_cat = [np.full(owner.size, "standard", dtype=object)]
    rows_v6 = [np.zeros(owner.size, dtype=bool)]

    def valid_seconds(k: int) -> np.ndarray:
        return np.floor(rng.random(k) * days * DAY_SECONDS)

    def add(ix, sec, country, cat, v6) -> None:
        rows_ix.append(np.asarray(ix, dtype=np.int64))
        rows_sec.append(np.asarray(sec, dtype=float))
        rows_country.append(np.full(len(ix), country, dtype=object))
        rows_cat.append(np.full(len(ix), cat, dtype=object))
        rows_v6.append(np.full(len(ix), v6, dtype=bool))

    population_ids = lambda k: rng.integers(0, max(n, 1), k)  # noqa: E731
    add(np.full(missing_identifier, -1), valid_seconds(missing_identifier), target_country, "standard", False)
    add(population_ids(missing_timestamp), np.full(missing_timestamp, np.nan), target_country, "standard", False)
    add(n + 10_000_000 + np.arange(ipv6), valid_seconds(ipv6), target_country, "standard", True)
    add(n + 20_000_000 + rng.integers(0, max(foreign // 2, 1), foreign), valid_seconds(foreign), "XX", "standard",
        False)
    add(population_ids(flagged), valid_seconds(flagged), target_country, "viral", False)
    add(population_ids(before_start), -1 - np.floor(rng.random(before_start) * 30 * DAY_SECONDS), target_country,
        "standard", False)
    ix = np.concatenate(rows_ix)
    sec = np.concatenate(rows_sec)
    order = rng.permutation(ix.size)
    clean_days = np.floor(times / DAY_SECONDS).astype(np.int64)
    distinct_pairs = np.unique(owner.astype(np.int64) * (days + 1) + clean_days).size
    injected = {
        "rows": int(ix.size), "missing_identifier": missing_identifier, "missing_timestamp": missing_timestamp,
        "ipv6": ipv6, "country": foreign, "exclude category=viral": flagged, "date_range": before_start,
        "dedupe": int(owner.size - distinct_pairs), "clean_pairs": int(distinct_pairs),
    }
    return ReportStream(
        origin=origin, days=days, utc_offset_hours=utc_offset_hours, identifier_index=ix[order],
        seconds=sec[order], country=np.concatenate(rows_country)[order], category=np.concatenate(rows_cat)[order],
        ipv6=np.concatenate(rows_v6)[order], entry_day=entry, exit_day=exit_, rate=rate,
        target_country=target_country, injected=injected, seed=seed,
    )
