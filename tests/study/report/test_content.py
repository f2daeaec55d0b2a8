"""The report's words and tables: every number through the one formatter, intervals written one way, suppressed
cells named, and the map falling back to ranked bars when a study gives no boundaries."""

from __future__ import annotations

import pandas as pd

from hiddenpop.study.report.content import records
from hiddenpop.study.report.figures import build_figures
from hiddenpop.study.runner import execute
from hiddenpop.study.schema import load_study


def test_records_format_by_unit_and_merge_intervals():
    frame = pd.DataFrame({"label": ["victims", "ratio"], "estimate": [35123.4, 3.14159], "lower": [30000.2, 2.5],
                          "upper": [41000.9, 4.0], "level": [0.95, 0.95], "unit": ["people", "ratio"]})
    table = records(frame, interval=True)
    assert table["columns"] == ["label", "estimate", "interval", "interval level", "unit"]
    first, second = ([cell["text"] for cell in row] for row in table["rows"])
    assert first[1:3] == ["35,123", "30,000 to 41,001"]
    assert second[1:3] == ["3.14", "2.50 to 4.00"]
    assert "95%" in first


def test_suppressed_cells_are_named_and_long_tables_cut():
    frame = pd.DataFrame({"area": [f"a{i}" for i in range(20)], "count": [None, *range(10, 29)],
                          "suppressed": [True] + [False] * 19})
    table = records(frame, limit=5)
    assert table["rows"][0][1] == {"text": "suppressed", "cls": "suppressed"}
    assert len(table["rows"]) == 5 and table["more"] == 15 and table["total"] == 20


def test_without_boundaries_the_areas_are_ranked(demo_study, tmp_path):
    study = load_study(demo_study)
    del study.analyses["smallarea"]["geometry"]
    context, published, _ = execute(study)
    assert "area_geometry" not in context.shared
    figures = build_figures(context, published, tmp_path)
    assert figures["map"].title == "Areas with the highest estimates"
    assert "no map is drawn" in figures["map"].caption


def test_with_boundaries_the_study_uses_them(demo_study):
    context, published, _ = execute(load_study(demo_study))
    geometry, key = context.shared["area_geometry"]
    assert key == "area_id"
    assert {f["properties"][key] for f in geometry["features"]} == set(published.tables["area_estimates"]["area"])
    assert published.tables["area_estimates"]["name"].notna().all()


def test_the_comparison_is_said_in_sentences_from_its_published_tables(demo_study, tmp_path):
    """The "Countries compared" section: the focus country's rate and interval as the table shows them, no claim
    of certainty from a simulation, the agencies left out, and a figure whose words name the focus country."""
    from hiddenpop.formatting import format_interval, format_value
    from hiddenpop.study.report.content import compare_sentences, probability_text
    from hiddenpop.study.steps import compare_step

    context, published, _ = execute(load_study(demo_study), steps=[("compare", compare_step)])
    tables = published.tables
    sentences = compare_sentences(tables)
    focus = tables["compare_countries"].iloc[0]
    assert focus["country"] == "PHL"
    assert sentences[0].startswith(f"Philippines received {format_value(focus['count'], 'count')} referrals, "
                                   f"{format_value(focus['estimate'], 'ratio')} per 100,000 children")
    assert format_interval(focus["lower"], focus["upper"], "ratio") in sentences[0]
    assert "stays the largest with any one of the 4 agencies left out" in sentences[-1]
    assert probability_text(1.0) == "over 99.9%" and probability_text(0.0004) == "under 0.1%"
    assert probability_text(0.952) == "95.2%"
    figure = build_figures(context, published, tmp_path)["compare"]
    assert "Philippines" in figure.alt and "suppressed" in figure.alt and (tmp_path / "compare.svg").is_file()
    # a suppressed focus country is not described
    hidden = dict(tables, compare_countries=tables["compare_countries"].assign(suppressed=True))
    assert compare_sentences(hidden) == ["The count of Philippines is suppressed (small), so its comparison is not shown."]
