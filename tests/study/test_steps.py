"""The analysis adapters: the Bayesian step's gates decide whether a fit may feed a headline, failures are shown
rather than hidden, and the casework ratio's exact interval."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hiddenpop.results import Estimates
from hiddenpop.study import steps
from hiddenpop.study.runner import RunContext, run_study
from hiddenpop.study.schema import load_study


@pytest.fixture
def bayes_study(demo_study, tmp_path):
    folder = tmp_path / "study"
    shutil.copytree(demo_study.parent, folder)
    path = folder / "study.toml"
    text = path.read_text()
    text = text.replace("enabled = false  # no MCMC in the test profile\n", "")
    # traffickers from the Bayesian model; victims stay design-based, so their ratio (which needs both from one
    # analysis's draws) is left out
    text = text.replace('headline = "nsum"\nwhy = "the same', 'headline = "nsum_bayes"\nwhy = "the same')
    text = text[:text.index("[ratios.victims_per_trafficker]")] + text[text.index("[visibility.transmission]"):]
    path.write_text(text.replace('ratio = "victims_per_trafficker"\n', ""))
    return load_study(path)


def _fake_model(passed: bool, calls: list, fail_with: Exception | None = None):
    """A stand-in for the combined model class: records how it was called, returns fixed posteriors."""

    class CombinedModel:
        def __init__(self, **kwargs):
            calls.append(("init", kwargs))

        def fit(self, counts, **kwargs):
            calls.append(("fit", list(counts.columns), kwargs))
            if fail_with is not None:
                raise fail_with
            rows = [{"quantity": q, "method": "Bayesian NSUM (combined)", "estimate": e, "lower": e * 0.8,
                     "upper": e * 1.3, "level": 0.95, "rhat": 1.0 if passed else 1.2, "ess_bulk": 500.0}
                    for q, e in (("adults_nonlive", 70_000.0), ("adults_live", 60_000.0),
                                 ("traffickers", 130_000.0))]
            ppc = pd.DataFrame({"group": ["adults_live"], "statistic": ["mean"], "observed": [0.2],
                                "predicted": [0.21], "lower": [0.15], "upper": [0.27], "ppp": [0.4],
                                "outside_interval": [False]})
            table = pd.DataFrame(rows)
            table["passed_gates"] = passed
            return Estimates(table=table, seed=kwargs["seed"], diagnostics={"passed": passed, "max_rhat": 1.2},
                             warnings=[] if passed else ["convergence gate failed: R-hat 1.2 above 1.01"],
                             tables={"ppc": ppc})

    return CombinedModel


def _run(study, tmp_path, monkeypatch, model_class):
    from hiddenpop.nsum import bayes

    monkeypatch.setitem(bayes.MODELS, "combined", model_class)
    pipeline = [("nsum", steps.nsum_step), ("nsum_bayes", steps.nsum_bayes_step)]
    return run_study(study, tmp_path / "run", steps=pipeline)


def test_bayes_fit_that_passes_its_gates_gives_the_trafficker_headline(bayes_study, tmp_path, monkeypatch):
    calls: list = []
    outcome = _run(bayes_study, tmp_path, monkeypatch, _fake_model(True, calls))
    _init, fit = calls
    # fitted on the adult degree's 11 occupations and the two adult hidden groups, with the study's settings
    assert fit[1] == [*bayes_study.degrees["adult"].groups, "adults_nonlive", "adults_live"]
    assert fit[2]["population"] == bayes_study.populations["total"]
    assert fit[2]["sums"] == {"traffickers": ["adults_nonlive", "adults_live"]}
    assert fit[2]["ratios"] == {}  # victims are not in this model, so no posterior ratio is asked for
    assert (fit[2]["chains"], fit[2]["draws"], fit[2]["seed"]) == (1, 100, 7)
    # the demo's [survey] has weights, strata and PSUs: the fit is weighted (normalised to n) and adjusted
    weights = fit[2]["weights"]
    assert len(weights) == len(pd.read_csv(bayes_study.survey["file"])) and weights.sum() == pytest.approx(len(weights))
    assert weights.std() > 0 and fit[2]["keep_globals"] is True and callable(fit[2]["post_process"])
    assert outcome.results["nsum_bayes"].status == "ok"
    headline = outcome.headline.set_index("quantity")
    assert headline.loc["traffickers", "analysis"] == "nsum_bayes"
    assert headline.loc["traffickers", "estimate"] == 130_000.0
    assert headline.loc["victims", "analysis"] == "nsum"
    triangulation = pd.read_csv(outcome.folder / "tables" / "triangulation.csv")
    assert set(triangulation.loc[triangulation["quantity"] == "traffickers", "analysis"]) == {"nsum", "nsum_bayes"}
    assert (outcome.folder / "tables" / "nsum_bayes_ppc.csv").is_file()
    html = (outcome.folder / "report.html").read_text()
    assert 'id="figure-ppc"' in html and "Bayesian network scale-up failed its diagnostic gates" not in html


def test_bayes_fit_that_fails_its_gates_is_marked_and_not_used(bayes_study, tmp_path, monkeypatch):
    outcome = _run(bayes_study, tmp_path, monkeypatch, _fake_model(False, []))
    assert outcome.results["nsum_bayes"].status == "failed_gates"
    headline = outcome.headline.set_index("quantity")
    assert headline.loc["traffickers", "analysis"] == "nsum"
    assert "taken from nsum because nsum_bayes failed gates" in headline.loc["traffickers", "note"]
    html = (outcome.folder / "report.html").read_text()
    assert "Bayesian network scale-up failed its diagnostic gates." in html
    assert "FAILED its diagnostic gates" in html
    assert "convergence gate failed: R-hat 1.2 above 1.01" in html


def test_a_fault_inside_a_family_stops_the_run_naming_the_step_without_its_text(bayes_study, tmp_path,
                                                                                monkeypatch):
    """A crash inside a family is a bug, not a step 'error' that a report can hide: the run stops (exit 1 on the
    command line), names the step and the exception type, never the exception's text, and writes nothing."""
    from hiddenpop.errors import InternalError

    monkeypatch.delenv("HIDDENPOP_DEBUG", raising=False)
    secret = "respondent R00042 said 7"
    with pytest.raises(InternalError) as info:
        _run(bayes_study, tmp_path, monkeypatch, _fake_model(True, [], fail_with=ValueError(secret)))
    message = str(info.value)
    assert "'nsum_bayes'" in message and "ValueError" in message and secret not in message
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.partial-*"))


def test_disabled_analysis_is_listed_as_skipped(demo_study):
    study = load_study(demo_study)
    names = [name for name, _ in steps.pipeline(study)]
    assert "nsum_bayes" in names
    result = dict(steps.pipeline(study))["nsum_bayes"](RunContext(study=study))
    assert result.status == "skipped" and "enabled = false" in result.message


def test_casework_ratio_interval_is_the_exact_binomial_one(demo_study):
    study = load_study(demo_study)
    result = steps.casework_step(RunContext(study=study))
    cases = pd.read_csv(demo_study.parent / "data" / "casework.csv")
    victims, suspects = int(cases["victims_rescued"].sum()), int(cases["suspects_arrested"].sum())
    row = result.estimates.get("victims_per_trafficker")
    assert row["estimate"] == pytest.approx(victims / suspects)
    # Clopper-Pearson for p = V / (V + S), mapped to p / (1 - p)
    low, high = stats.beta.ppf([0.025, 0.975], [victims, victims + 1], [suspects + 1, suspects])
    assert row["lower"] == pytest.approx(low / (1 - low)) and row["upper"] == pytest.approx(high / (1 - high))
    # the published per-area table is marked for suppression of small counts
    assert result.counts["casework_by_area"][0] == ["victims_rescued", "suspects_arrested"]


def test_casework_interval_covers_by_simulation():
    """Poisson counts with a known rate ratio: the exact interval covers it at least 95% of the time."""
    rng = np.random.default_rng(11)
    truth = 3.5
    victims = rng.poisson(35.0, 4000)
    suspects = rng.poisson(10.0, 4000)
    ok = (victims > 0) & (suspects > 0)
    v, s = victims[ok], suspects[ok]
    low = stats.beta.ppf(0.025, v, s + 1)
    high = stats.beta.ppf(0.975, v + 1, s)
    covered = (low / (1 - low) <= truth) & (truth <= high / (1 - high))
    assert 0.95 <= covered.mean() <= 0.99  # exact intervals are conservative, never below nominal


def test_the_bayesian_model_scales_victims_with_the_child_summation_degree(demo_study, tmp_path, monkeypatch):
    """The child age bands (a summation degree) enter the model as known groups with their sizes, on the child
    population base, untop-coded: victims get a Bayesian path under the same declared visibility model."""
    folder = tmp_path / "study"
    shutil.copytree(demo_study.parent, folder)
    path = folder / "study.toml"
    text = path.read_text().replace("enabled = false  # no MCMC in the test profile\n", "")
    text = text.replace('degree = "adult"\nhidden = ["adults_nonlive", "adults_live"]',
                        'degree = "child"\nhidden = ["children_nonlive", "children_live"]')
    path.write_text(text)
    study = load_study(path)
    calls: list = []

    class CombinedModel:
        def __init__(self, **kwargs):
            calls.append(("init", kwargs))

        def fit(self, counts, **kwargs):
            calls.append(("fit", list(counts.columns), kwargs))
            rows = [{"quantity": q, "method": "Bayesian NSUM (combined)", "estimate": 1.0, "lower": 0.5,
                     "upper": 2.0, "level": 0.95, "rhat": 1.0, "ess_bulk": 500.0}
                    for q in ("children_nonlive", "children_live", "victims")]
            return Estimates(table=pd.DataFrame(rows), seed=kwargs["seed"], diagnostics={"passed": True})

    from hiddenpop.nsum import bayes

    monkeypatch.setitem(bayes.MODELS, "combined", CombinedModel)
    result = steps.nsum_bayes_step(RunContext(study=study))
    (_, init), (_, columns, kwargs) = calls
    bands = list(study.degrees["child"].groups)
    sizes = pd.read_csv(folder / "data" / "known_sizes.csv").set_index("group")["size"]
    assert columns == [*bands, "children_nonlive", "children_live"]
    assert kwargs["known_sizes"] == {band: float(sizes[band]) for band in bands}
    assert kwargs["population"] == study.populations["children"]
    assert "topcode" not in kwargs  # the bands are not top-coded, so neither are the predictive replicates
    assert kwargs["sums"] == {"victims": ["children_nonlive", "children_live"]}
    assert init["priors"].tau == (17.0, 3.0)  # the study's declared Beta(17, 3), as the model's tau prior
    assert result.status == "ok" and "victims" in set(result.estimates.table["quantity"])


def test_a_transmission_rate_calibrated_against_casework_recovers_the_true_rate(demo_study, tmp_path):
    """Study 2's calibration in the study file: in the surveyed areas casework found 0.5% of the victims and
    suspects (the demo's truth), so declaring that completeness gives a Beta prior centred near the true 0.85,
    the run states where it came from, and the headline covers the truth."""
    import json

    from hiddenpop.nsum.adjust import Beta
    from hiddenpop.study.runner import execute

    folder = tmp_path / "study"
    shutil.copytree(demo_study.parent, folder)
    areas = pd.read_csv(folder / "data" / "areas.csv").set_index("area_id")
    casework = pd.read_csv(folder / "data" / "casework.csv")
    casework["children"] = casework["area_id"].map(areas["children"])
    casework.to_csv(folder / "data" / "casework.csv", index=False)
    path = folder / "study.toml"
    text = path.read_text()
    start, end = text.index("[visibility.transmission]"), text.index("[analyses.nsum]")
    calibrated = "\n".join([
        "[visibility.victims]", 'factor = "transmission_rate"', 'groups = ["victims"]', 'casework = "victims"',
        'base_column = "children"', "completeness = 0.005", 'source = "casework in the surveyed areas"', "",
        "[visibility.traffickers]", 'factor = "transmission_rate"', 'groups = ["traffickers"]',
        'casework = "suspects"', 'base_column = "population"', "completeness = 0.005",
        'source = "arrests in the surveyed areas"', "", ""])
    path.write_text(text[:start] + calibrated + text[end:])
    study = load_study(path)
    assert [c.name for c in study.calibrations] == ["victims", "traffickers"] and study.visibility == ()
    context, published, _ = execute(study, steps=[("nsum", steps.nsum_step)])
    model = context.shared["visibility"]
    truth = json.loads((folder / "truth.json").read_text())
    for entry in model.declared:
        assert isinstance(entry.distribution, Beta)
        assert abs(entry.distribution.mean - truth["transmission"]) < 3 * entry.distribution.sd, entry.name
    assert model.applying("children_live")["transmission_rate"].name == "victims"
    assert model.applying("adults_live")["transmission_rate"].name == "traffickers"
    sources = published.tables["assumptions"]["source"]
    assert sources.str.contains("calibrated on .* casework areas: reported .*, victims found").any()
    headline = published.tables["headline"].set_index("quantity")
    for quantity in ("victims", "traffickers"):
        assert headline.loc[quantity, "lower"] <= truth[quantity] <= headline.loc[quantity, "upper"]


@pytest.mark.parametrize(("entry", "message"), [
    ('casework = "victims"\nbase_column = "children"', "needs 'groups'"),
    ('distribution = "beta(2, 2)"\ncasework = "victims"', "give exactly one of 'distribution', 'casework'"),
    ('groups = ["victims"]\ncasework = "rescues"\nbase_column = "children"', "key 'casework': 'rescues' is not one"),
    ('groups = ["victims"]\ncasework = "victims"', "needs 'base_column'"),
    ('groups = ["victims"]\ncasework = "victims"\nbase_column = "children"\ncompleteness = 1.5', "must lie in"),
    ('groups = ["victims", "traffickers"]\ncasework = "victims"\nbase_column = "children"', "different degrees"),
    ('distribution = "beta(2, 2)"\ncompleteness = 0.5', "belongs to a casework calibration"),
])
def test_casework_calibration_settings_are_checked(demo_study, tmp_path, entry, message):
    from hiddenpop.errors import ConfigError

    folder = tmp_path / "study"
    shutil.copytree(demo_study.parent, folder)
    path = folder / "study.toml"
    text = path.read_text()
    start, end = text.index("[visibility.transmission]"), text.index("[analyses.nsum]")
    path.write_text(text[:start] + '[visibility.tau]\nfactor = "transmission_rate"\nsource = "s"\n' + entry + "\n\n"
                    + text[end:])
    with pytest.raises(ConfigError, match=message):
        load_study(path)


def test_the_compare_step_is_the_commands_numbers_and_publishes_no_small_count(demo_study):
    """[analyses.compare] runs the same family function as `hiddenpop compare referrals`, at the study's seed,
    level and threshold; its tables arrive suppressed, its caveats as notes, and the demo's focus country stays
    first with each agency left out (no warning, status ok)."""
    from hiddenpop.compare.analyses import compare_files

    study = load_study(demo_study)
    result = steps.compare_step(RunContext(study=study))
    assert result.status == "ok" and result.estimates.table.empty
    spec = study.specs["compare"]
    assert (spec.seed, spec.level, spec.threshold) == (study.seed, study.level, study.suppression_threshold)
    data = demo_study.parent / "data"
    direct = compare_files(data / "referrals.csv", spec, base_file=data / "child_population.csv")
    countries = result.tables["compare_countries"]
    pd.testing.assert_frame_equal(countries, direct.table[direct.table["kind"] == "country"].reset_index(drop=True))
    assert set(result.tables) == {"compare_countries", "compare_ratios", "compare_regions", "compare_ranks",
                                  "compare_agencies", "compare_leave_one_out"}
    for name, column in [("compare_countries", "count"), ("compare_regions", "count"),
                         ("compare_agencies", "count"), ("compare_leave_one_out", "focus_count")]:
        values = pd.to_numeric(result.tables[name][column], errors="coerce").dropna()
        assert not ((values > 0) & (values < 5)).any(), name
    assert result.suppressed_elsewhere == direct.diagnostics["cells_suppressed"] > 0
    focus = countries[countries["focus"].astype(bool)].iloc[0]
    assert focus["country"] == "PHL" and focus["observed_rank"] == 1 and focus["unit"] == "per 100,000 children"
    assert result.tables["compare_leave_one_out"]["focus_first"].all()
    assert any("convenience sample" in note for note in result.notes)
    # the agencies are published under the names the study file lists
    assert set(result.tables["compare_agencies"]["agency"]) == {"Agency A", "Agency B", "Agency C", "Agency D"}


def test_the_bayesian_step_passes_the_design_and_covariate_and_reports_kfold_and_residuals(bayes_study, tmp_path,
                                                                                          monkeypatch):
    """[survey] psu and strata reach K-fold cross-validation, [analyses.nsum_bayes] residuals_by names the survey
    column the residuals are summarised by, and the report shows the comparison table and the residual figure."""
    path = bayes_study.path
    text = path.read_text().replace('residuals_by = "stratum"\n', 'residuals_by = "stratum"\nkfold = 3\n')
    path.write_text(text)
    study = load_study(path)
    assert study.specs["nsum_bayes"].kfold == 3 and study.specs["nsum_bayes"].residuals_by == "stratum"
    seen: dict = {}

    def fake_analysis(counts, spec, **kwargs):
        seen.update(kwargs, n=len(counts), spec=spec)
        rows = [{"quantity": q, "method": "Bayesian NSUM (combined)", "estimate": e, "lower": e * 0.8,
                 "upper": e * 1.3, "level": 0.95, "rhat": 1.0, "ess_bulk": 500.0, "passed_gates": True}
                for q, e in (("adults_nonlive", 70_000.0), ("adults_live", 60_000.0), ("traffickers", 130_000.0))]
        kfold = pd.DataFrame({"model": ["barrier", "combined", "degree"], "elpd_kfold": [-900.0, -905.0, -1500.0],
                              "se": [30.0, 31.0, 60.0], "elpd_diff": [0.0, -5.0, -600.0],
                              "se_diff": [0.0, 4.0, 50.0], "folds_passed": [3, 3, 3], "folds": [3, 3, 3]})
        folds = pd.DataFrame({"model": ["barrier"] * 3, "fold": [1, 2, 3], "respondents": [200, 200, 200],
                              "units": [10, 10, 10], "elpd": [-300.0, -300.0, -300.0], "passed_gates": True})
        residuals = pd.DataFrame({"group": ["adults_live", "adults_live"], "covariate": "stratum",
                                  "level": ["S1", "S2"], "respondents": [300, 300], "mean_residual": [0.3, -0.3],
                                  "sd_residual": [1.0, 1.0], "share_beyond_2": [0.05, 0.04],
                                  "correlation": [np.nan, np.nan]})
        return Estimates(table=pd.DataFrame(rows), seed=spec.seed, diagnostics={"passed": True},
                         tables={"kfold": kfold, "kfold_folds": folds, "residuals": residuals})

    monkeypatch.setattr(steps, "bayes_analysis", fake_analysis)
    outcome = run_study(study, tmp_path / "run", steps=[("nsum", steps.nsum_step),
                                                        ("nsum_bayes", steps.nsum_bayes_step)])
    survey = pd.read_csv(path.parent / "data" / "survey.csv")
    assert seen["spec"].kfold == 3
    assert seen["n"] == len(seen["psu"]) == len(seen["strata"]) == len(seen["covariate"])
    assert set(map(str, seen["psu"])) <= set(survey["psu"].astype(str))
    assert list(map(str, seen["covariate"])) == list(map(str, seen["strata"]))  # the demo's stratum column
    tables = outcome.folder / "tables"
    assert pd.read_csv(tables / "nsum_bayes_kfold.csv")["model"].tolist() == ["barrier", "combined", "degree"]
    assert (tables / "nsum_bayes_kfold_folds.csv").is_file() and (tables / "nsum_bayes_residuals.csv").is_file()
    html = (outcome.folder / "report.html").read_text()
    assert "Bayesian models compared: K-fold cross-validation by PSU" in html
    assert "compared by K-fold cross-validation" in html
    assert 'id="figure-residuals"' in html and (outcome.folder / "figures" / "residuals.svg").is_file()


def test_a_residual_covariate_missing_from_the_survey_is_refused(bayes_study, tmp_path):
    from hiddenpop.errors import ConfigError

    path = bayes_study.path
    path.write_text(path.read_text().replace('residuals_by = "stratum"', 'residuals_by = "age_band"'))
    with pytest.raises(ConfigError, match="residuals_by"):
        steps.nsum_bayes_step(RunContext(study=load_study(path)))


def test_the_recall_curve_is_fitted_per_degree_published_and_drawn(demo_study, tmp_path):
    """``recall = "loglinear"`` in [analyses.nsum]: one curve per degree (the child summation degree fitted on its
    age bands, whose sizes come from the known-sizes table), hidden groups under their study names, the table
    published as nsum_recall and drawn as the report's recall figure, with extrapolation warned about."""
    from hiddenpop.study.report.figures import build_figures
    from hiddenpop.study.runner import execute

    folder = tmp_path / "study"
    shutil.copytree(demo_study.parent, folder)
    path = folder / "study.toml"
    path.write_text(path.read_text().replace("[analyses.nsum]\n", '[analyses.nsum]\nrecall = "loglinear"\n', 1))
    study = load_study(path)
    assert study.specs["nsum"].recall == "loglinear"
    context, published, _ = execute(study, steps=[("nsum", steps.nsum_step)])
    table = published.tables["nsum_recall"]
    assert set(table["degree"]) == set(study.degrees)
    hidden = table[table["kind"] == "hidden"]
    assert set(hidden["group"]) == set(study.hidden)
    for name, spec in study.degrees.items():
        assert set(table.loc[(table["degree"] == name) & (table["kind"] == "known"), "group"]) == set(spec.groups)
    # every hidden group's estimate is its corrected size (as respondents see it, then divided by the declared
    # visibility factors), which sits on its degree's curve
    result = context.results["nsum"].estimates
    for _, row in hidden.iterrows():
        estimate = result.get(row["group"])
        assert estimate["estimate"] == pytest.approx(row["size"] * estimate["adjustment_factor"], rel=1e-12)
        assert row["ratio"] == pytest.approx(row["fitted"], rel=1e-10)
    outside = 0
    for _, row in hidden.iterrows():
        sizes = table.loc[(table["kind"] == "known") & (table["degree"] == row["degree"]), "size"]
        outside += not sizes.min() <= row["size"] <= sizes.max()
    assert outside > 0  # the demo's hidden groups are smaller than its known groups
    assert len([w for w in result.warnings if "extrapolated" in w]) == outside
    figures = build_figures(context, published, tmp_path)
    assert "recall" in figures and "recall" in figures["recall"].html
    for suffix in ("png", "svg"):
        assert (tmp_path / f"recall.{suffix}").stat().st_size > 1000
