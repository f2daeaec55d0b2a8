"""``hiddenpop compare referrals`` through the console script's entry point: results, byte-identical reruns, and
hostile files that end in one line and exit code 2 without quoting a cell."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_commands import run_main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "compare"
DEMO_OPTIONS = ["--count", "referrals", "--agency", "agency", "--period", "year", "--focus", "PHL",
                "--base-label", "children", "--draws", "2000"]


def test_the_example_runs_and_reruns_to_the_same_bytes(capsys, tmp_path):
    args = ["compare", "referrals", EXAMPLES / "referrals.csv", "--base-file", EXAMPLES / "children.csv",
            *DEMO_OPTIONS, "--format", "json"]
    code, first, err = run_main(capsys, *args)
    assert code in (0, None), err
    code, second, _ = run_main(capsys, *args)
    payload = json.loads(first)
    strip = [{k: v for k, v in json.loads(text).items() if k != "provenance"} for text in (first, second)]
    assert strip[0] == strip[1]
    assert payload["settings"]["focus_country"] == "PHL" and payload["seed"] == 1
    phl = next(r for r in payload["estimates"] if r["quantity"] == "PHL")
    assert phl["unit"] == "per 100,000 children" and phl["observed_rank"] == 1
    assert set(payload["tables"]) == {"regions", "ranks", "agencies", "leave_one_out", "suppression"}
    code, table, _ = run_main(capsys, "compare", "referrals", EXAMPLES / "referrals.csv", "--base-file",
                              EXAMPLES / "children.csv", *DEMO_OPTIONS)
    assert code in (0, None) and "Philippines" in table and "convenience sample" in table


def test_reports_sent_to_several_countries(capsys):
    code, out, err = run_main(capsys, "compare", "referrals", EXAMPLES / "reports.csv", "--id", "report",
                              "--format", "json", "--draws", "500")
    assert code in (0, None), err
    payload = json.loads(out)
    regions = {(r["grouping"], r["region"]): r["count"] for r in payload["tables"]["regions"]}
    distinct = regions[("total", "distinct reports")]
    assert distinct == 300
    assert sum(v for (grouping, _), v in regions.items() if grouping == "region") > distinct
    assert "T00001" not in out  # report ids never leave the reader


HOSTILE = {
    "ragged row": ("agency,country,count\nA,PHL,4\nA,USA\n", r"row 2.* has 2 fields where the header has 3"),
    "duplicate header": ("agency,country,count,count\nA,PHL,4,5\n", r"column 'count' appears more than once"),
    "huge number": ("agency,country,count\nA,PHL,99999999999999999999\n", r"row 1, column 'count': count too large"),
    "empty file": ("", r"the file is empty"),
    "header only": ("agency,country,count\n", r"no data rows"),
    "negative": ("agency,country,count\nA,PHL,4\nA,USA,-2\n", r"row 2, column 'count': count is negative"),
    "fraction": ("agency,country,count\nA,PHL,4.5\nA,USA,2\n", r"row 1, column 'count': expected a whole number"),
    "unknown country": ("agency,country,count\nA,PHL,4\nA,Secretland,2\n",
                        r"row 2, column 'country': not an ISO 3166-1"),
    "repeated row": ("agency,country,count\nA,PHL,4\nA,PHL,2\n", r"row 2: repeats the agency, country and period"),
    "no header": ("PHL,4\nUSA,2\n", r"no header row"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_end_in_one_line(case, capsys, tmp_path):
    text, message = HOSTILE[case]
    path = tmp_path / "referrals.csv"
    path.write_text(text, encoding="utf-8")
    code, out, err = run_main(capsys, "compare", "referrals", path, "--agency", "agency")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(message, lines[0]), lines[0]
    assert "Secretland" not in err and "99999999999999999999" not in err


def test_bad_options_and_bases(capsys, tmp_path):
    referrals = tmp_path / "r.csv"
    referrals.write_text("agency,country,count\nA,PHL,40\nA,USA,12\n", encoding="utf-8")
    code, _, err = run_main(capsys, "compare", "referrals", referrals, "--focus", "Atlantis")
    assert code == 2 and "option --focus: expected an ISO 3166-1" in err and "Atlantis" not in err
    code, _, err = run_main(capsys, "compare", "referrals", referrals, "--draws", "5")
    assert code == 2 and "--draws must satisfy 100 <= draws" in err
    bases = tmp_path / "b.csv"
    bases.write_text("country,base\nPHL,40000000\nUSA,-1\n", encoding="utf-8")
    code, _, err = run_main(capsys, "compare", "referrals", referrals, "--base-file", bases)
    assert code == 2 and "b.csv, row 2, column 'base': a base must be a positive" in err
    bases.write_text("country,base\nPHL,40000000\n", encoding="utf-8")
    code, _, err = run_main(capsys, "compare", "referrals", referrals, "--base-file", bases)
    assert code == 2 and "USA received referrals but has no base" in err
