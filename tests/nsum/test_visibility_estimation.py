"""Visibility factors estimated from data: the game of contacts (tau, delta) and known-group calibration (delta).

Checked three ways: reference numbers (the RDS-II ratio formula networkreporting uses, recomputed here with plain
numpy on the bundled Curitiba file, and the published Curitiba tau), closed forms (hand-computable tables and
recruitment trees) and simulations with known truth (bias and coverage, fixed seeds).
"""

from __future__ import annotations

import json
import math
import tomllib

import numpy as np
import pandas as pd
import pytest

from hiddenpop import datasets
from hiddenpop.data.ard import ARD
from hiddenpop.errors import ConfigError, DataError, ModelError
from hiddenpop.nsum.adjust import Adjustments, Beta, LogNormal, check_factor, parse_distribution
from hiddenpop.nsum.visibility import (
    beta_from_moments,
    degree_ratio_from_known,
    game_of_contacts,
    read_game_of_contacts,
    tree_bootstrap_counts,
)

ISSUED = ("out.coupon1", "out.coupon2", "out.coupon3")


@pytest.fixture(scope="module")
def goc() -> pd.DataFrame:
    return pd.read_csv(datasets.path("networkreporting_scratch_goc_survey"))


def _read(frame, aware="total.aware", alters="total.alters", degree="netsize.1.bss", **kw):
    return read_game_of_contacts(frame, aware=aware, alters=alters, degree=degree, coupon="in.coupon",
                                 issued=ISSUED, source="goc.csv", **kw)


# ------------------------------------------------------------------------------------------------ reference numbers
def test_tau_is_networkreporting_rds_ii_ratio_on_curitiba(goc):
    # Reference: networkreporting's draft RDS vignette (dfeehan/networkreporting vignettes/draft/_rds.Rmd @ 4793aa9)
    # estimates visibility as rdsII.estimator(y = total.aware) / rdsII.estimator(y = total.alters), and
    # rdsII.estimator (R/rds.r) is sum(y / d) / sum(1 / d): a ratio of RDS-II means with weights 1/d. Here d is
    # netsize.1.bss (the broadest network-size question; every value > 0). Recomputed with plain numpy on the CSV:
    d = goc["netsize.1.bss"].to_numpy(float)
    a, t = goc["total.aware"].to_numpy(float), goc["total.alters"].to_numpy(float)
    expected = (np.sum(a / d) / np.sum(1 / d)) / (np.sum(t / d) / np.sum(1 / d))
    assert expected == pytest.approx(0.7527951080014733, rel=1e-12)  # the same formula, printed once by hand
    result = game_of_contacts(_read(goc), replicates=200, seed=3)
    row = result.table.set_index("quantity").loc["transmission_rate"]
    assert row["estimate"] == pytest.approx(expected, rel=1e-12)
    # RDS-II mean degree: n / sum(1/d), the harmonic mean of the network sizes
    mean_degree = result.table.set_index("quantity").loc["hidden_mean_degree", "estimate"]
    assert mean_degree == pytest.approx(len(d) / np.sum(1 / d), rel=1e-12)
    # unweighted (equal weights): the ratio of the column sums
    equal = game_of_contacts(_read(goc), weighting="equal", resample="respondent", replicates=50, seed=3)
    assert equal.table.loc[0, "estimate"] == pytest.approx(a.sum() / t.sum(), rel=1e-12)


def test_published_curitiba_tau_is_reproduced_by_the_non_user_alters(goc):
    # Published figure: Salganik et al. (2011, Social Networks 33:70-78) report a visibility of heavy drug users in
    # Curitiba of about 0.55; the NSUM package's Curitiba simulation parameters (cran/NSUM data/Curitiba.RData,
    # bundled as nsum_curitiba_params) use tauK = 0.542 for heavy.drug.user. The paper's table could not be read
    # here (paywalled), so which columns it used is inferred: the RDS-II ratio over alters who are NOT drug users
    # (total.aware.not.use / total.not.use, netsize.1.bss) gives 0.560, within 0.02 of 0.542; the ratio over all
    # alters gives 0.753, over drug-using alters 0.907.
    params = pd.read_csv(datasets.path("nsum_curitiba_params")).set_index("group")
    published = float(params.loc["heavy.drug.user", "tauK"])
    assert published == pytest.approx(0.542)
    result = game_of_contacts(_read(goc, aware="total.aware.not.use", alters="total.not.use"), replicates=400,
                              seed=5)
    row = result.table.set_index("quantity").loc["transmission_rate"]
    assert abs(row["estimate"] - published) < 0.02
    assert row["lower"] < published < row["upper"]
    d = goc["netsize.1.bss"].to_numpy(float)
    expected = np.sum(goc["total.aware.not.use"] / d) / np.sum(goc["total.not.use"] / d)
    assert row["estimate"] == pytest.approx(expected, rel=1e-12)


def test_curitiba_declarations_paste_into_a_study_file(goc):
    result = game_of_contacts(_read(goc), replicates=300, seed=2, frame_degree=250.0, frame_degree_se=10.0,
                              name="hdu")
    tables = tomllib.loads(result.diagnostics["declaration"])["visibility"]
    assert set(tables) == {"hdu_tau", "hdu_delta"}
    objects = {d.name: d for d in result.extras["declared"]}
    for name, table in tables.items():
        distribution = check_factor(table["factor"], parse_distribution(table["distribution"]))
        assert distribution == objects[name].distribution  # the text and the object are one distribution
    Adjustments(declared=list(objects.values()))  # the two factors declare together
    tau = result.table.set_index("quantity").loc["transmission_rate"]
    beta = objects["hdu_tau"].distribution
    assert isinstance(beta, Beta)
    assert beta.mean == pytest.approx(tau["estimate"], rel=1e-3)
    assert beta.sd == pytest.approx(tau["se"], rel=1e-3)
    delta = result.table.set_index("quantity").loc["degree_ratio"]
    lognormal = objects["hdu_delta"].distribution
    assert isinstance(lognormal, LogNormal)
    assert delta["estimate"] == pytest.approx(len(goc) / np.sum(1 / goc["netsize.1.bss"]) / 250.0, rel=1e-12)
    assert lognormal.median == pytest.approx(delta["estimate"], rel=1e-3)
    # the tree bootstrap respects the recruitment chains: wider than treating respondents as independent
    naive = game_of_contacts(_read(goc), resample="respondent", replicates=300, seed=2)
    assert tau["se"] > naive.table.loc[0, "se"]


def test_same_seed_same_numbers(goc):
    first = game_of_contacts(_read(goc), replicates=100, seed=9).to_dict()
    second = game_of_contacts(_read(goc), replicates=100, seed=9).to_dict()
    assert first["estimates"] == second["estimates"]


# ------------------------------------------------------------------------------------------------ closed forms
def test_hand_computed_table():
    frame = pd.DataFrame({"aware": [1, 3, 0, 2], "alters": [2, 4, 1, 2], "size": [10, 20, 5, 40],
                          "coupon": [1, 2, 3, 4], "out1": [2, 3, np.nan, np.nan], "out2": [4, np.nan, np.nan, np.nan]})
    data = read_game_of_contacts(frame, aware="aware", alters="alters", degree="size", coupon="coupon",
                                 issued=["out1", "out2"])
    assert data.parent.tolist() == [-1, 0, 1, 0]
    w = 1 / np.array([10, 20, 5, 40])
    expected = np.sum(w * [1, 3, 0, 2]) / np.sum(w * [2, 4, 1, 2])
    result = game_of_contacts(data, replicates=50, seed=1, frame_degree=20.0)
    rows = result.table.set_index("quantity")
    assert rows.loc["transmission_rate", "estimate"] == pytest.approx(expected, rel=1e-14)
    assert rows.loc["hidden_mean_degree", "estimate"] == pytest.approx(4 / np.sum(w), rel=1e-14)
    assert rows.loc["degree_ratio", "estimate"] == pytest.approx(4 / np.sum(w) / 20.0, rel=1e-14)


def test_tree_bootstrap_closed_forms():
    rng = np.random.default_rng(0)
    # a single chain (every node has exactly one recruit): every replicate is the sample itself
    chain = np.array([-1, 0, 1, 2])
    assert (tree_bootstrap_counts(chain, 20, rng) == 1).all()
    # only seeds: the tree bootstrap is the respondent bootstrap, multinomial(n, 1/n)
    seeds = np.full(5, -1)
    counts = tree_bootstrap_counts(seeds, 4000, rng)
    assert (counts.sum(axis=1) == 5).all()
    assert counts.mean(axis=0) == pytest.approx(np.ones(5), abs=0.05)
    assert counts.var(axis=0) == pytest.approx(np.full(5, 5 * 0.2 * 0.8), abs=0.06)
    # one seed with two recruits: the seed always appears once; its two recruits are drawn with replacement
    star = np.array([-1, 0, 0])
    counts = tree_bootstrap_counts(star, 4000, rng)
    assert (counts[:, 0] == 1).all() and (counts[:, 1:].sum(axis=1) == 2).all()
    assert np.mean(counts[:, 1] == 2) == pytest.approx(0.25, abs=0.03)


def test_beta_moment_fit_closed_form():
    beta = beta_from_moments(0.6, 0.1)  # a + b = 0.24 / 0.01 - 1 = 23
    assert (beta.a, beta.b) == (13.8, 9.2)
    with pytest.raises(ModelError):
        beta_from_moments(1.0, 0.0)
    with pytest.raises(ModelError):
        beta_from_moments(0.5, 0.6)


def test_everyone_aware_gives_tau_one_and_no_beta():
    frame = pd.DataFrame({"aware": [2, 3, 1], "alters": [2, 3, 1]})
    result = game_of_contacts(read_game_of_contacts(frame, aware="aware", alters="alters"), weighting="equal",
                              resample="respondent", replicates=20)
    assert result.table.loc[0, "estimate"] == 1.0
    assert result.extras["declared"] == []
    assert any("no Beta declaration" in w for w in result.warnings)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["total.aware"]), "column 'total.aware': column not found"),
    (lambda f: f.assign(**{"total.aware": f["total.aware"].where(f.index != 6, -1)}), "row 7, column 'total.aware'"),
    (lambda f: f.assign(**{"total.aware": f["total.aware"].where(f.index != 4, 500)}),
     "row 5, column 'total.aware': more aware alters than alters"),
    (lambda f: f.assign(**{"total.alters": f["total.alters"].where(f.index != 2, 2.5)}),
     "row 3, column 'total.alters'"),
    (lambda f: f.assign(**{"total.alters": f["total.alters"].where(f.index != 8, np.nan)}),
     "row 9, column 'total.alters': the count of alters is empty"),
    (lambda f: f.assign(**{"in.coupon": f["in.coupon"].where(f.index != 3, f.loc[0, "in.coupon"])}),
     "row 4, column 'in.coupon': coupon number repeats that of row 1"),
])
def test_bad_input_names_file_row_and_column(goc, change, message):
    with pytest.raises((DataError, ConfigError)) as caught:
        _read(change(goc.copy()))
    assert message in str(caught.value) and "goc.csv" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_rds_weights_refuse_a_zero_network_size(goc):
    data = _read(goc, degree="netsize.5.bss")  # four respondents answered 0
    with pytest.raises(DataError, match=r"goc.csv, row \d+, column 'netsize.5.bss': the network size is 0"):
        game_of_contacts(data, replicates=10)


def test_weights_and_text_are_never_used_silently(goc):
    data = _read(goc.assign(w=1.0), weights="w")
    with pytest.raises(ConfigError, match="--weighting column"):
        game_of_contacts(data, replicates=10)
    weighted = game_of_contacts(data, weighting="column", replicates=10)
    assert weighted.table.loc[0, "estimate"] == pytest.approx(goc["total.aware"].sum() / goc["total.alters"].sum())
    with pytest.raises(DataError, match=r"column 'total\.aware': the count of aware alters holds true/false"):
        _read(goc.assign(**{"total.aware": goc["total.aware"] > 5}))
    text = goc.astype({"total.alters": str})
    text.loc[2, "total.alters"] = "many"
    with pytest.raises(DataError, match=r"row 3, column 'total\.alters': the count of alters is not a number"):
        _read(text)


def test_tree_bootstrap_needs_coupons_and_delta_needs_degrees(goc):
    data = read_game_of_contacts(goc, aware="total.aware", alters="total.alters", degree="netsize.1.bss")
    with pytest.raises(ConfigError, match="--resample respondent"):
        game_of_contacts(data, replicates=10)
    data = read_game_of_contacts(goc, aware="total.aware", alters="total.alters")
    with pytest.raises(ConfigError, match="add --degree COL"):
        game_of_contacts(data, resample="respondent", weighting="equal", replicates=10, frame_degree=200.0)


# ------------------------------------------------------------------------------------------------ simulations
def test_game_of_contacts_simulation_bias_and_coverage():
    """Hidden population of 20,000 with known tau and mean degree; samples drawn with probability proportional to
    degree (the RDS-II assumption), independent respondents; 150 samples of 300, 200 bootstrap replicates each."""
    rng = np.random.default_rng(20260701)
    members = 20_000
    degree = np.round(np.exp(rng.normal(np.log(40), 0.8, members))) + 1
    # visibility falls with degree: the well-connected are known to more people as members, but to a smaller share
    p_aware = 1 / (1 + np.exp(-(1.2 - 0.4 * (np.log(degree) - np.log(40)))))
    listed = rng.poisson(0.2 * degree)  # the game lists a fixed share of each member's alters
    aware = rng.binomial(listed, p_aware)
    # the finite population's tau: its aware ties over its ties (sum d p / sum d up to the game's own alter draws)
    true_tau = float(aware.sum() / listed.sum())
    assert true_tau == pytest.approx(np.sum(degree * p_aware) / np.sum(degree), abs=0.005)
    true_degree_ratio = float(degree.mean()) / 60.0
    estimates, covered_tau, covered_delta, ses = [], 0, 0, []
    replications = 150
    for r in range(replications):
        sample = rng.choice(members, size=300, replace=True, p=degree / degree.sum())
        data = read_game_of_contacts(pd.DataFrame({"a": aware[sample], "t": listed[sample], "d": degree[sample]}),
                                     aware="a", alters="t", degree="d")
        result = game_of_contacts(data, resample="respondent", replicates=200, seed=r, level=0.9,
                                  frame_degree=60.0).table.set_index("quantity")
        tau = result.loc["transmission_rate"]
        delta = result.loc["degree_ratio"]
        estimates.append(tau["estimate"])
        ses.append(tau["se"])
        covered_tau += tau["lower"] <= true_tau <= tau["upper"]
        covered_delta += delta["lower"] <= true_degree_ratio <= delta["upper"]
    bias = np.mean(estimates) - true_tau
    monte_carlo = np.std(estimates) / math.sqrt(replications)
    assert abs(bias) < 3 * monte_carlo  # no bias detectable at this many replications ...
    assert abs(bias) < 0.25 * np.mean(ses)  # ... and small relative to the standard error
    assert np.std(estimates) == pytest.approx(np.mean(ses), rel=0.2)  # the bootstrap SE is the sampling SD
    assert 0.82 <= covered_tau / replications <= 0.97  # nominal 0.90
    assert 0.80 <= covered_delta / replications <= 0.97


KNOWN_GENERAL = {f"g{i}": s for i, s in enumerate([60_000, 90_000, 120_000, 150_000, 200_000, 250_000, 300_000,
                                                    400_000, 500_000])}
REFERENCE = {f"r{i}": s for i, s in enumerate([20_000, 30_000, 40_000, 50_000, 60_000, 80_000])}


def _ard_with_degree_ratios(rng, reference_ratios, hidden_ratio, n=1_000, population=10_000_000):
    """ARD whose group k members have mean degree delta_k times the population's: y_ik ~ Poisson(d_i N_k delta_k / N).
    General known groups have delta 1."""
    degree = np.exp(rng.normal(np.log(300), 0.6, n))
    ratios = {**dict.fromkeys(KNOWN_GENERAL, 1.0), **dict(zip(REFERENCE, reference_ratios, strict=True))}
    sizes = {**KNOWN_GENERAL, **REFERENCE}
    hidden_size = 30_000
    frame = {g: rng.poisson(degree * sizes[g] * ratios[g] / population) for g in sizes}
    frame["h"] = rng.poisson(degree * hidden_size * hidden_ratio / population)
    ard = ARD.from_frame(pd.DataFrame(frame), known=sizes, population=population, hidden=["h"])
    base = sum(sizes[g] * ratios[g] for g in sizes) / sum(sizes.values())  # delta_K of the known-population degree
    return ard, hidden_ratio / base


def test_known_group_degree_ratio_recovers_a_fixed_ratio():
    """Every reference group and the hidden group have delta = 0.6: the estimate centres on delta_H / delta_K."""
    rng = np.random.default_rng(7)
    logs, truth = [], None
    for _ in range(60):
        ard, truth = _ard_with_degree_ratios(rng, [0.6] * len(REFERENCE), 0.6)
        result = degree_ratio_from_known(ard, list(REFERENCE))
        logs.append(math.log(result.table.loc[0, "estimate"]))
    logs = np.asarray(logs)
    se = logs.std(ddof=1) / math.sqrt(logs.size)
    assert abs(logs.mean() - math.log(truth)) < 3 * se + 0.005  # bias small relative to its standard error


def test_known_group_degree_ratio_predictive_coverage():
    """Reference and hidden log degree ratios drawn from Normal(log 0.6, 0.25) afresh each replication: the
    predictive interval covers the hidden group's delta_H / delta_K at about its nominal rate."""
    rng = np.random.default_rng(11)
    covered, replications = 0, 200
    for _ in range(replications):
        draws = np.exp(rng.normal(math.log(0.6), 0.25, len(REFERENCE) + 1))
        ard, truth = _ard_with_degree_ratios(rng, draws[:-1], draws[-1], n=600)
        row = degree_ratio_from_known(ard, list(REFERENCE), level=0.9).table.loc[0]
        covered += row["lower"] <= truth <= row["upper"]
    assert 0.84 <= covered / replications <= 0.97  # nominal 0.90


def test_known_group_degree_ratio_checks_its_inputs():
    rng = np.random.default_rng(1)
    ard, _ = _ard_with_degree_ratios(rng, [0.6] * len(REFERENCE), 0.6, n=200)
    with pytest.raises(ConfigError, match="at least 3"):
        degree_ratio_from_known(ard, ["r0", "r1"])
    with pytest.raises(ConfigError, match="not a known group"):
        degree_ratio_from_known(ard, ["r0", "r1", "h"])
    result = degree_ratio_from_known(ard, ["r0", "r1", "r2"], name="kg")
    table = tomllib.loads(result.diagnostics["declaration"])["visibility"]["kg"]
    assert parse_distribution(table["distribution"]) == result.extras["declared"][0].distribution


# ------------------------------------------------------------------------------------------------ command line
GOC_ARGS = ["--aware", "total.aware", "--alters", "total.alters", "--degree", "netsize.1.bss", "--coupon",
            "in.coupon", "--issued", "out.coupon1", "--issued", "out.coupon2", "--issued", "out.coupon3"]


def test_cli_visibility_json_and_declaration(run_cli):
    path = datasets.path("networkreporting_scratch_goc_survey")
    done = run_cli("nsum", "visibility", path, *GOC_ARGS, "--frame-degree", "250", "--frame-degree-se", "10",
                   "--bootstrap", "200", "--seed", "4", "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    rows = {row["quantity"]: row for row in payload["estimates"]}
    assert set(rows) == {"transmission_rate", "hidden_mean_degree", "degree_ratio"}
    assert rows["transmission_rate"]["estimate"] == pytest.approx(0.7527951080014733, rel=1e-12)
    declared = tomllib.loads(payload["diagnostics"]["declaration"])["visibility"]
    assert declared["game_of_contacts_tau"]["distribution"] == rows["transmission_rate"]["distribution"]
    people = run_cli("nsum", "visibility", path, *GOC_ARGS, "--bootstrap", "50")
    assert people.returncode == 0 and "[visibility.game_of_contacts_tau]" in people.stdout


def test_cli_visibility_bad_input_is_one_line_exit_2(run_cli, tmp_path, goc):
    bad = goc.copy()
    bad.loc[4, "total.aware"] = bad.loc[4, "total.alters"] + 1
    path = tmp_path / "goc.csv"
    bad.to_csv(path, index=False)
    done = run_cli("nsum", "visibility", path, *GOC_ARGS, "--bootstrap", "20")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "goc.csv, row 5, column 'total.aware': more aware alters than alters" in done.stderr
    missing = run_cli("nsum", "visibility", path, "--aware", "aware_alters", "--alters", "total.alters",
                      "--resample", "respondent")
    assert missing.returncode == 2 and "column 'aware_alters': column not found" in missing.stderr


def test_cli_degree_ratio(run_cli, tmp_path):
    rng = np.random.default_rng(3)
    ard, _ = _ard_with_degree_ratios(rng, [0.6] * len(REFERENCE), 0.6, n=300)
    survey = tmp_path / "survey.csv"
    ard.counts.to_csv(survey, index=False)
    known = tmp_path / "known.csv"
    pd.DataFrame({"group": list(ard.known_sizes.index), "size": ard.known_sizes.to_numpy()}).to_csv(known,
                                                                                                  index=False)
    args = ["nsum", "degree-ratio", survey, "--known", known, "--population", "10000000", "--hidden", "h"]
    for group in REFERENCE:
        args += ["--reference", group]
    done = run_cli(*args, "--format", "json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    expected = degree_ratio_from_known(ard, list(REFERENCE)).table.loc[0, "estimate"]
    assert payload["estimates"][0]["estimate"] == pytest.approx(expected, rel=1e-12)
    wrong = run_cli(*args[:-2], "--reference", "nope")
    assert wrong.returncode == 2 and "reference group 'nope' is not a known group" in wrong.stderr


def _rds_sample(rng, n=300, seeds=10, persistence=0.9, p_aware=(0.45, 0.85)):
    """An RDS-like sample: chains from ``seeds`` seeds, each respondent recruiting Binomial(3, 0.5) others until n,
    visibility type inherited from the recruiter with probability ``persistence`` (else drawn afresh, 50/50), equal
    network sizes (so RDS-II weights are equal and the population tau is the mean of the types' rates)."""
    kind = list(rng.integers(0, 2, seeds))
    parent = [-1] * seeds
    queue, head = list(range(seeds)), 0
    while len(kind) < n and head < len(queue):
        node = queue[head]
        head += 1
        for _ in range(rng.binomial(3, 0.5)):
            if len(kind) >= n:
                break
            kind.append(kind[node] if rng.random() < persistence else int(rng.integers(0, 2)))
            parent.append(node)
            queue.append(len(kind) - 1)
    kind, parent = np.array(kind), np.array(parent)
    alters = rng.poisson(10, kind.size)
    aware = rng.binomial(alters, np.asarray(p_aware)[kind])
    issued = [[c for c in np.flatnonzero(parent == i)] for i in range(kind.size)]
    frame = pd.DataFrame({"a": aware, "t": alters, "d": 50, "coupon": np.arange(kind.size) + 1000})
    for j in range(3):
        frame[f"out{j}"] = [issued[i][j] + 1000 if len(issued[i]) > j else np.nan for i in range(kind.size)]
    return frame, float(np.mean(p_aware))


def test_tree_bootstrap_covers_where_chains_share_visibility():
    """Visibility runs in families along recruitment chains (persistence 0.9): 100 RDS samples of 300 from 10 seeds.
    The tree bootstrap's 90% intervals cover the population tau at least at the nominal rate (Baraff et al. find it
    conservative); treating respondents as independent gives standard errors less than half as large."""
    rng = np.random.default_rng(2016)
    covered_tree, covered_naive, ratio, replications = 0, 0, [], 100
    for r in range(replications):
        frame, truth = _rds_sample(rng)
        data = read_game_of_contacts(frame, aware="a", alters="t", degree="d", coupon="coupon",
                                     issued=["out0", "out1", "out2"])
        tree = game_of_contacts(data, replicates=200, seed=r, level=0.9).table.loc[0]
        naive = game_of_contacts(data, resample="respondent", replicates=200, seed=r, level=0.9).table.loc[0]
        covered_tree += tree["lower"] <= truth <= tree["upper"]
        covered_naive += naive["lower"] <= truth <= naive["upper"]
        ratio.append(naive["se"] / tree["se"])
    assert covered_tree / replications >= 0.85
    assert covered_naive / replications < covered_tree / replications
    assert np.median(ratio) < 0.5
