"""What the report says, as plain data: formatted table rows, headline sentences, caveats, the methods paragraph.

The HTML report, the PDF printed from it and ``summary.docx`` all take their words and numbers from here, and
every number goes through :mod:`hiddenpop.formatting`, so a figure reads the same in every output. Everything is
built from published tables (after small-cell suppression), never from raw data.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hiddenpop.formatting import (
    column_label,
    display_table,
    format_interval,
    format_value,
    is_missing,
    kind_for,
)

if TYPE_CHECKING:
    from hiddenpop.study.context import RunContext
    from hiddenpop.study.schema import Study

#: Long tables show this many rows in the report; the whole table is in the run's ``tables/`` folder.
TOP_ROWS = 12
#: The most caveats the summary shows (the rest are in the appendix).
MAX_CAVEATS = 3


def level_text(level: Any) -> str:
    """``0.95`` -> ``95%`` (blank when missing)."""
    return "" if is_missing(level) else format_value(float(level), "percent")


def records(frame: pd.DataFrame | None, limit: int | None = None, columns: list[str] | None = None,
            interval: bool = False) -> dict[str, Any]:
    """A table for the template: cells as :func:`hiddenpop.formatting.display_table` writes them (``interval``
    merges ``lower``/``upper`` into one column), column labels in words, and suppressed cells reading
    "suppressed"."""
    if frame is None:
        return {"columns": [], "rows": [], "more": 0, "total": 0}
    shown = frame if limit is None else frame.head(limit)
    if columns is not None:
        shown = shown[[c for c in columns if c in shown.columns]]
    names, texts = display_table(shown, interval=interval)
    suppressed = (frame["suppressed"].iloc[:len(shown)].tolist() if "suppressed" in frame.columns
                  else [False] * len(shown))
    rows = []
    for position, (_, record) in enumerate(shown.iterrows()):
        cells = []
        for name, text in zip(names, texts[position], strict=True):
            value = record[name] if name in record.index else None
            if name != "interval" and is_missing(value) and suppressed[position] in (True, 1):
                cells.append({"text": "suppressed", "cls": "suppressed"})
                continue
            numeric = name == "interval" or (isinstance(value, numbers.Number)
                                             and not isinstance(value, (bool, np.bool_)))
            cells.append({"text": text, "cls": "num" if numeric else ""})
        rows.append(cells)
    return {"columns": [column_label(n) for n in names], "rows": rows,
            "more": max(0, len(frame) - len(shown)), "total": len(frame)}


def _unit_kind(unit: str) -> str:
    return kind_for("estimate", unit)


def headline_items(context: RunContext, headline: pd.DataFrame) -> list[dict[str, Any]]:
    """One item per headline count or ratio: label, number, interval, level, its rate, source and note, with
    the sentence that states it."""
    study = context.study
    items = []
    wanted = [(c.name, c.label) for c in study.combine.values()] + [(r.name, r.label) for r in study.ratios.values()]
    for quantity, label in wanted:
        rows = headline[headline["quantity"] == quantity]
        row = rows.iloc[0] if len(rows) else None
        item: dict[str, Any] = {"quantity": quantity, "label": label, "estimated": False, "note": "",
                                "rate": None}
        if row is None or is_missing(row["estimate"]):
            item["note"] = "" if row is None else str(row.get("note", ""))
            item["sentence"] = f"{label}: not estimated. {item['note']}".strip()
            items.append(item)
            continue
        kind = _unit_kind(row["unit"])
        item.update(estimated=True, value=format_value(row["estimate"], kind),
                    interval=format_interval(row["lower"], row["upper"], kind), level=level_text(row["level"]),
                    unit=row["unit"], analysis=row["analysis"], method=row["method"], note=str(row["note"]),
                    basis=str(row["basis"]))
        rate_rows = headline[headline["quantity"].str.startswith(f"{quantity}_per_")]
        if len(rate_rows):
            rate = rate_rows.iloc[0]
            item["rate"] = {"value": format_value(rate["estimate"], "ratio"), "unit": rate["unit"],
                            "interval": format_interval(rate["lower"], rate["upper"], "ratio")}
        if row["unit"] == "people":
            sentence = (f"An estimated {item['value']} {label[0].lower() + label[1:]} ({item['level']} interval "
                        f"{item['interval']})")
            if item["rate"]:
                sentence += f", or {item['rate']['value']} {item['rate']['unit']}"
        else:
            sentence = f"{label}: {item['value']} ({item['level']} interval {item['interval']})"
        item["sentence"] = sentence + "."
        items.append(item)
    return items


def headline_table(items: list[dict[str, Any]]) -> list[list[str]]:
    """Rows of the headline table in the exports: quantity, estimate, interval, rate."""
    rows = []
    for item in items:
        if not item["estimated"]:
            rows.append([item["label"], "not estimated", "", ""])
            continue
        rate = f"{item['rate']['value']} {item['rate']['unit']}" if item["rate"] else ""
        rows.append([item["label"], item["value"], f"{item['level']}: {item['interval']}", rate])
    return rows


def caveats(context: RunContext, tables: dict[str, pd.DataFrame]) -> list[str]:
    """The caveats that matter most, most important first (at most :data:`MAX_CAVEATS`): analyses that failed,
    headlines taken from a fallback, the visibility assumption the headline rests on and how far it would have
    to move, casework as a floor, and identifiers that are not people."""
    found: list[str] = []
    for result in context.results.values():
        if result.status == "failed_gates":
            found.append(f"{result.title} failed its diagnostic gates; none of its numbers feed a headline.")
        elif result.status == "error":
            found.append(f"{result.title} could not be fitted: {result.message}")
    headline = tables["headline"]
    for note in dict.fromkeys(n for n in headline["note"] if n):
        found.append(note[0].upper() + note[1:] + ".")
    assumptions = tables.get("assumptions")
    if assumptions is not None and len(assumptions):
        declared = assumptions[~assumptions["range"].astype(str).str.startswith("not declared")
                               & assumptions["assumption"].str.contains(r"\(", regex=True)]
        for _, row in declared.iterrows():
            found.append(f"Every survey count assumes a {row['assumption']} of {row['value']} ({row['range']}); "
                         f"source: {row['source']}.")
    break_even = tables.get("break_even")
    if break_even is not None and len(break_even):
        movable = break_even[~break_even["sentence"].str.startswith("No ")]
        if len(movable):
            found.append(str(movable["sentence"].iloc[0]))
    triangulation = tables.get("triangulation")
    if triangulation is not None and len(triangulation):
        if (triangulation["analysis"] == "casework").any():
            found.append("Casework counts are cases the authorities reached: floors, not estimates of the hidden "
                         "population.")
        if (triangulation["unit"] == "identifiers").any():
            found.append("Report-log estimates count identifiers (IP addresses), not people.")
        lists = triangulation[(triangulation["analysis"] == "mse") & triangulation["estimate"].notna()]
        if len(lists) > 1:
            low, high = lists["estimate"].min(), lists["estimate"].max()
            found.append(f"Estimates from the overlapping lists run from {format_value(low, 'count')} to "
                         f"{format_value(high, 'count')} depending on the model class: the class matters more "
                         "than any one interval shows.")
    return list(dict.fromkeys(found))[:MAX_CAVEATS]


def area_rates(context: RunContext, tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame | None, str]:
    """The area estimates as rates in the headline's unit (e.g. per 100 children), with that unit."""
    frame = tables.get("area_estimates")
    if frame is None or frame.empty or "estimate" not in frame.columns:
        return None, ""
    study = context.study
    target = study.analyses.get("smallarea", {}).get("target") or next(iter(study.combine))
    combination = study.combine[target]
    scaled = frame.copy()
    for column in ("estimate", "lower", "upper"):
        scaled[column] = pd.to_numeric(scaled[column], errors="coerce") * combination.per
    unit = f"{combination.label.lower()} per {combination.per:,} {combination.base}"
    return scaled, unit


def national_sentence(tables: dict[str, pd.DataFrame]) -> str:
    """Whether the area estimates agree with the national design-based estimate, in one sentence."""
    frame = tables.get("area_national_consistency")
    if frame is None or frame.empty:
        return ""
    row = frame.iloc[0]
    inside = bool(row["within_national_interval"])
    return (f"Weighted by population, the area estimates imply {format_value(row['implied_count'], 'count')} in "
            f"all, {format_value(row['ratio_to_national'], 'ratio')} times the national estimate; the implied rate "
            f"{'lies within' if inside else 'falls OUTSIDE'} the national interval.")


#: The sentence each analysis adds to the methods paragraph, in the order they are read.
METHOD_SENTENCES = {
    "nsum_bayes": "A Bayesian model that lets network sizes vary and allows for barrier effects is shown beside it.",
    "casework": "Casework counts are compared as floors.",
    "report_log": ("Repeat sightings of identifiers in the report log give capture-recapture estimates of "
                   "identifiers, not people."),
    "smallarea": "Area estimates combine the surveyed areas' direct estimates with data streams on every area.",
    "mse": ("People found on several agencies' lists give multiple systems estimates under several model classes, "
            "shown side by side, the class chosen before seeing the results first."),
    "compare": ("Referral counts compare countries, with exact intervals and the probability of ranking first; "
                "they measure what agencies detected and shared, not how much exploitation there is."),
}


def methods_paragraph(study: Study) -> str:
    """One paragraph on how the headline was made, for the summary and the Word export."""
    text = ("Adults in a household survey were asked how many people they know in groups of known size and in "
            "the hidden groups (network scale-up). The known groups give each respondent's network size; the "
            "share of those networks that belongs to a hidden group, scaled to the population, estimates its "
            "size. Intervals come from a bootstrap that resamples the survey's clusters within strata and draws "
            "every declared visibility factor once per replicate.")
    return " ".join([text, *(sentence for name, sentence in METHOD_SENTENCES.items() if name in study.analyses)])


def probability_text(value: Any) -> str:
    """A simulated probability in words that do not claim certainty: "over 99.9%", "under 0.1%" or a percentage."""
    if is_missing(value):
        return ""
    if float(value) > 0.999:
        return "over 99.9%"
    if float(value) < 0.001:
        return "under 0.1%"
    return format_value(float(value), "percent")


def compare_sentences(tables: dict[str, pd.DataFrame]) -> list[str]:
    """What the cross-country comparison found, in sentences built from its published (suppressed) tables: the
    focus country's rate, its probability of ranking first, its ratio to the largest other, and whether it stays
    first with each agency left out."""
    countries = tables.get("compare_countries")
    ratios = tables.get("compare_ratios")
    if countries is None or countries.empty:
        return []
    focus = countries[countries["focus"].astype(bool)]
    if focus.empty:
        return []
    row = focus.iloc[0]
    name = row["name"]
    if bool(row["suppressed"]):
        return [f"The count of {name} is suppressed (small), so its comparison is not shown."]
    kind = kind_for("estimate", row["unit"])
    unit = "" if row["unit"] == "referrals" else f" {row['unit']}"
    sentences = [f"{name} received {format_value(row['count'], 'count')} referrals"
                 + (f", {format_value(row['estimate'], kind)}{unit}" if unit else "")
                 + f" ({level_text(row['level'])} interval {format_interval(row['lower'], row['upper'], kind)}); "
                 f"observed rank {format_value(row['observed_rank'], 'count')} of {len(countries)}, probability of "
                 f"ranking first {probability_text(row['p_first'])}."]
    if ratios is not None and len(ratios):
        other = ratios[(ratios["kind"] == "ratio") & ratios["largest_other"].eq(True)]
        if len(other) and not bool(other["suppressed"].iloc[0]):
            r = other.iloc[0]
            sentences.append(f"Its {'rate' if unit else 'count'} is {format_value(r['estimate'], 'ratio')} times that "
                             f"of the next country, {r['name']} (exact interval "
                             f"{format_interval(r['lower'], r['upper'], 'ratio')}).")
        hotspot = ratios[ratios["kind"] == "hotspot"]
        if len(hotspot) and not bool(hotspot["suppressed"].iloc[0]):
            h = hotspot.iloc[0]
            sentences.append("Allowing for the uncertainty in which country is the largest other, the ratio to it is "
                             f"{format_value(h['estimate'], 'ratio')} ({format_interval(h['lower'], h['upper'], 'ratio')}).")
    loo = tables.get("compare_leave_one_out")
    if loo is not None and len(loo) > 1:
        rest = loo.iloc[1:]
        first = rest["focus_first"].astype(bool)
        if first.all():
            sentences.append(f"{name} stays the largest with any one of the {len(rest)} agencies left out (lowest "
                             f"probability of ranking first {probability_text(rest['p_first'].min())}).")
        else:
            sentences.append(f"{name} is no longer the largest without "
                             + ", ".join(str(a) for a in rest.loc[~first, "left_out"])
                             + ": that agency drives the ranking.")
    return sentences
