"""Area table contract: validation messages, imputation policy, streams, neighbours."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiddenpop.errors import ConfigError, DataError
from hiddenpop.smallarea.areas import AreaTable, read_areas


def _frame(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    target = rng.uniform(0.001, 0.02, n)
    target[n // 2:] = np.nan
    return pd.DataFrame({
        "id": [f"M{i:03d}" for i in range(n)],
        "label": [f"Town {i}" for i in range(n)],
        "region": np.repeat(["A", "B", "C"], n // 3),
        "pop": rng.integers(1000, 50000, n),
        "rate": target,
        "rate_se": np.where(np.isnan(target), np.nan, target * 0.2),
        "poverty": rng.normal(20, 5, n),
        "lights": rng.normal(5, 2, n),
        "towers": rng.normal(3, 1, n),
    })


def _table(frame, **kwargs):
    options = {"id": "id", "target": "rate", "target_se": "rate_se", "population": "pop", "region": "region",
               "name": "label"}
    options.update(kwargs)
    return AreaTable.from_frame(frame, **options)


def test_roles_and_default_streams():
    table = _table(_frame())
    assert table.covariates == ["poverty", "lights", "towers"]
    assert table.streams == {"poverty": ["poverty"], "lights": ["lights"], "towers": ["towers"]}
    assert table.surveyed.sum() == 15
    assert np.allclose(table.x().mean(axis=0), 0)


def test_duplicate_id_names_both_rows():
    frame = _frame()
    frame.loc[7, "id"] = frame.loc[2, "id"]
    with pytest.raises(DataError, match=r"row 8, column 'id': duplicate area id \(same as row 3\)"):
        _table(frame)


def test_missing_id():
    frame = _frame()
    frame.loc[4, "id"] = None
    with pytest.raises(DataError, match=r"row 5, column 'id': area id is missing"):
        _table(frame)


def test_target_outside_unit_interval():
    frame = _frame()
    frame.loc[1, "rate"] = 3.0
    with pytest.raises(DataError, match=r"row 2, column 'rate': target rate outside \[0, 1\]"):
        _table(frame)


def test_se_required_with_target():
    frame = _frame()
    frame.loc[0, "rate_se"] = np.nan
    with pytest.raises(DataError, match=r"row 1, column 'rate_se'.*give both or neither"):
        _table(frame)


def test_non_numeric_covariate_cell_under_streams():
    frame = _frame()
    frame["poverty"] = frame["poverty"].astype(object)
    frame.loc[9, "poverty"] = "n/a?"
    with pytest.raises(DataError, match=r"row 10, column 'poverty'"):
        _table(frame, streams={"welfare": ["poverty"], "light": ["lights"]})


def test_imputation_is_reported():
    frame = _frame()
    frame.loc[[3, 4, 20], "lights"] = np.nan
    table = _table(frame)
    assert table.imputed_cells == {"lights": 3}
    assert any("imputed 3 missing covariate value(s) by median" in note for note in table.notes)
    assert table.frame["lights"].notna().all()
    assert table.frame.loc[3, "lights"] == pytest.approx(frame["lights"].median())
    regional = _table(frame, impute="region-median")
    expected = frame[frame["region"] == frame.loc[3, "region"]]["lights"].median()
    assert regional.frame.loc[3, "lights"] == pytest.approx(expected)
    with pytest.raises(DataError, match=r"row 4, column 'lights': covariate is missing"):
        _table(frame, impute="error")


def test_constant_and_text_columns_are_reported():
    frame = _frame()
    frame["flat"] = 1.0
    frame["comment"] = "free text"
    table = _table(frame)
    assert "flat" not in table.covariates and "comment" not in table.covariates
    assert any("constant covariate" in n for n in table.notes)
    assert any("non-numeric column" in n for n in table.notes)


def test_streams_file(tmp_path):
    frame = _frame()
    path = tmp_path / "areas.csv"
    frame.to_csv(path, index=False)
    streams = tmp_path / "streams.toml"
    streams.write_text('[streams]\nwelfare = ["poverty"]\nlight = ["lights", "towers"]\n')
    table = read_areas(path, id="id", target="rate", streams=streams)
    assert table.streams == {"welfare": ["poverty"], "light": ["lights", "towers"]}
    streams.write_text('welfare = ["poverty", "povrty"]\n')
    with pytest.raises(ConfigError, match=r"streams.toml: stream 'welfare' names column 'povrty'"):
        read_areas(path, id="id", target="rate", streams=streams)
    streams.write_text('a = ["poverty"]\nb = ["poverty"]\n')
    with pytest.raises(ConfigError, match="each covariate belongs to one stream"):
        read_areas(path, id="id", target="rate", streams=streams)
    streams.write_text('a = ["rate"]\n')
    with pytest.raises(ConfigError, match="cannot also be the id/target/population"):
        read_areas(path, id="id", target="rate", streams=streams)


def test_adjacency_validation(tmp_path):
    frame = _frame()
    pairs = pd.DataFrame({"a": ["M000", "M001", "M002"], "b": ["M001", "M002", "M999"]})
    with pytest.raises(DataError, match=r"adjacency, row 3, column 'b': area id is not in the area table"):
        _table(frame, adjacency=pairs)
    pairs = pd.DataFrame({"a": ["M000", "M001"], "b": ["M001", "M001"]})
    with pytest.raises(DataError, match=r"row 2: an area is listed as its own neighbour"):
        _table(frame, adjacency=pairs)
    table = _table(frame, adjacency=pd.DataFrame({"a": ["M000", "M001", "M001"], "b": ["M001", "M000", "M002"]}))
    assert table.neighbours.tolist() == [[0, 1], [1, 2]]  # duplicates and both directions collapse
    assert any("no neighbour" in n for n in table.notes)


def test_neighbours_from_geometry(tmp_path):
    frame = _frame(6).head(4).assign(rate=[0.01, 0.02, np.nan, np.nan], rate_se=[0.002, 0.002, np.nan, np.nan])
    frame["region"] = "A"

    def square(area, x, y):
        ring = [[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]
        return {"type": "Feature", "properties": {"code": area}, "geometry": {"type": "Polygon", "coordinates": [ring]}}

    # M000 M001 in the bottom row, M002 above M000, M003 far away
    geometry = {"type": "FeatureCollection", "features": [square("M000", 0, 0), square("M001", 1, 0),
                                                          square("M002", 0, 1), square("M003", 5, 5)]}
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(geometry))
    frame.to_csv(tmp_path / "areas.csv", index=False)
    with pytest.raises(DataError, match=r"at least 10 surveyed"):
        read_areas(tmp_path / "areas.csv", id="id", target="rate", geometry=path, geometry_key="code")
    table = read_areas(tmp_path / "areas.csv", id="id", geometry=path, geometry_key="code")
    assert table.neighbours.tolist() == [[0, 1], [0, 2], [1, 2]]  # queen contiguity: 1 and 2 share a corner
    with pytest.raises(DataError, match="property 'id'"):
        read_areas(tmp_path / "areas.csv", id="id", geometry=path)
