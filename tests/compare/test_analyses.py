"""The comparison end to end: numbers against closed forms and hand arithmetic, a report counted once per region,
leave-one-agency-out, suppression that holds across the linked tables, and the same bytes for the same seed."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from hiddenpop.compare.analyses import compare_referrals
from hiddenpop.compare.referrals import read_referrals
from hiddenpop.compare.specs import CompareSpec
from hiddenpop.errors import ConfigError, DataError

#: Referrals by agency, country and year (the shape of Study 1's law-enforcement data).
ROWS = [("Kestrel", "PHL", 2016, 60), ("Kestrel", "PHL", 2017, 90), ("Kestrel", "THA", 2017, 12),
        ("Kestrel", "MEX", 2017, 8), ("Osprey", "PHL", 2017, 70), ("Osprey", "THA", 2017, 9),
        ("Osprey", "IND", 2017, 20), ("Osprey", "MEX", 2016, 6), ("Heron", "PHL", 2017, 25),
        ("Heron", "IND", 2017, 11), ("Heron", "KHM", 2017, 14), ("Heron", "USA", 2017, 7)]
BASES = pd.Series({"PHL": 40e6, "THA": 14e6, "MEX": 38e6, "IND": 440e6, "KHM": 6e6, "USA": 73e6, "LAO": 2.8e6})


def referrals(rows=ROWS):
    frame = pd.DataFrame([[str(v) for v in row] for row in rows], columns=["agency", "country", "year", "count"])
    return read_referrals(frame, agency="agency", period="year", source="referrals.csv")


def spec(**options):
    return CompareSpec(**{"agency": "agency", "period": "year", "focus": "PHL", "draws": 4000, "threshold": 1,
                          **options})


def by_kind(result, kind):
    return result.table[result.table["kind"] == kind].set_index("country")


def test_rates_and_ratios_are_the_closed_forms():
    result = compare_referrals(referrals(), spec(), bases=BASES, base_source="bases.csv")
    countries = by_kind(result, "country")
    totals = {"PHL": 245, "THA": 21, "MEX": 14, "IND": 31, "KHM": 14, "USA": 7, "LAO": 0}
    assert countries["count"].to_dict() == totals  # LAO: in the base table, no referral
    for code, x in totals.items():
        row = countries.loc[code]
        scale = 100_000 / BASES[code]
        low = 0.0 if x == 0 else stats.chi2.ppf(0.025, 2 * x) / 2
        assert row["estimate"] == pytest.approx(x * scale)
        assert row["lower"] == pytest.approx(low * scale)
        assert row["upper"] == pytest.approx(stats.chi2.ppf(0.975, 2 * x + 2) / 2 * scale)
        assert row["unit"] == "per 100,000 population"
    ratios = by_kind(result, "ratio")
    assert set(ratios.index) == set(totals) - {"PHL"}
    khm = ratios.loc["KHM"]  # the largest other rate: 14 / 6M against 245 / 40M
    assert bool(khm["largest_other"]) and ratios["largest_other"].sum() == 1
    ci = stats.binomtest(245, 259).proportion_ci(0.95, method="exact")
    assert khm["estimate"] == pytest.approx((245 / 40e6) / (14 / 6e6))
    assert khm["lower"] == pytest.approx(ci.low / (1 - ci.low) * 6e6 / 40e6)
    assert khm["upper"] == pytest.approx(ci.high / (1 - ci.high) * 6e6 / 40e6)
    assert khm["p_value"] == pytest.approx(stats.binomtest(245, 259, 40e6 / 46e6).pvalue)
    assert math.isinf(ratios.loc["LAO", "estimate"]) and math.isinf(ratios.loc["LAO", "upper"])
    # the probability of ranking first is a probability over countries; the observed ranks are by rate
    assert countries["p_first"].sum() == pytest.approx(1.0)
    assert countries.loc["PHL", "observed_rank"] == 1 and countries.loc["KHM", "observed_rank"] == 2
    assert countries.loc["PHL", "rank_lower"] <= 1 <= countries.loc["PHL", "rank_upper"]
    hotspot = by_kind(result, "hotspot").iloc[0]
    assert hotspot["p_first"] == pytest.approx(countries.loc["PHL", "p_first"])
    assert hotspot["lower"] < hotspot["estimate"] < hotspot["upper"]
    assert any("convenience sample" in note for note in result.notes)
    ranks = result.tables["ranks"]
    assert ranks.groupby("country")["p_rank"].sum().to_numpy() == pytest.approx(1.0)


def test_without_bases_counts_are_compared():
    result = compare_referrals(referrals(), spec(focus=None))
    countries = by_kind(result, "country")
    assert countries.loc["PHL", "estimate"] == 245 and countries.loc["PHL", "unit"] == "referrals"
    low, high = stats.chi2.ppf([0.025], 2 * 245)[0] / 2, stats.chi2.ppf(0.975, 492) / 2
    assert (countries.loc["PHL", "lower"], countries.loc["PHL", "upper"]) == pytest.approx((low, high))
    assert result.settings["focus_country"] == "PHL"  # the largest observed
    assert any("chosen as the largest observed" in note for note in result.notes)
    ind = by_kind(result, "ratio").loc["IND"]  # the largest other count
    assert bool(ind["largest_other"]) and ind["estimate"] == pytest.approx(245 / 31)


def test_a_report_sent_to_several_countries_counts_once_in_each_region():
    """The tipline's shape in Study 1: reports made available in two or more countries, counted per receiving
    region, so the regional counts add up to more than the number of reports."""
    reports = {  # report -> receiving countries
        "r1": ["USA", "CAN"], "r2": ["USA", "GBR"], "r3": ["USA", "PHL"], "r4": ["GBR", "DEU", "PHL"],
        "r5": ["PHL", "THA"], "r6": ["CAN", "DEU"], "r7": ["USA", "CAN", "GBR", "PHL"],
    }
    frame = pd.DataFrame([(r, c) for r, cs in reports.items() for c in cs], columns=["report", "country"])
    data = read_referrals(frame, id="report")
    result = compare_referrals(data, CompareSpec(id="report", threshold=1, draws=1000))
    regions = result.tables["regions"].set_index(["grouping", "region", "subregion"])["count"]
    # by hand: Americas r1 r2 r3 r6 r7 = 5; Europe r2 r4 r6 r7 = 4; Asia r3 r4 r5 r7 = 4
    assert regions[("region", "Americas", "")] == 5
    assert regions[("region", "Europe", "")] == 4
    assert regions[("region", "Asia", "")] == 4
    assert regions[("total", "distinct reports", "")] == 7
    assert 5 + 4 + 4 > 7  # each region counts a report once, so the regions add up to more than the reports
    # the country counts add up to the country-report pairs
    assert regions[("total", "all countries (sum of the country counts)", "")] == 17
    sums = result.tables["regions"].set_index(["grouping", "region"])["country_referrals"]
    assert sums[("region", "Americas")] == 4 + 3  # USA 4, CAN 3: r1 and r7 twice
    note = next(n for n in result.notes if n.startswith("A report sent to k countries"))
    assert "add up to 17" in note and "region counts to 13" in note and "distinct reports is 7" in note


def test_one_agency_driving_the_ranking_is_a_warning():
    rows = [("A", "PHL", 2017, 200), ("A", "THA", 2017, 10), ("B", "PHL", 2017, 5), ("B", "THA", 2017, 60),
            ("C", "PHL", 2017, 6), ("C", "THA", 2017, 30)]
    result = compare_referrals(referrals(rows), spec(), bases=pd.Series({"PHL": 1.0, "THA": 1.0}))
    loo = result.tables["leave_one_out"].set_index("left_out")
    assert loo.loc["none (every agency)", "focus_count"] == 211
    without_a = loo.loc["agency 1"]  # A, the first name alphabetically
    assert without_a["focus_count"] == 11 and without_a["largest_other_count"] == 90 and not without_a["focus_first"]
    assert without_a["agency_referrals"] == 210 and without_a["focus_count_agency_alone"] == 200
    assert without_a["p_first"] < 0.01
    assert loo.loc["agency 2", "focus_first"] and loo.loc["agency 3", "focus_first"]
    assert len(result.warnings) == 1 and "Without agency 1" in result.warnings[0]
    assert result.diagnostics["focus_first_without_each_agency"] is False


def test_the_demo_shape_stays_first_without_any_agency():
    result = compare_referrals(referrals(), spec(), bases=BASES)
    assert result.warnings == []
    loo = result.tables["leave_one_out"]
    assert loo["focus_first"].all() and len(loo) == 4


def test_the_ratio_to_a_hidden_largest_other_is_not_shown():
    """A small country with a small base can have the largest other rate; the ratio to it (exact or simulated)
    would give its rate, and with the public base its count, away."""
    bases = pd.Series({**BASES.to_dict(), "USA": 2e6})  # 7 referrals: the second largest rate
    result = compare_referrals(referrals(), spec(threshold=8), bases=bases)
    ratios = by_kind(result, "ratio")
    assert bool(ratios.loc["USA", "largest_other"]) and bool(ratios.loc["USA", "suppressed"])
    hotspot = by_kind(result, "hotspot").iloc[0]
    assert pd.isna(hotspot["estimate"]) and pd.isna(hotspot["lower"]) and bool(hotspot["suppressed"])
    assert hotspot["p_first"] == pytest.approx(by_kind(result, "country").loc["PHL", "p_first"])


def _visible(frame, column):
    values = pd.to_numeric(frame[column], errors="coerce")
    return values[values.notna()]


def test_no_small_count_is_shown_and_none_can_be_recovered():
    result = compare_referrals(referrals(), spec(threshold=10), bases=BASES)
    tables = {"main": result.table, **result.tables}
    for name, column in [("main", "count"), ("regions", "count"), ("agencies", "count"),
                         ("leave_one_out", "focus_count"), ("leave_one_out", "largest_other_count"),
                         ("leave_one_out", "agency_referrals"), ("leave_one_out", "focus_count_agency_alone")]:
        values = _visible(tables[name], column)
        assert not ((values > 0) & (values < 10)).any(), (name, column)
    countries = by_kind(result, "country")
    hidden = set(countries.index[countries["suppressed"].astype(bool)])
    assert {"USA"} <= hidden  # 7 referrals
    # nothing derived from a hidden count is shown: rate, interval, ratio, rank probabilities
    for code in hidden:
        assert countries.loc[code, ["estimate", "lower", "upper", "p_first"]].isna().all()
        assert by_kind(result, "ratio").loc[code, ["estimate", "lower", "upper", "p_value"]].isna().all()
        ranks = result.tables["ranks"]
        assert ranks.loc[ranks["country"] == code, "p_rank"].isna().all()
    # suppressed countries come last, in alphabetical order (their place in the ranking would bound them)
    flags = countries["suppressed"].astype(bool).tolist()
    assert flags == sorted(flags) and list(countries.index[flags]) == sorted(countries.index[flags])
    # subtraction: the agency margins, the country totals and the totals without one agency each leave two or
    # more unknowns wherever one is hidden
    agencies = result.tables["agencies"]
    cells = agencies[agencies["country"] != ""]
    for code, group in cells.groupby("country"):
        assert group["count"].isna().sum() + int(code in hidden) != 1, code
    for agency, group in agencies.groupby("agency"):
        hidden_here = group["count"].isna().sum()
        assert hidden_here != 1, agency
    loo = result.tables["leave_one_out"].set_index("left_out")
    for agency in ("agency 1", "agency 2", "agency 3"):
        cell = agencies[(agencies["agency"] == agency) & (agencies["country"] == "PHL")]["count"].iloc[0]
        without = loo.loc[agency, "focus_count"]
        assert pd.isna(cell) == pd.isna(without)  # total = cell + rest: both shown or both hidden
    assert result.diagnostics["cells_suppressed"] == int(result.tables["suppression"][
        ["primary_cells", "complementary_cells"]].to_numpy().sum())


def test_same_seed_same_bytes_and_another_seed_other_draws():
    first = compare_referrals(referrals(), spec(seed=3), bases=BASES).to_json()
    assert first == compare_referrals(referrals(), spec(seed=3), bases=BASES).to_json()
    other = compare_referrals(referrals(), spec(seed=4), bases=BASES)
    assert other.to_json() != first
    assert "Kestrel" not in first and "Osprey" not in first  # agency names are not published unless listed


def test_focus_and_base_checks():
    with pytest.raises(ConfigError, match="option 'focus': BRA received no referral"):
        compare_referrals(referrals(), spec(focus="BR"), bases=BASES)
    with pytest.raises(ConfigError, match="alpha-3 or alpha-2"):
        compare_referrals(referrals(), spec(focus="Philippines"))
    with pytest.raises(DataError, match=r"bases\.csv: IND received referrals but has no base"):
        compare_referrals(referrals(), spec(), bases=BASES.drop("IND"), base_source="bases.csv")
    one = referrals([("A", "PHL", 2017, 20)])
    with pytest.raises(DataError, match="a comparison needs at least two countries"):
        compare_referrals(one, spec())
    # the focus country as the base table's zero is allowed, and is not first
    result = compare_referrals(referrals(), spec(focus="LAO"), bases=BASES)
    assert result.table.set_index("quantity").loc["LAO", "observed_rank"] == 7
    assert any("is not the largest observed" in n for n in result.notes)


def test_one_agency_and_no_agency_are_said():
    rows = [("A", "PHL", 2017, 30), ("A", "THA", 2017, 12)]
    result = compare_referrals(referrals(rows), spec())
    assert any("One agency only" in n for n in result.notes) and len(result.tables["leave_one_out"]) == 1
    frame = pd.DataFrame({"country": ["PHL", "THA"], "count": ["30", "12"]})
    plain = compare_referrals(read_referrals(frame), CompareSpec(focus="PHL", draws=500))
    assert any("No agency column" in n for n in plain.notes) and plain.tables["agencies"].empty


def test_rank_probabilities_follow_the_counts():
    """At equal bases, a country with more referrals has a better (smaller) mean rank in the simulation."""
    result = compare_referrals(referrals(), spec(draws=20_000), bases=pd.Series(1.0, index=BASES.index))
    countries = by_kind(result, "country")
    for a in countries.index:
        for b in countries.index:
            if countries.loc[a, "count"] > countries.loc[b, "count"]:
                assert countries.loc[a, "mean_rank"] < countries.loc[b, "mean_rank"], (a, b)
