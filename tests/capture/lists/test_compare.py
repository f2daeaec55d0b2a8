"""``capture mse --compare``: every model class on the same lists, one row each, the headline the one named
beforehand, classes that cannot be fitted reported rather than dropped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_commands import run_main
from hiddenpop import datasets
from hiddenpop.capture.lists import compare as compare_module
from hiddenpop.capture.lists.compare import compare_classes
from hiddenpop.capture.lists.graphs import graph_averaging
from hiddenpop.capture.lists.latent import latent_class
from hiddenpop.capture.lists.models import mse
from hiddenpop.errors import ConfigError, ModelError


def test_each_row_is_its_class_fitted_on_its_own():
    data = datasets.load("mse_UKdat_5")
    result = compare_classes(data, headline="bic", classes=("independence", "stepwise", "bic", "graphs"))
    table = result.table.set_index("model_class")
    stepwise = mse(data, "stepwise")
    bic = mse(data, "bic")
    assert table.loc["stepwise", "estimate"] == pytest.approx(stepwise.table["estimate"].iloc[0], rel=1e-12)
    assert table.loc["independence", "estimate"] == pytest.approx(stepwise.table["estimate"].iloc[1], rel=1e-12)
    assert table.loc["bic", "estimate"] == pytest.approx(bic.table["estimate"].iloc[0], rel=1e-12)
    lists = datasets.load("mse_UKdat_5").shape[1] - 1
    from hiddenpop.capture.lists.data import list_data

    cells = list_data(data)
    graphs = graph_averaging(cells.patterns, cells.counts, names=cells.names, delta=2.0 ** -lists)
    assert table.loc["graphs", "estimate"] == graphs.table["estimate"].iloc[1]  # the posterior median
    assert table["headline"].tolist() == [False, False, True, False]
    assert result.settings["delta"] == 2.0 ** -lists
    # the UK five lists: stepwise about 11,300, BIC and graph averaging about twice that (published spread)
    assert any("the classes disagree" in w for w in result.warnings)


def test_the_latent_class_sampled_beside_the_others_gives_the_numbers_of_a_fit_on_its_own():
    """--compare samples the latent class in a second thread while the log-linear classes are fitted: its row is
    exactly that of the latent-class fit alone at the same seed."""
    data = datasets.load("mse_Korea")
    result = compare_classes(data, headline="latent", classes=("aic", "latent"), draws=100, seed=4)
    alone = latent_class(data, draws=100, warmup=100, seed=4).table.iloc[0]
    row = result.table.set_index("model_class").loc["latent"]
    assert (row["estimate"], row["lower"], row["upper"]) == (alone["estimate"], alone["lower"], alone["upper"])
    assert result.table.set_index("model_class").loc["aic", "estimate"] == mse(data, "aic").table.iloc[0]["estimate"]


def test_a_class_that_cannot_be_fitted_is_a_row_with_its_reason(monkeypatch):
    def refuse(*args, **kwargs):
        raise ModelError("the posterior is zero everywhere on the grid")

    monkeypatch.setattr(compare_module, "graph_averaging", refuse)
    result = compare_classes(datasets.load("mse_UKdat"), headline="independence",
                             classes=("independence", "graphs"))
    graphs = result.table.set_index("model_class").loc["graphs"]
    assert np.isnan(graphs["estimate"])
    assert graphs["status"] == "not estimated: the posterior is zero everywhere on the grid"
    assert any(w.startswith("graphs: not estimated") for w in result.warnings)


def test_graph_averaging_beyond_five_lists_is_searched():
    # the UK data with six lists: graphs are found by MC^3 chains, which must agree
    result = compare_classes(datasets.load("mse_UKdat"), headline="independence",
                             classes=("independence", "graphs"))
    graphs = result.table.set_index("model_class").loc["graphs"]
    assert np.isfinite(graphs["estimate"]) and graphs["lower"] < graphs["estimate"] < graphs["upper"]
    assert "MC^3 search over" in graphs["diagnostic"]
    assert not any("chains disagree" in w for w in result.warnings)


def test_the_headline_must_be_named_among_the_classes_compared():
    with pytest.raises(ConfigError, match="headline"):
        compare_classes(datasets.load("mse_UKdat_5"), headline="latent", classes=("independence", "aic"))
    with pytest.raises(ConfigError, match="unknown model class"):
        compare_classes(datasets.load("mse_UKdat_5"), headline="aic", classes=("aic", "lasso"))


def test_compare_from_the_command_line_with_the_latent_class(capsys, tmp_path):
    source = tmp_path / "korea.csv"
    datasets.load("mse_Korea").to_csv(source, index=False)
    code, out, err = run_main(capsys, "capture", "mse", source, "--select", "aic", "--compare", "--headline",
                              "latent", "--draws", "200", "--format", "json", "--quiet")
    assert code == 0, err
    payload = json.loads(out)
    rows = {row["model_class"]: row for row in payload["estimates"]}
    assert set(rows) == {"independence", "stepwise", "aic", "bic", "latent", "graphs"}
    assert [name for name, row in rows.items() if row["headline"]] == ["latent"]
    latent = rows["latent"]
    assert latent["lower"] <= latent["estimate"] <= latent["upper"]
    assert latent["lower"] >= payload["diagnostics"]["observed"]


def test_the_latent_start_at_the_mode_reaches_the_sampler_from_the_command_line(capsys, tmp_path):
    """``--latent-start-at-mode`` gives the latent row of ``latent_class(..., start_at_mode=True)`` at the same
    seed, which is not the row of the default random start."""
    data = datasets.load("mse_Korea")
    source = tmp_path / "korea.csv"
    data.to_csv(source, index=False)
    code, out, err = run_main(capsys, "capture", "mse", source, "--select", "aic", "--compare", "--classes", "aic",
                              "--classes", "latent", "--headline", "latent", "--draws", "100", "--seed", "4",
                              "--latent-start-at-mode", "--format", "json", "--quiet")
    assert code == 0, err
    payload = json.loads(out)
    row = {r["model_class"]: r for r in payload["estimates"]}["latent"]
    assert payload["settings"]["latent_start_at_mode"] is True
    at_mode = latent_class(data, draws=100, warmup=100, seed=4, start_at_mode=True).table.iloc[0]
    at_random = latent_class(data, draws=100, warmup=100, seed=4).table.iloc[0]
    assert (row["estimate"], row["lower"], row["upper"]) == pytest.approx(
        (at_mode["estimate"], at_mode["lower"], at_mode["upper"]), rel=1e-12)
    assert (at_mode["estimate"], at_mode["lower"]) != (at_random["estimate"], at_random["lower"])
