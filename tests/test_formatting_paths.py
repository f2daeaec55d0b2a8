"""One number, one spelling: an estimate, its interval and a ratio read the same through Estimates.summary(), the
notebook view, the CLI table and the report's tables; narrow terminals lose secondary columns with a note."""

from __future__ import annotations

import pandas as pd
import pytest

from hiddenpop.cli.common import render_table
from hiddenpop.formatting import format_interval, format_value
from hiddenpop.results import Estimates
from hiddenpop.study.report.content import records

TABLE = pd.DataFrame({"quantity": ["victims", "victims_per_trafficker"], "method": ["mle", "mle"],
                      "estimate": [35123.4, 3.14159], "se": [2000.5, 0.3], "lower": [30000.2, 2.5],
                      "upper": [41000.9, 4.0], "level": [0.95, 0.95], "unit": ["people", "ratio"],
                      "note": ["a note that is long enough to push the table past eighty columns", ""]})
EXPECTED = ("35,123", "30,000 to 41,001", "3.14", "2.50 to 4.00")


def _report_text() -> str:
    table = records(TABLE, interval=True)
    return "\n".join(" | ".join(cell["text"] for cell in row) for row in table["rows"])


@pytest.mark.parametrize("render", [
    lambda: Estimates(table=TABLE).summary(),
    lambda: Estimates(table=TABLE)._repr_html_(),
    lambda: render_table(TABLE, width=120),
    lambda: render_table(TABLE, width=80),
    _report_text,
], ids=["summary", "notebook", "cli", "cli-80", "report"])
def test_the_same_numbers_read_the_same_everywhere(render):
    assert format_value(35123.4, "count") == EXPECTED[0]
    assert format_interval(30000.2, 41000.9, "count") == EXPECTED[1]
    text = render()
    for expected in EXPECTED:
        assert expected in text
    assert "e+0" not in text and "35,123.4" not in text


def test_cli_tables_fit_eighty_columns_and_say_what_they_left_out():
    text = render_table(TABLE, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "left out to fit 80 characters" in text and "note" in text.split("left out")[1]
    wide = render_table(TABLE, width=250)
    assert "left out" not in wide and "a note that is long" in wide


def test_summary_fits_its_width_and_the_notebook_view_escapes_cells():
    text = Estimates(table=TABLE).summary(width=60)
    assert max(len(line) for line in text.splitlines() if not line.startswith("(")) <= 60
    hostile = TABLE.assign(quantity=["<script>alert(1)</script>", "x"])
    html = Estimates(table=hostile)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
