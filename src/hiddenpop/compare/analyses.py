"""The cross-country comparison as every interface runs it: referrals (and a base table) and a spec in, one
:class:`~hiddenpop.results.Estimates` out. ``hiddenpop compare referrals`` and a study's ``[analyses.compare]``
both call :func:`compare_files`.

The result's ``table`` has one row per receiving country (``kind = "country"``: count, rate or count with its
exact Poisson interval, observed rank, probability of ranking first and rank interval), one per other country
compared with the focus country (``kind = "ratio"``: exact conditional rate ratio and p-value, the largest other
country marked) and one for the focus country's rate divided by the largest other rate (``kind = "hotspot"``,
from the simulation, so the choice of the largest other is part of its uncertainty). Its ``tables`` hold

``regions``
    referrals received per M49 region and sub-region, with the totals (the country counts' sum and, for reports,
    the number of distinct reports);
``ranks``
    each country's probability of each rank (ranks 1 to 10);
``agencies``
    referrals from each agency to each country, and each agency's total;
``leave_one_out``
    the focus country's count, observed rank, probability of ranking first and ratio to the largest other
    country with each agency left out (first row: every agency);
``suppression``
    how many cells each table hides.

Every count from 1 to ``threshold - 1`` is hidden, with the rates, intervals, ratios and rank probabilities made
from it, and further cells are hidden until no hidden count can be recovered from the published totals of the
linked tables (:func:`hiddenpop.privacy.suppress_linked_cells`). The method, its assumptions and what it cannot
say are in ``docs/methods/compare.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.compare.rates import (
    garwood_interval,
    rank_simulation,
    rate_ratio_interval,
    rate_ratio_p_value,
)
from hiddenpop.compare.referrals import Referrals, read_bases_file, read_referrals_file
from hiddenpop.compare.regions import countries, lookup
from hiddenpop.compare.specs import CompareSpec
from hiddenpop.errors import ConfigError, DataError
from hiddenpop.privacy import suppress_linked_cells
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict, validate

__all__ = ["RANKS_SHOWN", "compare_files", "compare_referrals"]

#: Ranks whose probabilities the ``ranks`` table shows for each country.
RANKS_SHOWN = 10
#: Words written next to every comparison (Study 1 gave them only in its text).
CAVEATS = (
    "Referral counts measure what the reporting agencies detected and passed on, not how much exploitation each "
    "country has: a country with few or no referrals may have many undetected cases.",
    "The agencies are those that shared their data (a convenience sample); other agencies, including other "
    "agencies of the same countries, refer cases too, so every count is a part of all referrals.",
    "Agencies define the offence differently, so the counts may add up cases of different kinds.",
    "The intervals treat each count as Poisson (referrals independent, at a steady rate); referrals that come in "
    "clusters, such as one investigation producing many, make them too narrow.",
)


@dataclass
class _Comparison:
    """The numbers of one comparison (every agency, or one left out) before anything is hidden."""

    counts: np.ndarray
    observed: np.ndarray  # count / exposure: the measure that is ranked
    rank: np.ndarray  # observed rank, 1 = largest (ties share the better rank)
    largest_other: int
    p_first: float
    draws: Any


def _observed_ranks(observed: np.ndarray) -> np.ndarray:
    return np.array([1 + int(np.sum(observed > value)) for value in observed])


def _largest_other(observed: np.ndarray, focus: int, codes: list[str]) -> int:
    others = [i for i in range(len(codes)) if i != focus]
    return min(others, key=lambda i: (-observed[i], codes[i]))


def _compare(counts: np.ndarray, exposure: np.ndarray, focus: int, codes: list[str], spec: CompareSpec,
             stream: int) -> _Comparison:
    observed = counts / exposure
    draws = rank_simulation(counts, exposure, draws=spec.draws, prior_shape=spec.prior_shape,
                            rng=np.random.default_rng([spec.seed, stream]), focus=focus)
    return _Comparison(counts=counts, observed=observed, rank=_observed_ranks(observed),
                       largest_other=_largest_other(observed, focus, codes), p_first=float(draws.p_first()[focus]),
                       draws=draws)


def _resolve_focus(spec: CompareSpec, codes: list[str], observed: np.ndarray, notes: list[str]) -> int:
    if spec.focus is None:
        focus = min(range(len(codes)), key=lambda i: (-observed[i], codes[i]))
        notes.append(f"The focus country ({codes[focus]}) was chosen as the largest observed; its probability of "
                     "ranking first answers a question asked after seeing the data, so it flatters it. Name the "
                     "focus country in advance with the option 'focus'.")
        return focus
    found = lookup(spec.focus)
    if found is None:  # the spec's own check catches this first
        raise ConfigError("option 'focus' is not an ISO 3166-1 country code")
    if found.iso3 not in codes:
        raise ConfigError(f"option 'focus': {found.iso3} received no referral and has no base row, so it is not "
                          "among the countries compared; add it to the base table (with its count of 0) or choose "
                          "another focus")
    return codes.index(found.iso3)


def compare_referrals(referrals: Referrals, spec: CompareSpec, *, bases: pd.Series | None = None,
                      base_source: str = "") -> Estimates:
    """Counts and rates per country with exact intervals, ratios to the focus country, the ranking by
    simulation, regions, and each agency's part; small cells suppressed (see the module docstring)."""
    spec = validate(spec)
    notes: list[str] = []
    warnings: list[str] = []
    table = countries()
    received = referrals.by_country()
    if bases is not None:
        missing = [c for c in received.index if c not in bases.index]
        if missing:
            raise DataError(f"{base_source}: {missing[0]} received referrals but has no base"
                            + (f" (nor do {len(missing) - 1} other countries)" if len(missing) > 1 else "")
                            + "; add a row country,base for every country that received referrals")
        zero = [c for c in bases.index if c not in received.index]
        if zero:
            notes.append(f"{len(zero)} country(ies) of the base table received no referral; they are compared with "
                         "a count of 0.")
        received = received.reindex(sorted(set(received.index) | set(bases.index)), fill_value=0)
    codes = [str(c) for c in received.index]
    if len(codes) < 2:
        raise DataError(f"{referrals.source}: all referrals went to one country; a comparison needs at least two "
                        "countries (add the others to the base table, with a count of 0, to compare them)")
    counts = received.to_numpy(dtype=np.int64)
    rate = bases is not None
    exposure = bases.reindex(codes).to_numpy(dtype=float) if rate else np.ones(len(codes))
    scale = spec.per / exposure if rate else np.ones(len(codes))
    unit = f"per {spec.per:,} {spec.base_label}" if rate else "referrals"
    focus = _resolve_focus(spec, codes, counts / exposure, notes)
    full = _compare(counts.astype(float), exposure, focus, codes, spec, stream=0)
    level, alpha = spec.level, 1 - spec.level

    # ------------------------------------------------------------------------------------------ countries
    probabilities = full.draws.probabilities()
    rank_lower = full.draws.rank_quantile(alpha / 2)
    rank_median = full.draws.rank_quantile(0.5)
    rank_upper = full.draws.rank_quantile(1 - alpha / 2)
    mean_rank = full.draws.mean_rank()
    p_first = full.draws.p_first()
    what = f"rate {unit}" if rate else "count"
    country_rows = []
    for i, code in enumerate(codes):
        x = int(counts[i])
        low, high = garwood_interval(x, level)
        country = table[code]
        country_rows.append({
            "quantity": code, "method": f"{what} (exact Poisson, Garwood)", "estimate": x * scale[i],
            "se": math.sqrt(x) * scale[i], "lower": low * scale[i], "upper": high * scale[i], "level": level,
            "kind": "country", "country": code, "name": country.name, "region": country.region,
            "subregion": country.subregion, "count": x, "base": exposure[i] if rate else math.nan, "unit": unit,
            "focus": i == focus, "observed_rank": int(full.rank[i]), "p_first": float(p_first[i]),
            "p_first_mc_se": math.sqrt(p_first[i] * (1 - p_first[i]) / spec.draws),
            "rank_lower": int(rank_lower[i]), "rank_median": int(rank_median[i]), "rank_upper": int(rank_upper[i]),
            "mean_rank": float(mean_rank[i]),
        })
    order = sorted(range(len(codes)), key=lambda i: (-full.observed[i], codes[i]))
    country_rows = [country_rows[i] for i in order]

    # ------------------------------------------------------------------------------------------ ratios
    word = "rate ratio" if rate else "count ratio"
    ratio_rows = []
    for j in order:
        if j == focus:
            continue
        estimate, lower, upper = rate_ratio_interval(int(counts[focus]), exposure[focus], int(counts[j]),
                                                     exposure[j], level)
        ratio_rows.append({
            "quantity": f"{codes[focus]}/{codes[j]}", "method": f"{word} (exact conditional, Clopper-Pearson)",
            "estimate": estimate, "lower": lower, "upper": upper, "level": level, "kind": "ratio",
            "country": codes[j], "name": table[codes[j]].name, "count": int(counts[j]),
            "focus_count": int(counts[focus]), "unit": "ratio", "largest_other": j == full.largest_other,
            "p_value": rate_ratio_p_value(int(counts[focus]), exposure[focus], int(counts[j]), exposure[j]),
        })
    ratio = full.draws.focus_ratio
    q_low, q_mid, q_high = (float(v) for v in np.quantile(ratio, [alpha / 2, 0.5, 1 - alpha / 2]))
    hotspot = {
        "quantity": f"{codes[focus]}/largest other",
        "method": f"{word} to the largest other (Gamma posterior, prior shape {spec.prior_shape:g})",
        "estimate": q_mid, "lower": q_low, "upper": q_high, "level": level, "kind": "hotspot",
        "country": codes[focus], "name": table[codes[focus]].name, "unit": "ratio",
        "focus_count": int(counts[focus]), "p_first": float(np.mean(ratio > 1)),
    }

    # ------------------------------------------------------------------------------------------ regions
    region_rows = []
    for level_name in ("region", "subregion"):
        in_area = referrals.by_region(level_name)
        areas = sorted({(table[c].region, getattr(table[c], level_name)) for c in codes})
        for _, area in areas:
            members = [c for c in codes if getattr(table[c], level_name) == area]
            region_rows.append({"grouping": level_name,
                                "region": area if level_name == "region" else table[members[0]].region,
                                "subregion": area if level_name == "subregion" else "",
                                "count": int(in_area.get(area, 0)), "countries": len(members)})
            if referrals.per_report:  # the same reports counted once per country they went to
                region_rows[-1]["country_referrals"] = int(sum(counts[codes.index(c)] for c in members))
    country_sum = int(counts.sum())
    region_rows.append({"grouping": "total", "region": "all countries (sum of the country counts)", "subregion": "",
                        "count": country_sum, "countries": len(codes)})
    if referrals.per_report:
        region_rows.append({"grouping": "total", "region": "distinct reports", "subregion": "",
                            "count": referrals.total(), "countries": len(codes)})
    regions = pd.DataFrame(region_rows)
    if referrals.per_report:
        regions["country_referrals"] = pd.Series([r.get("country_referrals") for r in region_rows], dtype=object)

    # ------------------------------------------------------------------------------------------ agencies
    agencies = list(referrals.agencies)
    cells = referrals.by_agency_and_country() if agencies else pd.Series(dtype=np.int64)
    agency_totals = referrals.by_agency() if agencies else pd.Series(dtype=np.int64)
    agency_rows = []
    for agency in agencies:
        for code in codes:
            agency_rows.append({"agency": agency, "country": code, "name": table[code].name,
                                "count": int(cells.get((agency, code), 0))})
        agency_rows.append({"agency": agency, "country": "", "name": "all countries",
                            "count": int(agency_totals.get(agency, 0))})
    agency_table = pd.DataFrame(agency_rows, columns=["agency", "country", "name", "count"])
    left_out: dict[str, _Comparison] = {}
    if len(agencies) >= 2:
        for stream, agency in enumerate(agencies, start=1):
            rest = referrals.without(agency).by_country().reindex(codes, fill_value=0).to_numpy(dtype=float)
            left_out[agency] = _compare(rest, exposure, focus, codes, spec, stream=stream)
    loo_rows = [_leave_one_out_row("none (every agency)", full, focus, codes, exposure, level, table)]
    for agency, result in left_out.items():
        row = _leave_one_out_row(agency, result, focus, codes, exposure, level, table)
        alone = np.array([cells.get((agency, code), 0) for code in codes], dtype=float) / exposure
        row.update({"agency_referrals": int(agency_totals.get(agency, 0)),
                    "focus_count_agency_alone": int(cells.get((agency, codes[focus]), 0)),
                    "focus_rank_agency_alone": int(_observed_ranks(alone)[focus])})
        loo_rows.append(row)
    leave_one_out = pd.DataFrame(loo_rows)

    # ------------------------------------------------------------------------------------------ suppression
    values: dict[Any, int] = {("C", c): int(x) for c, x in zip(codes, counts, strict=True)}
    relations: list[tuple[Any, list[Any]]] = []
    for row in region_rows:
        key = _region_key(row)
        values[key] = row["count"]
    subregions = {("subregion", table[c].subregion) for c in codes}
    regions_ = {("region", table[c].region) for c in codes}
    for sub in sorted(subregions):
        relations.append((sub, [("C", c) for c in codes if table[c].subregion == sub[1]]))
    for region in sorted(regions_):
        relations.append((region, [s for s in sorted(subregions)
                                   if any(table[c].region == region[1] and table[c].subregion == s[1]
                                          for c in codes)]))
    relations.append((("G",), sorted(regions_)))
    relations.append((("G",), [("C", c) for c in codes]))
    prefer: dict[Any, int] = {}
    if agencies:
        for agency in agencies:
            values[("T", agency)] = int(agency_totals.get(agency, 0))
            for code in codes:
                values[("A", agency, code)] = int(cells.get((agency, code), 0))
            relations.append((("T", agency), [("A", agency, c) for c in codes]))
        for code in codes:
            relations.append((("C", code), [("A", a, code) for a in agencies]))
        relations.append((("G",), [("T", a) for a in agencies]))
        for agency, result in left_out.items():
            for index in (focus, result.largest_other):
                key = ("L", agency, codes[index])
                values[key] = int(result.counts[index])
                prefer[key] = -1
                relations.append((("C", codes[index]), [("A", agency, codes[index]), key]))
    primary, secondary = suppress_linked_cells(values, relations, spec.threshold, prefer=prefer)
    hidden = primary | secondary

    def blank(row: dict, columns: list[str]) -> None:
        for column in columns:
            if column in row:
                row[column] = None
        row["suppressed"] = True

    estimate_columns = ["estimate", "se", "lower", "upper"]
    for row in country_rows:
        row["suppressed"] = False
        if ("C", row["country"]) in hidden:
            blank(row, [*estimate_columns, "count", "p_first", "p_first_mc_se", "rank_lower", "rank_median",
                        "rank_upper", "mean_rank", "observed_rank"])
    focus_hidden = ("C", codes[focus]) in hidden
    for row in ratio_rows:
        row["suppressed"] = False
        if ("C", row["country"]) in hidden or focus_hidden:
            blank(row, [*estimate_columns, "count", "focus_count", "p_value"])
    hotspot["suppressed"] = False
    if focus_hidden:
        blank(hotspot, [*estimate_columns, "focus_count", "p_first"])
    elif ("C", codes[full.largest_other]) in hidden:  # the ratio to it would give its rate, and so its count, away
        blank(hotspot, estimate_columns)
    regions["suppressed"] = False
    regions["count"] = regions["count"].astype(object)
    for position, row in enumerate(region_rows):
        key = _region_key(row)
        if key in hidden:
            regions.loc[position, "count"] = None
            if "country_referrals" in regions.columns:
                regions.loc[position, "country_referrals"] = None
            regions.loc[position, "suppressed"] = True
    agency_table["suppressed"] = False
    if len(agency_table):
        agency_table["count"] = agency_table["count"].astype(object)
        for position, row in agency_table.iterrows():
            key = ("T", row["agency"]) if row["country"] == "" else ("A", row["agency"], row["country"])
            if key in hidden:
                agency_table.loc[position, "count"] = None
                agency_table.loc[position, "suppressed"] = True
    leave_one_out = _hide_leave_one_out(leave_one_out, left_out, hidden, codes, focus)
    ranks = _rank_table(codes, probabilities, hidden)
    suppression = pd.DataFrame([
        {"table": "countries and ratios", "primary_cells": sum(1 for k in primary if k[0] == "C"),
         "complementary_cells": sum(1 for k in secondary if k[0] == "C")},
        {"table": "regions", "primary_cells": sum(1 for k in primary if k[0] in ("region", "subregion", "G", "N")),
         "complementary_cells": sum(1 for k in secondary if k[0] in ("region", "subregion", "G", "N"))},
        {"table": "agencies", "primary_cells": sum(1 for k in primary if k[0] in ("A", "T")),
         "complementary_cells": sum(1 for k in secondary if k[0] in ("A", "T"))},
        {"table": "leave_one_out", "primary_cells": sum(1 for k in primary if k[0] == "L"),
         "complementary_cells": sum(1 for k in secondary if k[0] == "L")},
    ]).assign(threshold=spec.threshold)

    # ------------------------------------------------------------------------------------------ words
    notes[0:0] = CAVEATS  # the standing caveats first, then what this data and these settings add
    notes.extend(referrals.notes)
    shown = {key: (None if key in hidden else value) for key, value in values.items()}

    def amount(key: Any) -> str:
        value = shown.get(key)
        return f"fewer than {spec.threshold} (suppressed)" if value is None else f"{value:,}"

    region_sum = sum(int(r["count"]) for r in region_rows if r["grouping"] == "region")
    if referrals.per_report:
        notes.append(f"A report sent to k countries counts once in each of them and once in each region it went to: "
                     f"the country counts add up to {amount(('G',))} and the region counts to "
                     f"{_amount_of_sum(region_sum, region_rows, hidden, spec.threshold)}, while the total of "
                     f"distinct reports is {amount(('N',))}.")
    else:
        notes.append("Each row counts referrals from one agency to one country: a case referred to two countries "
                     f"counts in both, and the {amount(('G',))} referrals cannot be told apart into distinct cases.")
    if rate:
        notes.append(f"Rates divide each count by the base table's {spec.base_label} ({base_source or 'base table'}) "
                     f"and are {unit}; a base that is not the population at risk changes the ranking.")
    else:
        notes.append("No base table: countries are compared by their counts, which grow with population.")
    notes.append(f"The ranks come from {spec.draws:,} draws of each rate's Gamma posterior (prior shape "
                 f"{spec.prior_shape:g}{', Jeffreys' if spec.prior_shape == 0.5 else ''}; seed {spec.seed}); a "
                 f"probability is within about {2 * math.sqrt(0.25 / spec.draws):.3f} of its exact value.")
    notes.append("Regions are the UN M49 regions and sub-regions (Taiwan and Kosovo placed by geography).")
    if full.rank[focus] != 1:
        notes.append(f"The focus country {codes[focus]} is not the largest observed (observed rank "
                     f"{int(full.rank[focus])}).")
    if not agencies:
        notes.append("No agency column: results by agency and leave-one-agency-out are not available, so whether "
                     "one source drives the ranking cannot be checked.")
    elif len(agencies) == 1:
        notes.append("One agency only: leave-one-agency-out is not possible, and the ranking rests on that agency "
                     "alone.")
    for agency, result in left_out.items():
        if full.rank[focus] == 1 and result.rank[focus] != 1:
            warnings.append(f"Without {agency} the focus country {codes[focus]} is no longer the largest (observed "
                            f"rank {int(result.rank[focus])}, probability of ranking first "
                            f"{result.p_first:.2f}): one agency drives the ranking.")
    n_hidden = len(hidden)
    if n_hidden:
        notes.append(f"{n_hidden} count(s) suppressed ({len(primary)} below {spec.threshold}, {len(secondary)} so "
                     "that no hidden count can be recovered from the totals); their rates, intervals, ratios and "
                     "rank probabilities are blank.")

    # Suppressed countries go last, alphabetically: their place in an ordered table would bound their counts.
    country_rows.sort(key=lambda r: (r["suppressed"], 0.0 if r["suppressed"] else -r["estimate"], r["country"]))
    position = {row["country"]: i for i, row in enumerate(country_rows)}
    ratio_rows.sort(key=lambda r: position[r["country"]])
    main = pd.DataFrame([*country_rows, *ratio_rows, hotspot])
    for column in ("count", "focus_count", "observed_rank", "rank_lower", "rank_median", "rank_upper"):
        if column in main.columns:
            main[column] = main[column].astype(object).where(main[column].notna(), None)
    settings = {**to_dict(spec), "measure": "rate" if rate else "count", "focus_country": codes[focus],
                "unit": unit}
    diagnostics = {"countries": len(codes), "agencies": len(agencies), "per_report": referrals.per_report,
                   "cells_suppressed": n_hidden, "focus": codes[focus],
                   "focus_p_first": None if focus_hidden else float(p_first[focus]),
                   "focus_first_without_each_agency": None if not left_out else
                   all(result.rank[focus] == 1 for result in left_out.values())}
    return Estimates(table=main, settings=settings, seed=spec.seed, warnings=warnings, notes=notes,
                     diagnostics=diagnostics,
                     tables={"regions": regions, "ranks": ranks, "agencies": agency_table,
                             "leave_one_out": leave_one_out, "suppression": suppression})


def _region_key(row: dict) -> tuple:
    """The suppression key of a row of the regions table."""
    if row["grouping"] == "total":
        return ("N",) if row["region"] == "distinct reports" else ("G",)
    return (row["grouping"], row["region"] if row["grouping"] == "region" else row["subregion"])


def _amount_of_sum(total: int, rows: list[dict], hidden: set, threshold: int) -> str:
    """The sum of the region counts, unless a region count is hidden (then the sum is not given)."""
    if any(("region", r["region"]) in hidden for r in rows if r["grouping"] == "region"):
        return "a sum not shown (a region count is suppressed)"
    return f"{total:,}"


def _leave_one_out_row(agency: str, result: _Comparison, focus: int, codes: list[str], exposure: np.ndarray,
                       level: float, table: dict) -> dict:
    other = result.largest_other
    estimate, lower, upper = rate_ratio_interval(int(result.counts[focus]), exposure[focus],
                                                 int(result.counts[other]), exposure[other], level)
    return {"left_out": agency, "focus": codes[focus], "focus_count": int(result.counts[focus]),
            "focus_rank": int(result.rank[focus]), "focus_first": bool(result.rank[focus] == 1),
            "p_first": result.p_first, "largest_other": codes[other], "largest_other_name": table[codes[other]].name,
            "largest_other_count": int(result.counts[other]), "estimate": estimate, "lower": lower, "upper": upper,
            "level": level, "unit": "ratio"}


def _hide_leave_one_out(frame: pd.DataFrame, left_out: dict[str, _Comparison], hidden: set, codes: list[str],
                        focus: int) -> pd.DataFrame:
    frame = frame.copy()
    frame["suppressed"] = False
    for column in ("focus_count", "largest_other_count", "estimate", "lower", "upper", "agency_referrals",
                   "focus_count_agency_alone"):
        if column in frame.columns:
            frame[column] = frame[column].astype(object)
    for position, row in frame.iterrows():
        agency = row["left_out"]
        if position == 0:
            focus_key, other_key = ("C", codes[focus]), ("C", row["largest_other"])
        else:
            focus_key, other_key = ("L", agency, codes[focus]), ("L", agency, row["largest_other"])
        hide = []
        if focus_key in hidden:
            hide += ["focus_count", "estimate", "lower", "upper"]
        if other_key in hidden:
            hide += ["largest_other_count", "estimate", "lower", "upper"]
        if position > 0 and ("T", agency) in hidden:
            hide.append("agency_referrals")
        if position > 0 and ("A", agency, codes[focus]) in hidden:
            hide.append("focus_count_agency_alone")
        for column in dict.fromkeys(hide):
            frame.loc[position, column] = None
        if hide:
            frame.loc[position, "suppressed"] = True
    return frame


def _rank_table(codes: list[str], probabilities: np.ndarray, hidden: set) -> pd.DataFrame:
    table = countries()
    rows = []
    for i, code in enumerate(codes):
        suppressed = ("C", code) in hidden
        for rank in range(1, min(len(codes), RANKS_SHOWN) + 1):
            rows.append({"country": code, "name": table[code].name, "rank": rank,
                         "p_rank": None if suppressed else float(probabilities[i, rank - 1]),
                         "suppressed": suppressed})
    return pd.DataFrame(rows)


def compare_files(referrals: str | Path, spec: CompareSpec, *, base_file: str | Path | None = None) -> Estimates:
    """Read a referral table (and a base table) and compare the countries with ``spec``; the command line and a
    study both call this."""

    spec = validate(spec)
    data = read_referrals_file(referrals, country=spec.country, count=spec.count, id=spec.id, agency=spec.agency,
                               agencies=spec.agencies, period=spec.period)
    bases = None if base_file is None else read_bases_file(base_file)
    result = compare_referrals(data, spec, bases=bases, base_source="" if base_file is None else Path(base_file).name)
    result.settings = {**result.settings, "file": Path(referrals).name,
                       "base_file": None if base_file is None else Path(base_file).name}
    return result
