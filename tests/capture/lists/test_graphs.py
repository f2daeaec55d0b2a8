"""Decomposable-graph model averaging (Madigan & York 1997): dga's deterministic examples, graph counts, checks."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.graphs import decomposable_graphs, graph_averaging
from hiddenpop.errors import ConfigError
from refdata import CAPTURE_DATA

# Madigan & York (1997)'s examples as the R package dga ships them: cells in dga's order (list j is bit j - 1 of
# the cell index, the all-absent cell first), with the posterior summaries dga's bma.cr gives over N0 = 1..300.
FIVE_LISTS = [0, 27, 37, 19, 4, 4, 1, 1, 97, 22, 37, 25, 2, 1, 3, 5, 83, 36, 34, 18, 3, 5, 0, 2, 30, 5, 23, 8, 0, 3,
              0, 2]
THREE_LISTS = [0, 60, 49, 4, 247, 112, 142, 12]


def _cells(values: list[int], lists: int) -> tuple[np.ndarray, np.ndarray]:
    index = np.arange(len(values))
    patterns = (index[:, None] >> np.arange(lists)) & 1
    return patterns[1:], np.asarray(values[1:], dtype=float)


def _summary(result) -> dict[str, float]:
    table = result.table.set_index("method")
    return {
        "mean": table.loc["graph averaging (posterior mean)", "estimate"],
        "median": table.loc["graph averaging (posterior median)", "estimate"],
        "mode": table.loc["graph averaging (posterior mode)", "estimate"],
        "lower": table["lower"].iloc[0],
        "upper": table["upper"].iloc[0],
    }


@pytest.mark.parametrize(
    ("values", "lists", "delta", "expected"),
    [
        (FIVE_LISTS, 5, 0.5, {"mean": 617.82, "median": 616, "mode": 614, "lower": 588, "upper": 655}),
        (THREE_LISTS, 3, 1.0, {"mean": 733.72, "median": 732, "mode": 728, "lower": 682, "upper": 798}),
    ],
)
def test_reproduces_dga_on_madigan_and_york_examples(values, lists, delta, expected):
    patterns, counts = _cells(values, lists)
    got = _summary(graph_averaging(patterns, counts, delta=delta, missing=np.arange(1, 301)))
    assert got["mean"] == pytest.approx(expected["mean"], abs=0.01)
    for key in ("median", "mode", "lower", "upper"):
        assert got[key] == expected[key], key


def test_every_decomposable_graph_is_enumerated_once():
    # labelled chordal graphs on 2..5 vertices (OEIS A058862)
    assert [len(decomposable_graphs(t)) for t in (2, 3, 4, 5)] == [2, 8, 61, 822]
    five = decomposable_graphs(5)
    assert len({g.edges for g in five}) == 822
    four_cycle = ((0, 1), (0, 2), (1, 3), (2, 3))
    assert four_cycle not in {g.edges for g in decomposable_graphs(4)}  # a chordless 4-cycle is not decomposable
    path = next(g for g in decomposable_graphs(3) if g.edges == ((0, 1), (1, 2)))
    assert path.cliques == ((0, 1), (1, 2)) and path.separators == ((1,),)


def test_the_order_of_the_cells_does_not_change_the_posterior():
    patterns, counts = _cells(THREE_LISTS, 3)
    shuffled = np.random.default_rng(1).permutation(len(counts))
    first = graph_averaging(patterns, counts, delta=1.0, missing=np.arange(1, 301))
    second = graph_averaging(patterns[shuffled], counts[shuffled], delta=1.0, missing=np.arange(1, 301))
    assert np.allclose(first.tables["posterior"]["probability"], second.tables["posterior"]["probability"])


def test_top_graphs_and_posterior_are_probabilities():
    patterns, counts = _cells(FIVE_LISTS, 5)
    result = graph_averaging(patterns, counts, delta=0.5, missing=np.arange(1, 301), top=5)
    assert result.tables["posterior"]["probability"].sum() == pytest.approx(1.0)
    graphs = result.tables["graphs"]
    assert len(graphs) == 5 and (np.diff(graphs["posterior"]) <= 0).all()
    assert result.warnings == []


def test_a_grid_that_cuts_the_posterior_is_flagged():
    patterns, counts = _cells(FIVE_LISTS, 5)
    result = graph_averaging(patterns, counts, delta=0.5, missing=np.arange(1, 40))
    assert any("extend the grid" in w for w in result.warnings)


def test_works_on_list_data_read_from_a_file():
    data = list_data(CAPTURE_DATA / "mse_Korea.csv")
    result = graph_averaging(data.patterns, data.counts, names=data.names, delta=0.5)
    mean = result.estimate("abundance", "graph averaging (posterior mean)")
    assert data.counts.sum() < mean < 10 * data.counts.sum()


@pytest.mark.parametrize("kwargs", [{"delta": 0}, {"missing": [3, 2, 1]}, {"missing": [-1, 0]}])
def test_bad_settings_are_refused(kwargs):
    patterns, counts = _cells(THREE_LISTS, 3)
    with pytest.raises(ConfigError):
        graph_averaging(patterns, counts, **kwargs)


def test_more_lists_than_can_be_enumerated_are_refused():
    with pytest.raises(ConfigError, match="2 to 5"):
        decomposable_graphs(6)


def _six_lists(seed: int = 3, population: int = 600):
    """Six lists, two dependent pairs (A-B, C-D), the others independent; the observed histories and counts."""
    rng = np.random.default_rng(seed)
    x = (rng.random((population, 6)) < np.array([0.3, 0.25, 0.2, 0.3, 0.15, 0.25])).astype(int)
    for first, second, share in ((0, 1, 0.15), (2, 3, 0.2)):
        tied = rng.random(population) < share
        x[tied, second] = x[tied, first]
    counts = np.bincount(x @ (1 << np.arange(6)), minlength=64)
    patterns = (np.arange(64)[:, None] >> np.arange(6)) & 1
    keep = (np.arange(64) > 0) & (counts > 0)
    return patterns[keep], counts[keep]


def test_the_graph_search_finds_what_enumeration_finds_on_five_lists():
    patterns, counts = _cells(FIVE_LISTS, 5)
    grid = np.arange(1, 301)
    every = graph_averaging(patterns, counts, delta=0.5, missing=grid, search="exhaustive")
    searched = graph_averaging(patterns, counts, delta=0.5, missing=grid, search="mcmc", steps=4000, seed=5)
    assert searched.settings["search"] == "mcmc" and not searched.warnings
    assert _summary(searched)["mean"] == pytest.approx(_summary(every)["mean"], rel=1e-4)
    top = every.tables["graphs"].head(3)
    assert searched.tables["graphs"]["graph"].head(3).tolist() == top["graph"].tolist()
    assert np.allclose(searched.tables["graphs"]["posterior"].head(3), top["posterior"], rtol=1e-3)


def test_the_graph_search_on_six_lists_matches_every_graph_enumerated(monkeypatch):
    # 18,154 decomposable graphs on six lists (OEIS A058862), enumerated here only to check the search
    patterns, counts = _six_lists()
    grid = np.arange(0, 1200, 4)
    searched = graph_averaging(patterns, counts, delta=2.0**-6, missing=grid, seed=2)
    assert searched.settings["search"] == "mcmc"  # chosen for more than five lists
    graphs_module = importlib.import_module("hiddenpop.capture.lists.graphs")
    every_graph = graphs_module.decomposable_graphs(6, limit=6)
    assert len(every_graph) == 18_154
    monkeypatch.setattr(graphs_module, "decomposable_graphs", lambda lists: every_graph)
    every = graph_averaging(patterns, counts, delta=2.0**-6, missing=grid, search="exhaustive")
    assert _summary(searched)["mean"] == pytest.approx(_summary(every)["mean"], rel=1e-3)
    for key in ("median", "lower", "upper"):
        assert _summary(searched)[key] == _summary(every)[key], key
    # the dependent pairs are found: the top graph joins A with B or C with D
    assert searched.tables["graphs"]["graph"].iloc[0] == every.tables["graphs"]["graph"].iloc[0]
    assert "C:D" in searched.tables["graphs"]["graph"].iloc[0]


def test_the_graph_search_is_seeded_and_says_when_it_is_too_short():
    patterns, counts = _six_lists(seed=4)
    grid = np.arange(0, 1200, 4)
    first = graph_averaging(patterns, counts, missing=grid, seed=7)
    again = graph_averaging(patterns, counts, missing=grid, seed=7)
    assert first.table.equals(again.table) and first.diagnostics == again.diagnostics
    short = graph_averaging(patterns, counts, missing=grid, seed=7, steps=5)
    assert any("run longer chains" in w for w in short.warnings)
    assert short.diagnostics["graphs_visited"] < first.diagnostics["graphs_visited"]


def test_an_average_carried_by_the_complete_graph_is_flagged():
    """Two classes of catchability (20% caught by each of three lists with probability 0.5, 80% with 0.02): the
    expected counts show strong positive dependence among all three lists, the complete graph takes the posterior,
    and under it the unseen count comes from the prior (delta < 1 piles it at zero): flagged. The Madigan & York
    example (test above) is not."""
    shares, catch = np.array([0.2, 0.8]), np.array([0.5, 0.02])
    patterns, _ = _cells([0] * 8, 3)
    on = patterns.sum(axis=1)
    counts = np.round(100_000 * (shares * catch ** on[:, None] * (1 - catch) ** (3 - on[:, None])).sum(axis=1))
    result = graph_averaging(patterns, counts, delta=2.0**-3)
    assert result.tables["graphs"]["graph"].iloc[0] == "A:B:C"
    assert any(w.startswith("the complete graph (every list depending on every other) carries") for w in result.warnings)
    median = _summary(result)["median"]
    assert median - counts.sum() < 0.01 * counts.sum()
