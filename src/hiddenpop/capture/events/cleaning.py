"""Cleaning rules for report logs and the audit table they produce.

Each step removes rows for one stated reason and is reported as an audit row
``(step, rows_in, rows_out, removed, reason)``; the steps run in this order:

1. ``read``: every row of every input file.
2. ``missing_identifier``: no identifier, or a token meaning unknown (``""``, ``unknown``, ``NA``, ``-`` ...).
   A report without an identifier cannot be linked to any other report, so it cannot be a capture.
2b. ``invalid_address`` (only when the identifier is declared an IP, ``identifier_kind = "ip"``): the identifier
   is not a valid IPv4 or IPv6 address (``1.2.3.4.5``, ``999.1.1.1``, text). Valid spellings are brought to one
   canonical form before hashing (:func:`hiddenpop.privacy.canonical_ip`), so ``010.000.000.001``,
   ``10.0.0.1:443`` and ``::ffff:10.0.0.1`` are one identifier.
3. ``missing_timestamp``: no timestamp (unparseable timestamps are an error, never dropped).
4. ``ipv6`` (optional): IPv6 identifiers, when the study counts IPv4 addresses only (the prevalence base is the
   country's IPv4 space).
5. ``country``: rows outside the target country (including rows whose country is missing).
6. ``date_range``: rows outside ``[start, end]`` (local calendar days, inclusive).
7. ``exclude <column>=value #<i>``: one step per excluded category, e.g. viral/meme content that is re-shared by
   people who are not part of the hidden population. The excluded value is named by its position on the command
   line and recorded only as a keyed hash (it may be an identifier), never as given.
8. ``dedupe``: keep one record per identifier per ``dedupe`` unit (``day`` by default, ``week``, or ``none``).
   Several reports of the same address on the same day are one capture, not several.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from hiddenpop.errors import ConfigError

DEFAULT_MISSING_TOKENS = ("", "unknown", "na", "n/a", "null", "none", "-", "?")
DEDUPE_UNITS = ("day", "week", "none")
IDENTIFIER_KINDS = ("text", "ip")
AUDIT_COLUMNS = ["step", "rows_in", "rows_out", "removed", "reason"]


@dataclass
class CleaningRules:
    """What to keep. Dates are local calendar days in ``timezone``; naive timestamps are in ``input_timezone``."""

    country_column: str | None = None
    country: str | None = None
    exclude: list[tuple[str, str]] = field(default_factory=list)
    start: date | None = None
    end: date | None = None
    dedupe: str = "day"
    exclude_ipv6: bool = False
    timezone: str = "UTC"
    input_timezone: str = "UTC"
    missing_tokens: tuple[str, ...] = DEFAULT_MISSING_TOKENS
    #: what the identifier column holds: "ip" (canonicalised, invalid addresses counted and dropped) or "text"
    identifier_kind: str = "text"
    #: keyed hashes (12 hex) of the excluded values, filled in by the reader; recorded instead of the values
    exclude_pseudonyms: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.identifier_kind not in IDENTIFIER_KINDS:
            raise ConfigError(
                f"--id-kind must be one of {', '.join(IDENTIFIER_KINDS)}, not {self.identifier_kind!r}"
            )
        if self.dedupe not in DEDUPE_UNITS:
            raise ConfigError(f"--dedupe must be one of {', '.join(DEDUPE_UNITS)}, not {self.dedupe!r}")
        if (self.country is None) != (self.country_column is None):
            raise ConfigError("give both --country-column and --country, or neither")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ConfigError(f"--start {self.start} is after --end {self.end}")
        for zone in (self.timezone, self.input_timezone):
            _check_timezone(zone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "country_column": self.country_column, "country": self.country,
            "exclude": self.exclusion_labels(),
            "identifier_kind": self.identifier_kind,
            "start": None if self.start is None else str(self.start),
            "end": None if self.end is None else str(self.end),
            "dedupe": self.dedupe, "exclude_ipv6": self.exclude_ipv6, "timezone": self.timezone,
            "input_timezone": self.input_timezone,
        }


    def exclusion_labels(self) -> list[str]:
        """``column=value #i`` per exclusion, with the value's keyed hash when known; never the value itself."""
        labels = []
        for i, (column, _value) in enumerate(self.exclude):
            label = f"{column}=value #{i + 1}"
            if i < len(self.exclude_pseudonyms):
                label += f" (keyed hash {self.exclude_pseudonyms[i]})"
            labels.append(label)
        return labels


def _check_timezone(zone: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {zone!r}; use an IANA name such as 'UTC' or 'Asia/Manila'") from None


def parse_exclusions(values: list[str] | None) -> list[tuple[str, str]]:
    """``["category=viral", "flag=meme"]`` -> ``[("category", "viral"), ("flag", "meme")]``."""
    out = []
    for item in values or []:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise ConfigError(f"--exclude expects COLUMN=VALUE, got {item!r}")
        out.append((column.strip(), value.strip()))
    return out


def _lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def audit_steps(con: Any, rules: CleaningRules) -> tuple[pd.DataFrame, str]:
    """Count rows through every filtering step on the ``staged`` table; return (audit, keep condition SQL).

    ``staged`` has one row per (code, local_day, flags) with the number of report rows ``n``.
    """
    steps: list[tuple[str, str, str]] = [
        ("missing_identifier", "state <> 1", "identifier missing or an unknown token"),
    ]
    if rules.identifier_kind == "ip":
        steps.append(("invalid_address", "state <> 2", "identifier is not a valid IPv4 or IPv6 address"))
    steps.append(("missing_timestamp", "has_time", "timestamp missing"))
    if rules.exclude_ipv6:
        steps.append(("ipv6", "NOT ipv6", "IPv6 identifier excluded (IPv4 study)"))
    if rules.country is not None:
        steps.append(("country", "country_ok",
                      f"country is not {rules.country.strip().upper()} or is missing"))
    if rules.start is not None or rules.end is not None:
        low = f"local_day >= DATE {_lit(rules.start)}" if rules.start is not None else "true"
        high = f"local_day <= DATE {_lit(rules.end)}" if rules.end is not None else "true"
        steps.append(("date_range", f"({low} AND {high})",
                      f"outside {rules.start or '...'} to {rules.end or '...'} ({rules.timezone} days)"))
    for i, ((column, _value), label) in enumerate(zip(rules.exclude, rules.exclusion_labels(), strict=True)):
        steps.append((f"exclude {column}=value #{i + 1}", f"NOT flag_{i}",
                      f"rows whose {label.replace('=', ' is ', 1)} (given with --exclude) excluded"))
    conditions = []
    selects = ["coalesce(sum(n), 0)"]
    for _name, condition, _reason in steps:
        conditions.append(condition)
        selects.append(f"coalesce(sum(n) FILTER (WHERE {' AND '.join(conditions)}), 0)")
    keep_sql = " AND ".join(conditions) if conditions else "true"
    counts = con.execute(f"SELECT {', '.join(selects)} FROM staged").fetchall()[0]
    rows = [{"step": "read", "rows_in": counts[0], "rows_out": counts[0], "removed": 0,
             "reason": "rows read from the input files"}]
    previous = counts[0]
    for (name, _cond, reason), after in zip(steps, counts[1 : 1 + len(steps)], strict=True):
        rows.append({"step": name, "rows_in": previous, "rows_out": after, "removed": previous - after,
                     "reason": reason})
        previous = after
    return _audit_frame(rows), keep_sql


def add_dedupe_step(audit: pd.DataFrame, rules: CleaningRules, rows_out: int) -> pd.DataFrame:
    """Append the ``dedupe`` audit row (``rows_out`` = identifier-units kept), unless ``dedupe == "none"``."""
    if rules.dedupe == "none":
        return audit
    rows_in = int(audit["rows_out"].iloc[-1])
    row = {"step": "dedupe", "rows_in": rows_in, "rows_out": int(rows_out), "removed": rows_in - int(rows_out),
           "reason": f"one record per identifier per {rules.dedupe}"}
    return _audit_frame([*audit.to_dict(orient="records"), row])


def _audit_frame(rows: list[dict]) -> pd.DataFrame:
    audit = pd.DataFrame(rows, columns=AUDIT_COLUMNS)
    for column in ("rows_in", "rows_out", "removed"):
        audit[column] = audit[column].astype("int64")
    return audit
