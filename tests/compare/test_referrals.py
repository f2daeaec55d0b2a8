"""Reading referral and base tables: both shapes, counting once per report, and one clear error per bad cell
that names file, row and column but never the cell."""

from __future__ import annotations

import pandas as pd
import pytest

from hiddenpop.compare.referrals import MAX_COUNT, read_bases, read_referrals
from hiddenpop.errors import DataError


def counts_frame(rows, columns=("agency", "country", "year", "count")):
    return pd.DataFrame([[str(v) for v in row] for row in rows], columns=list(columns))


def test_counts_are_added_over_periods_and_agencies():
    frame = counts_frame([("NCA", "PHL", 2016, 40), ("NCA", "PHL", 2017, 55), ("FBI", "PHL", 2017, 30),
                          ("FBI", "tha", 2017, 4), ("NCA", "TH", 2017, 6)])
    data = read_referrals(frame, agency="agency", period="year", source="r.csv")
    assert data.by_country().to_dict() == {"PHL": 125, "THA": 10}
    assert data.total() == 135 and not data.per_report
    # agencies are published as agency 1, 2 in alphabetical order of their names, never by name
    assert data.agencies == ("agency 1", "agency 2")
    assert data.by_agency().to_dict() == {"agency 1": 34, "agency 2": 101}
    assert "NCA" not in data.rows.to_csv() and "FBI" not in data.rows.to_csv()
    listed = read_referrals(frame, agency="agency", agencies=("NCA", "FBI"), period="year")
    assert listed.agencies == ("NCA", "FBI") and listed.by_agency().to_dict() == {"FBI": 34, "NCA": 101}


def test_a_report_counts_once_per_country_and_region():
    frame = pd.DataFrame({"report": ["r1", "r1", "r1", "r2", "r2", "r3", "r3"],
                          "country": ["USA", "CAN", "PHL", "USA", "GBR", "PHL", "PHL"]})
    data = read_referrals(frame, id="report")
    assert data.per_report and data.total() == 3
    assert data.by_country().to_dict() == {"CAN": 1, "GBR": 1, "PHL": 2, "USA": 2}
    # r1 went to two countries of the Americas: once there
    assert data.by_region("region").to_dict() == {"Americas": 2, "Asia": 2, "Europe": 1}
    assert any("repeat a report" in note for note in data.notes)  # r3 listed twice for PHL
    assert "r1" not in data.rows.to_csv()


@pytest.mark.parametrize(("value", "message"), [
    ("-3", "count is negative"), ("2.5", "expected a whole number"), ("1,200", "expected a whole number"),
    ("", "count is missing"), ("nan", "expected a whole number"), ("inf", "expected a whole number"),
    ("1e3", "expected a whole number"), (str(MAX_COUNT + 1), "count too large"), ("12abc", "expected a whole"),
])
def test_bad_counts_name_the_row_and_column(value, message):
    frame = counts_frame([("A", "PHL", 2017, 4), ("A", "USA", 2017, value)])
    with pytest.raises(DataError, match=rf"r\.csv, row 2, column 'count': {message}") as error:
        read_referrals(frame, agency="agency", period="year", source="r.csv")
    if len(value) > 3:
        assert value not in str(error.value)


def test_whole_numbers_written_with_a_zero_fraction_are_whole():
    frame = counts_frame([("A", "PHL", 2017, "12.0"), ("A", "USA", 2017, "+3")])
    assert read_referrals(frame, agency="agency", period="year").by_country().to_dict() == {"PHL": 12, "USA": 3}


def test_unknown_and_missing_countries_are_refused_without_echo():
    frame = counts_frame([("A", "PHL", 2017, 4), ("A", "jane@example.org", 2017, 3)])
    with pytest.raises(DataError, match=r"row 2, column 'country': not an ISO 3166-1") as error:
        read_referrals(frame, source="r.csv")
    assert "jane" not in str(error.value)
    frame = counts_frame([("A", "", 2017, 4)])
    with pytest.raises(DataError, match=r"row 1, column 'country': country is missing"):
        read_referrals(frame)


def test_a_repeated_row_is_an_error_not_a_sum():
    frame = counts_frame([("A", "PHL", 2017, 4), ("B", "PHL", 2017, 3), ("A", "PH", 2017, 9)])
    with pytest.raises(DataError, match=r"r\.csv, row 3: repeats the agency, country and period of row 1"):
        read_referrals(frame, agency="agency", period="year", source="r.csv")
    # without the period column the two years of one agency collide too
    frame = counts_frame([("A", "PHL", 2016, 4), ("A", "PHL", 2017, 3)])
    with pytest.raises(DataError, match="row 2: repeats"):
        read_referrals(frame, agency="agency")


def test_missing_columns_agencies_and_ids():
    frame = counts_frame([("A", "PHL", 2017, 4)])
    with pytest.raises(DataError, match=r"column 'referrals': column not found .*--count"):
        read_referrals(frame, count="referrals")
    with pytest.raises(DataError, match="row 1, column 'agency': agency is not one of the names listed"):
        read_referrals(frame, agency="agency", agencies=("B",))
    with pytest.raises(DataError, match="no agency column is named"):
        read_referrals(frame, agencies=("A",))
    with pytest.raises(DataError, match="no data rows"):
        read_referrals(frame.iloc[0:0], source="r.csv")
    with pytest.raises(DataError, match="named by two options"):
        read_referrals(frame, country="country", agency="country")
    ids = pd.DataFrame({"report": ["r1", ""], "country": ["PHL", "USA"]})
    with pytest.raises(DataError, match="row 2, column 'report': report id is missing"):
        read_referrals(ids, id="report")


def test_bases():
    frame = pd.DataFrame({"country": ["PHL", "th"], "base": ["40000000", "1.4e7"]})
    assert read_bases(frame).to_dict() == {"PHL": 40e6, "THA": 14e6}
    for bad, message in [("0", "positive"), ("-5", "positive"), ("inf", "positive"), ("4,000", "expected a number"),
                         ("", "expected a number")]:
        with pytest.raises(DataError, match=rf"b\.csv, row 2, column 'base': .*{message}"):
            read_bases(pd.DataFrame({"country": ["PHL", "THA"], "base": ["1", bad]}), source="b.csv")
    with pytest.raises(DataError, match="row 2, column 'country': gives a second base for the country of row 1"):
        read_bases(pd.DataFrame({"country": ["PHL", "PH"], "base": ["1", "2"]}))
    with pytest.raises(DataError, match="column 'base': column not found"):
        read_bases(pd.DataFrame({"country": ["PHL"], "population": ["1"]}))
