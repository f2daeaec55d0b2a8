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
