"""Case-file summaries: counts, Wilson shares, t means, cross-tabs, small-cell suppression, free text and
validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cli_commands import run_main
from hiddenpop.cases.summary import read_codebook, summarize_cases
from hiddenpop.errors import DataError, PrivacyError
from hiddenpop.review.proportion import wilson_interval

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cases"




def codebook(*rows):
    return read_codebook(
        pd.DataFrame(rows, columns=["column", "role", "type", "levels", "missing"]), source="codebook.csv"
    )


CASES = pd.DataFrame(
    {
        "case_id": [f"K{i}" for i in range(40)],
        "relationship": ["parent"] * 18 + ["relative"] * 14 + ["neighbour"] * 3 + ["other"] * 2 + ["n/r"] * 3,
        "victim_sex": (["female"] * 30 + ["male"] * 10),
        "victims": list(range(1, 41)),
        "platforms": ["chat;video"] * 20 + ["chat"] * 12 + ["video"] * 6 + ["forum"] * 2,
        "notes": [f"free text about case {i}" for i in range(40)],
    }
)
CODEBOOK = codebook(
    ("case_id", "case", "id", "", ""),
    ("relationship", "trafficker", "categorical", "parent;relative;neighbour;other", "n/r"),
    ("victim_sex", "victim", "categorical", "female;male", ""),
    ("victims", "victim", "numeric", "", ""),
    ("platforms", "offending-process", "multi-select", "chat;video;forum", ""),
    ("notes", "case", "free text", "", ""),
)


def test_counts_shares_means_closed_form():
    result = summarize_cases(CASES, CODEBOOK, threshold=3)
    table = result.table
    parent = table[(table["variable"] == "relationship") & (table["category"] == "parent")].iloc[0]
    assert parent["count"] == 18 and parent["n_valid"] == 37 and parent["n_missing"] == 3
    assert parent["estimate"] == pytest.approx(18 / 37)
    assert (parent["lower"], parent["upper"]) == pytest.approx(wilson_interval(18, 37))
    mean = table[table["variable"] == "victims"].iloc[0]
    values = np.arange(1, 41)
    lower, upper = stats.t.interval(0.95, 39, loc=values.mean(), scale=values.std(ddof=1) / np.sqrt(40))
    assert mean["estimate"] == pytest.approx(20.5) and mean["total"] == 820
    assert (mean["lower"], mean["upper"]) == pytest.approx((lower, upper))
    chat = table[(table["variable"] == "platforms") & (table["category"] == "chat")].iloc[0]
    assert chat["count"] == 32 and chat["estimate"] == pytest.approx(32 / 40)  # multi-select: per option
    assert set(table["role"]) == {"trafficker", "victim", "offending_process"}
    assert "case_id" not in set(table["variable"]) and "notes" not in set(table["variable"])


def test_small_cells_suppressed_with_complement():
    result = summarize_cases(CASES, CODEBOOK)  # default threshold 5
    table = result.table.set_index(["variable", "category"])
    # neighbour (3) and other (2) are below 5: blank with their shares and intervals
    for category in ("neighbour", "other"):
        row = table.loc[("relationship", category)]
        assert (
            row["suppressed"] and pd.isna(row["count"]) and pd.isna(row["estimate"]) and pd.isna(row["upper"])
        )
    # forum (2 cases) hidden in the multi-select list
    assert pd.isna(table.loc[("platforms", "forum"), "count"])
    # no visible count anywhere in 1..4
    for frame in (result.table, result.tables["crosstabs"]):
        if len(frame):
            counts = pd.to_numeric(frame["count"], errors="coerce").dropna()
            assert not counts.between(1, 4).any()
    # a single small cell is protected by suppressing the next smallest too (no recovery by subtraction)
    one_small = CASES.assign(
        relationship=["parent"] * 20 + ["relative"] * 14 + ["neighbour"] * 4 + ["other"] * 2
    )
    single = summarize_cases(one_small, CODEBOOK).table.set_index(["variable", "category"])
    assert pd.isna(single.loc[("relationship", "other"), "count"])
    assert pd.isna(single.loc[("relationship", "neighbour"), "count"])  # 4 < 5: primary anyway
    just_one = CASES.assign(
        relationship=["parent"] * 20 + ["relative"] * 14 + ["neighbour"] * 6 + ["other"] * 0
    )
    codes = codebook(("relationship", "trafficker", "categorical", "parent;relative;neighbour", ""))
    tiny = just_one.assign(relationship=["parent"] * 21 + ["relative"] * 17 + ["neighbour"] * 2)
    summary = summarize_cases(tiny, codes).table.set_index("category")
    assert pd.isna(summary.loc["neighbour", "count"]) and pd.isna(summary.loc["relative", "count"])
    assert summary.loc["parent", "count"] == 21
    assert result.diagnostics["cells_suppressed"] >= 3
    assert any("suppressed" in note for note in result.notes)


def test_crosstabs_by_role_and_suppression():
    unsuppressed = summarize_cases(CASES, CODEBOOK, threshold=1, crosstabs=[("relationship", "victim_sex")])
    cross = unsuppressed.tables["crosstabs"]
    female_parent = cross[(cross["row_category"] == "parent") & (cross["column_category"] == "female")].iloc[
        0
    ]
    assert female_parent["count"] == 18 and female_parent["column_total"] == 30  # the 3 n/r rows are male
    assert female_parent["share"] == pytest.approx(18 / 30)
    assert female_parent["row_role"] == "trafficker" and female_parent["column_role"] == "victim"
    published = summarize_cases(CASES, CODEBOOK, threshold=3, crosstabs=[("relationship", "victim_sex")])
    cross = published.tables["crosstabs"]
    counts = pd.to_numeric(cross["count"], errors="coerce")
    assert not counts.dropna().between(1, 2).any()
    # male x relative (2) is hidden; female x relative would then give it away from the row total, and so on:
    # no row or column may have exactly one hidden cell next to a visible non-zero cell
    hidden = cross["count"].isna()
    visible_nonzero = counts.fillna(0) > 0
    for key in ("row_category", "column_category"):
        n_hidden = hidden.groupby(cross[key]).sum()
        n_visible = visible_nonzero.groupby(cross[key]).sum()
        assert not ((n_hidden == 1) & (n_visible > 0)).any()
    assert published.tables["suppression"].set_index("table").loc["crosstabs", "complementary_cells"] > 0
    by = summarize_cases(CASES, CODEBOOK, threshold=3, by="victim_sex").tables["crosstabs"]
    assert {"relationship", "platforms"} <= set(by["row_variable"])


def test_free_text_dropped_or_refused_never_echoed():
    result = summarize_cases(CASES, CODEBOOK)
    assert any("free-text column(s) dropped unread: ['notes']" in n for n in result.notes)
    assert "free text about" not in result.to_json()
    assert "K1" not in json.dumps(result.to_dict()["estimates"])  # case ids never output
    with pytest.raises(PrivacyError, match="free-text column"):
        summarize_cases(CASES, CODEBOOK, free_text="refuse")
    # an undeclared free-text column disguised as categorical is refused: categories must be declared
    with pytest.raises(DataError) as caught:
        codebook(("notes", "case", "categorical", "", ""))
    assert "column 'levels': categorical column 'notes' has no levels" in str(caught.value)
    assert "free text about" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c.assign(victim_sex=c["victim_sex"].where(c.index != 4, "girl, age 9, lives at")),
            "cases.csv, row 5, column 'victim_sex': value is not one of the codebook levels",
        ),
        (
            lambda c: c.assign(victims=c["victims"].astype(object).where(c.index != 7, "about five")),
            "cases.csv, row 8, column 'victims': value is not a number",
        ),
        (
            lambda c: c.assign(case_id=c["case_id"].where(c.index != 9, "K0")),
            "cases.csv, row 10, column 'case_id': case id appears more than once",
        ),
        (
            lambda c: c.assign(platforms=c["platforms"].where(c.index != 2, "chat;home address")),
            "cases.csv, row 3, column 'platforms': a selected option is not one of the codebook levels",
        ),
        (
            lambda c: c.drop(columns=["victims"]),
            "codebook.csv, row 4, column 'column': codebook names column 'victims', which is not in the case file",
        ),
    ],
)
def test_case_validation_errors_never_echo_values(change, message):
    with pytest.raises(DataError) as caught:
        summarize_cases(change(CASES), CODEBOOK, source="cases.csv", codebook_source="codebook.csv")
    text = str(caught.value)
    assert text.startswith(message)
    for secret in ("girl", "about five", "home address"):
        assert secret not in text


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [("a", "victim", "categorical", "x;y", ""), ("a", "victim", "numeric", "", "")],
            "codebook.csv, row 2, column 'column': column 'a' is described twice",
        ),
        (
            [("a", "witness", "categorical", "", "")],
            "codebook.csv, row 1, column 'role': role must be one of",
        ),
        ([("a", "victim", "text", "", "")], "codebook.csv, row 1, column 'type': type must be one of"),
        ([("a", "victim", "numeric", "1;2", "")], "codebook.csv, row 1, column 'levels': levels only apply"),
    ],
)
def test_codebook_errors(rows, message):
    with pytest.raises(DataError) as caught:
        codebook(*rows)
    assert str(caught.value).startswith(message)


def test_missing_codes_and_numeric_missing():
    cases = pd.DataFrame({"age": [10, -9, 12, "", 8, 9, 11]})
    codes = codebook(("age", "victim", "numeric", "", "-9"))
    row = summarize_cases(cases, codes).table.iloc[0]
    assert row["n_valid"] == 5 and row["n_missing"] == 2 and row["estimate"] == pytest.approx(10)
    few = summarize_cases(cases.head(4), codes).table.iloc[0]  # 2 valid values < 5: statistics suppressed
    assert few["suppressed"] and pd.isna(few["estimate"]) and pd.isna(few["n_valid"])


def test_cases_cli(run_cli, capsys, tmp_path):
    code, stdout, err = run_main(
        capsys,
        "cases",
        "summarize",
        str(EXAMPLES / "cases.csv"),
        "--codebook",
        str(EXAMPLES / "codebook.csv"),
        "--by",
        "source",
        "--crosstab",
        "trafficker_relationship:victim_sex",
        "--format",
        "json",
    )
    assert code == 0, err
    assert "synthetic note text" not in stdout and "C001" not in stdout
    payload = json.loads(stdout)
    roles = {row["role"] for row in payload["estimates"]}
    assert roles == {"case", "victim", "trafficker", "customer", "offending_process"}
    for rows in (payload["estimates"], payload["tables"]["crosstabs"]):
        assert not [r for r in rows if r["count"] is not None and 0 < r["count"] < 5]
    bad = pd.read_csv(EXAMPLES / "cases.csv", dtype=str)
    bad.loc[11, "victims"] = "several"
    bad.to_csv(tmp_path / "cases.csv", index=False)
    failed = run_cli("cases", "summarize", tmp_path / "cases.csv", "--codebook", EXAMPLES / "codebook.csv")
    assert failed.returncode == 2
    assert failed.stderr.strip() == (
        "error: cases.csv, row 12, column 'victims': value is not a number; fix it or declare its code in the "
        "codebook's missing column"
    )
    code, _, err = run_main(
        capsys,
        "cases",
        "summarize",
        str(EXAMPLES / "cases.csv"),
        "--codebook",
        str(EXAMPLES / "codebook.csv"),
        "--free-text",
        "refuse",
    )
    assert code == 2 and "free-text column(s) ['investigator_notes']" in err
    code, _, err = run_main(
        capsys,
        "cases",
        "summarize",
        str(EXAMPLES / "cases.csv"),
        "--codebook",
        str(EXAMPLES / "codebook.csv"),
        "--crosstab",
        "victims",
    )
    assert code == 2 and "--crosstab expects ROW:COLUMN" in err
    code, out, _ = run_main(
        capsys,
        "cases",
        "summarize",
        str(EXAMPLES / "cases.csv"),
        "--codebook",
        str(EXAMPLES / "codebook.csv"),
        "--threshold",
        "10",
        "--format",
        "csv",
    )
    assert code == 0
    published = pd.read_csv(__import__("io").StringIO(out))
    assert not pd.to_numeric(published["count"], errors="coerce").between(1, 9).any()
