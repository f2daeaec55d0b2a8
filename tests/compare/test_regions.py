"""The shipped country table: every ISO 3166-1 code once, each in one M49 region and sub-region."""

from __future__ import annotations

import csv

import pytest

from hiddenpop.compare.regions import TABLE, check_country_code, countries, lookup
from hiddenpop.errors import ConfigError


def test_every_country_once_with_a_region():
    with open(TABLE, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 250  # the 249 ISO 3166-1 codes and Kosovo
    for column in ("iso3", "iso2", "name"):
        values = [r[column] for r in rows]
        assert len(set(values)) == len(values), column
    assert all(len(r["iso3"]) == 3 and r["iso3"].isupper() and len(r["iso2"]) == 2 for r in rows)
    numeric = [r["numeric"] for r in rows if r["numeric"]]
    assert len(set(numeric)) == len(numeric) == 249 and all(len(n) == 3 and n.isdigit() for n in numeric)
    assert {r["region"] for r in rows} == {"Africa", "Americas", "Antarctica", "Asia", "Europe", "Oceania"}
    assert all(r["subregion"] for r in rows)
    # a sub-region lies in one region
    regions_of = {}
    for r in rows:
        regions_of.setdefault(r["subregion"], set()).add(r["region"])
    assert all(len(v) == 1 for v in regions_of.values())
    assert len([s for s in regions_of if s != "Antarctica"]) == 17  # M49's sub-regions


@pytest.mark.parametrize(("code", "iso3", "region", "subregion"), [
    ("PHL", "PHL", "Asia", "South-eastern Asia"), ("ph", "PHL", "Asia", "South-eastern Asia"),
    (" US ", "USA", "Americas", "Northern America"), ("MEX", "MEX", "Americas", "Latin America and the Caribbean"),
    ("NA", "NAM", "Africa", "Sub-Saharan Africa"), ("GB", "GBR", "Europe", "Northern Europe"),
    ("AUS", "AUS", "Oceania", "Australia and New Zealand"), ("XK", "XKX", "Europe", "Southern Europe"),
])
def test_codes_name_their_country(code, iso3, region, subregion):
    found = lookup(code)
    assert (found.iso3, found.region, found.subregion) == (iso3, region, subregion)


def test_anything_else_is_not_a_country():
    for value in ("", "P", "PHLX", "ZZZ", "Philippines", "608", "QQ"):
        assert lookup(value) is None
    with pytest.raises(ConfigError, match="alpha-3 or alpha-2") as error:
        check_country_code("zzz-secret")
    assert "zzz-secret" not in str(error.value)
    assert check_country_code("ph") == "PHL"
    assert list(countries()) == sorted(countries())
