"""Reading referral tables and base tables: checked once, at the edge.

A referral table comes in one of two shapes:

* **counts**: one row per source agency, receiving country (and period) with the number of referrals, e.g.
  Study 1's four law-enforcement agencies reporting how many cases each had referred to each source country;
  agency, country and period identify a row (a repeated row is an error, never added silently);
* **reports**: one row per report (or case) and receiving country, named by an id column: a report made
  available to law enforcement in three countries has three rows, e.g. the tipline's "online enticement"
  reports. A report counts once in each country and once in each region it went to, and once in the number of
  distinct reports.

Ids and agency names never leave this module: ids become integers, and agencies are published under the names
the ``agencies`` option lists (values outside it are refused) or as ``agency 1``, ``agency 2``, ... in
alphabetical order. Error messages give the file, row and column and never quote a cell.

A base table has the columns ``country`` and ``base`` (a population, child population or number of internet
users): one row per country, each base a positive number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenpop.compare.regions import countries, lookup
from hiddenpop.data.io import missing_column, read_table
from hiddenpop.errors import DataError, locate

__all__ = ["BASE_COLUMNS", "MAX_COUNT", "Referrals", "read_bases", "read_referrals"]

#: Largest count accepted: every whole number up to it is exact in floating point.
MAX_COUNT = 2**53
BASE_COLUMNS = ("country", "base")
_WHOLE = re.compile(r"^\+?\d+(?:\.0*)?$")
_NEGATIVE = re.compile(r"^-\s*\d+(?:\.\d*)?$")


def _text(value: object) -> str:
    """A cell as text ('' for an empty or missing cell; files are read as text, Parquet keeps its types)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


@dataclass(frozen=True)
class Referrals:
    """Checked referral data.

    ``rows`` has one row per (unit, agency, country): ``unit`` is a row number (counts) or a report number
    (reports), ``agency`` the published agency label ('' when the file has no agency column), ``country`` the
    alpha-3 code and ``count`` the referrals it holds (1 for a report).
    """

    rows: pd.DataFrame
    per_report: bool
    source: str = ""
    agencies: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    # --------------------------------------------------------------------------------------------- subsets
    def without(self, agency: str) -> Referrals:
        """The referrals of every agency but ``agency``."""
        return Referrals(self.rows[self.rows["agency"] != agency], self.per_report, self.source,
                         tuple(a for a in self.agencies if a != agency), self.notes)

    def only(self, agency: str) -> Referrals:
        return Referrals(self.rows[self.rows["agency"] == agency], self.per_report, self.source, (agency,),
                         self.notes)

    # --------------------------------------------------------------------------------------------- counting
    def _count(self, frame: pd.DataFrame, keys: list[str]) -> pd.Series:
        """Referrals per group of ``keys``: distinct reports (reports) or the sum of counts (counts)."""
        if self.per_report:
            return frame.groupby(keys, sort=True)["unit"].nunique().astype(np.int64)
        return frame.groupby(keys, sort=True)["count"].sum().astype(np.int64)

    def by_country(self) -> pd.Series:
        """Referrals received by each country (alpha-3 index, sorted)."""
        return self._count(self.rows, ["country"])

    def by_agency_and_country(self) -> pd.Series:
        """Referrals from each agency to each country ((agency, country) index)."""
        return self._count(self.rows, ["agency", "country"])

    def by_agency(self) -> pd.Series:
        """Referrals each agency made (distinct reports, or the sum of its counts)."""
        return self._count(self.rows, ["agency"])

    def by_region(self, level: str) -> pd.Series:
        """Referrals received in each M49 ``region`` or ``subregion``: a report sent to several countries of one
        region counts once there."""
        table = countries()
        frame = self.rows.assign(area=self.rows["country"].map(lambda c: getattr(table[c], level)))
        return self._count(frame, ["area"])

    def total(self) -> int:
        """Distinct reports (reports), or every referral (counts: a case referred to two countries counts twice
        and cannot be told apart)."""
        if self.per_report:
            return int(self.rows["unit"].nunique())
        return int(self.rows["count"].sum())


def _column(frame: pd.DataFrame, name: str, source: str, option: str, fix: str) -> list[str]:
    if name not in frame.columns:
        raise missing_column(source, name, frame.columns, role=f"option {option!r}", fix=fix)
    return [_text(v) for v in frame[name].tolist()]


def _count_value(text: str, row: int, source: str, column: str) -> int:
    if _NEGATIVE.match(text):
        raise DataError(f"{locate(source, row, column)}count is negative; a number of referrals is 0 or more")
    if not _WHOLE.match(text):
        what = "count is missing" if not text else "expected a whole number of referrals (digits only, no " \
                                                   "thousands separators)"
        raise DataError(f"{locate(source, row, column)}{what}; fix the value")
    value = int(text.lstrip("+").split(".")[0])
    if value > MAX_COUNT:
        raise DataError(f"{locate(source, row, column)}count too large to be exact (above 2^53); check the column")
    return value


def _agency_labels(raw: list[str], listed: tuple[str, ...], source: str, column: str) -> tuple[list[str],
                                                                                                tuple[str, ...]]:
    """Published agency labels: the listed names (values outside them refused), or agency 1, 2, ... ."""
    for row, value in enumerate(raw, start=1):
        if not value:
            raise DataError(f"{locate(source, row, column)}agency is missing; every row needs its source agency")
    if listed:
        if len(set(listed)) != len(listed):
            raise DataError("option 'agencies' names an agency twice; list each once")
        allowed = set(listed)
        for row, value in enumerate(raw, start=1):
            if value not in allowed:
                raise DataError(f"{locate(source, row, column)}agency is not one of the names listed in the "
                                "'agencies' option; add it there (it is then published) or fix the value")
        used = [a for a in listed if a in set(raw)]
        return raw, tuple(used)
    names = sorted(set(raw))
    labels = {name: f"agency {i}" for i, name in enumerate(names, start=1)}
    return [labels[v] for v in raw], tuple(labels[n] for n in names)


def read_referrals(frame: pd.DataFrame, *, country: str = "country", count: str = "count", id: str | None = None,
                   agency: str | None = None, agencies: tuple[str, ...] = (), period: str | None = None,
                   source: str = "") -> Referrals:
    """Check a referral table (see the module docstring) and return it as :class:`Referrals`."""
    if len(frame) == 0:
        raise DataError(f"{source}: no data rows; expected a header and one row per agency and country (with a "
                        "count), or per report and country (with an id)")
    notes: list[str] = []
    names = [c for c in (country, None if id else count, id, agency, period) if c]
    if len(set(names)) != len(names):
        raise DataError(f"{source}: one column is named by two options (country, count, id, agency, period); "
                        "give each its own column")
    codes = _column(frame, country, source, "country", "name the receiving-country column with --country")
    iso3: list[str] = []
    for row, value in enumerate(codes, start=1):
        if not value:
            raise DataError(f"{locate(source, row, country)}country is missing; every row needs the receiving "
                            "country's ISO 3166-1 code")
        found = lookup(value)
        if found is None:
            raise DataError(f"{locate(source, row, country)}not an ISO 3166-1 alpha-3 or alpha-2 country code; use "
                            "the code (e.g. PHL or PH; Kosovo is XKX); docs/methods/compare.md has the table")
        iso3.append(found.iso3)
    if agency:
        raw_agencies = _column(frame, agency, source, "agency", "name the source-agency column with --agency")
        labels, published = _agency_labels(raw_agencies, agencies, source, agency)
    else:
        if agencies:
            raise DataError("option 'agencies' lists agency names but no agency column is named; name it with "
                            "--agency")
        labels, published, raw_agencies = [""] * len(frame), (), [""] * len(frame)
    periods = [""] * len(frame)
    if period:
        periods = _column(frame, period, source, "period", "name the period column with --period")
        for row, value in enumerate(periods, start=1):
            if not value:
                raise DataError(f"{locate(source, row, period)}period is missing; every row needs its period")
    if id:
        ids = _column(frame, id, source, "id", "name the report-id column with --id")
        for row, value in enumerate(ids, start=1):
            if not value:
                raise DataError(f"{locate(source, row, id)}report id is missing; every row needs the id of its "
                                "report")
        units, _ = pd.factorize(pd.Series(ids, dtype=object), sort=False)
        if count in frame.columns:
            notes.append(f"the column {count!r} was not read: with an id column each row is one report sent to "
                         "one country")
        rows = pd.DataFrame({"unit": units.astype(np.int64), "agency": labels, "country": iso3,
                             "count": np.ones(len(frame), dtype=np.int64)})
        repeated = int(rows.duplicated(["unit", "agency", "country"]).sum())
        if repeated:
            notes.append(f"{repeated} row(s) repeat a report already listed for the same country (and agency); "
                         "a report counts once per country")
        rows = rows.drop_duplicates(["unit", "agency", "country"]).reset_index(drop=True)
        return Referrals(rows, True, source, published, tuple(notes))
    values = _column(frame, count, source, "count", "name the count column with --count, or give --id for one "
                                                    "row per report")
    numbers = [_count_value(text, row, source, count) for row, text in enumerate(values, start=1)]
    if sum(numbers) > MAX_COUNT:
        raise DataError(f"{source}: the counts add up to more than 2^53; check the column {count!r}")
    seen: dict[tuple[str, str, str], int] = {}
    for row, key in enumerate(zip(raw_agencies, iso3, periods, strict=True), start=1):
        if key in seen:
            raise DataError(f"{locate(source, row)}repeats the agency, country and period of row {seen[key]}; add "
                            "the two counts into one row, or name the column that tells them apart with --period")
        seen[key] = row
    rows = pd.DataFrame({"unit": np.arange(len(frame), dtype=np.int64), "agency": labels, "country": iso3,
                         "count": np.asarray(numbers, dtype=np.int64)})
    return Referrals(rows, False, source, published, tuple(notes))


def read_bases(frame: pd.DataFrame, *, source: str = "") -> pd.Series:
    """A base table (columns ``country`` and ``base``) as a Series of positive bases by alpha-3 code."""
    if len(frame) == 0:
        raise DataError(f"{source}: no data rows; expected a header country,base and one row per country")
    codes = _column(frame, "country", source, "country", "the base table needs the columns country,base")
    values = _column(frame, "base", source, "base", "the base table needs the columns country,base")
    bases: dict[str, float] = {}
    first: dict[str, int] = {}
    for row, (code, text) in enumerate(zip(codes, values, strict=True), start=1):
        found = lookup(code) if code else None
        if found is None:
            raise DataError(f"{locate(source, row, 'country')}not an ISO 3166-1 alpha-3 or alpha-2 country code; use "
                            "the code (e.g. PHL or PH); docs/methods/compare.md has the table")
        if found.iso3 in first:
            raise DataError(f"{locate(source, row, 'country')}gives a second base for the country of row "
                            f"{first[found.iso3]}; keep one row per country")
        first[found.iso3] = row
        try:
            number = float(text)
        except ValueError:
            raise DataError(f"{locate(source, row, 'base')}expected a number (digits, no thousands separators); "
                            "fix the value") from None
        if not math.isfinite(number) or number <= 0:
            raise DataError(f"{locate(source, row, 'base')}a base must be a positive, finite number; fix the value")
        bases[found.iso3] = number
    return pd.Series(bases, dtype=float).sort_index()


def read_referrals_file(path: str | Path, **options: object) -> Referrals:
    """:func:`read_referrals` on a file (CSV and Excel read as text; Parquet, SPSS and Stata as stored)."""

    path = Path(path)
    return read_referrals(read_table(path, as_text=True), source=path.name, **options)  # type: ignore[arg-type]


def read_bases_file(path: str | Path) -> pd.Series:

    path = Path(path)
    return read_bases(read_table(path, as_text=True), source=path.name)
