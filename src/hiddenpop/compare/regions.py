"""Countries and their UN M49 regions: the table shipped with hiddenpop (``compare/data/m49.csv``).

One row per ISO 3166-1 country or territory (249) plus Kosovo (``XKX``/``XK``, a code in common use that ISO has
not assigned): alpha-3 and alpha-2 codes, the numeric code, the name as the UN Statistics Division writes it, and
the M49 region, sub-region and intermediate region. Two rows are placed by geography because M49 lists them
under no region of their own: Taiwan (Eastern Asia) and Kosovo (Southern Europe); Antarctica has no M49 region and
forms its own. Codes are matched after removing surrounding spaces and ignoring case (``phl``, ``PH`` and ``PHL``
are the Philippines); anything else is not a country here.

This module reads the table with the standard library only (option checks import it), and only when asked.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hiddenpop.errors import ConfigError

__all__ = ["TABLE", "Country", "check_country_code", "countries", "lookup"]

TABLE = Path(__file__).parent / "data" / "m49.csv"


@dataclass(frozen=True)
class Country:
    iso3: str
    iso2: str
    numeric: str
    name: str
    region: str
    subregion: str
    intermediate_region: str


@lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    """Every country of the table by its alpha-3 code, in alphabetical order of the code."""
    with open(TABLE, encoding="utf-8", newline="") as handle:
        rows = [Country(**row) for row in csv.DictReader(handle)]
    return {row.iso3: row for row in sorted(rows, key=lambda r: r.iso3)}


@lru_cache(maxsize=1)
def _codes() -> dict[str, Country]:
    table = countries()
    return {**{c.iso2: c for c in table.values()}, **table}


def lookup(code: object) -> Country | None:
    """The country an alpha-3 or alpha-2 code names (spaces around it and case ignored), or None."""
    text = str(code).strip().upper()
    if len(text) not in (2, 3):
        return None
    return _codes().get(text)


def check_country_code(value: str) -> str:
    """The alpha-3 code of ``value``; ConfigError (without the value) when it names no country."""
    found = lookup(value)
    if found is None:
        raise ConfigError("expected an ISO 3166-1 alpha-3 or alpha-2 country code (e.g. PHL or PH); see "
                          "docs/methods/compare.md for the table")
    return found.iso3
