"""The runner: what a run folder contains, atomic replacement, and byte-identical reruns."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from hiddenpop.outputs import MARKER
from hiddenpop.study import steps
from hiddenpop.study.runner import MANIFEST_SCHEMA, read_manifest, run_study
from hiddenpop.study.schema import load_study

#: The statuses of an analysis that ran to the end (with or without warnings for the reader).
FINISHED = ("ok", "warnings")


@pytest.fixture(scope="module")
def two_runs(demo_study, tmp_path_factory):
    """The quick demo study run twice into two folders with the same seed."""
    study = load_study(demo_study)
    base = tmp_path_factory.mktemp("runs")
    first = run_study(study, base / "first")
    second = run_study(load_study(demo_study), base / "second")
    return first, second


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_folder_contents(two_runs, demo_study):
    outcome = two_runs[0]
    folder = outcome.folder
    assert (folder / "report.html").is_file()
    manifest = read_manifest(folder)
    for name in manifest["tables"]:
        assert (folder / "tables" / f"{name}.csv").is_file()
        parquet = pd.read_parquet(folder / "tables" / f"{name}.parquet")
        csv = pd.read_csv(folder / "tables" / f"{name}.csv")
        assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv)
    assert {"headline", "triangulation", "analyses", "warnings"} <= set(manifest["tables"])
    # every input hashed, by path relative to the study folder; the key itself never written
    paths = {item["path"] for item in manifest["inputs"]}
    assert {"study.toml", "data/survey.csv", "data/known_sizes.csv", "data/casework.csv"} <= paths
    assert all(len(item["sha256"]) == 64 for item in manifest["inputs"])
    key = (demo_study.parent / "keys" / "demo-key.txt").read_text().strip()
    for content in _files(folder).values():
        assert key.encode() not in content
    assert manifest["privacy"]["key_fingerprint"] and manifest["privacy"]["suppression_threshold"] == 5
    assert manifest["schema"] == MANIFEST_SCHEMA
    assert manifest["seed"] == 7 and manifest["versions"]["numpy"]
    assert set(manifest["timings"]) >= {"total", "report"}
    assert manifest["analyses"]["casework"]["status"] == "ok"
    # print, edit and provenance: the PDF, the Word summary, a copy of the study file, and every output's hash
    assert {"report.pdf", "summary.docx", "study.toml"} <= set(_files(folder))
    recorded = {item["path"]: item["sha256"] for item in manifest["outputs"]}
    written = {name: hashlib.sha256(data).hexdigest() for name, data in _files(folder).items()
               if name not in ("manifest.json", MARKER)}
    assert recorded == written
    assert manifest["notes"] == []


def test_the_study_copy_redacts_excluded_report_log_values(two_runs, demo_study):
    original = demo_study.read_text()
    copy = (two_runs[0].folder / "study.toml").read_text()
    assert 'category = "viral"' in original
    assert 'category = "value #1"' in copy and "viral" not in copy
    assert copy.replace('"value #1"', '"viral"') == original


def test_a_study_copy_that_cannot_be_redacted_is_not_made(demo_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(demo_study.parent, study)
    text = (study / "study.toml").read_text()
    (study / "study.toml").write_text(text.replace('description = """', 'description = """viral reports. ', 1))
    outcome = run_study(load_study(study / "study.toml"), tmp_path / "run", steps=[("nsum", steps.nsum_step)])
    assert not (outcome.folder / "study.toml").exists()
    assert any("was not copied" in note for note in outcome.manifest["notes"])
    assert any("was not copied" in note for note in outcome.notes)


def test_same_seed_gives_byte_identical_tables_and_manifest(two_runs):
    first, second = (_files(outcome.folder) for outcome in two_runs)
    assert first.keys() == second.keys()
    tables = [name for name in first if name.startswith("tables/")]
    assert len(tables) >= 8
    for name in tables:
        assert first[name] == second[name], f"{name} differs between two runs with the same seed"
    manifests = [json.loads(files["manifest.json"]) for files in (first, second)]
    for manifest in manifests:
        manifest.pop("timings")
    assert manifests[0] == manifests[1]
    # Figures and the report carry no timings either, so they are identical too.
    for name in first:
        if name.startswith("figures/") or name in ("report.html", "report.pdf", "summary.docx", "study.toml"):
            assert first[name] == second[name], f"{name} differs between two runs with the same seed"
    assert any(name.endswith(".svg") for name in first)


def test_headline_uses_the_design_based_numbers_when_nsum_ran(two_runs):
    outcome = two_runs[0]
    assert outcome.results["nsum"].status in FINISHED
    headline = outcome.headline.set_index("quantity")
    victims = headline.loc["victims"]
    nsum_rows = outcome.results["nsum"].estimates.table
    nsum_victims = nsum_rows[nsum_rows["quantity"] == "victims"].iloc[0]
    assert victims["estimate"] == nsum_victims["estimate"]
    assert victims["lower"] < victims["estimate"] < victims["upper"]
    # prevalence per 100 children is the same estimate on another scale
    per_100 = headline.loc["victims_per_100_children"]
    assert per_100["estimate"] == pytest.approx(victims["estimate"] * 100 / 44_600_000, rel=1e-12)
    assert per_100["upper"] == pytest.approx(victims["upper"] * 100 / 44_600_000, rel=1e-12)


def test_failure_mid_run_leaves_the_previous_run_untouched(demo_study, tmp_path, monkeypatch):
    study = load_study(demo_study)
    out = tmp_path / "run"
    pipeline = [("casework", steps.casework_step)]
    run_study(study, out, steps=pipeline)
    before = _files(out)

    def broken_report(*args, **kwargs):
        raise RuntimeError("simulated crash while writing the report")

    monkeypatch.setattr("hiddenpop.study.runner.render_report", broken_report)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_study(study, out, steps=pipeline)
    assert _files(out) == before  # the previous complete run is still there, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no partial folder left behind


def test_failure_in_a_step_leaves_no_folder(demo_study, tmp_path):
    study = load_study(demo_study)

    def failing_step(context):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C half way

    out = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        run_study(study, out, steps=[("casework", steps.casework_step), ("boom", failing_step)])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_out_cannot_replace_the_study_folder(demo_study):
    from hiddenpop.errors import ConfigError

    study = load_study(demo_study)
    with pytest.raises(ConfigError, match=r"would replace or contain .* which hiddenpop reads"):
        run_study(study, demo_study.parent)


def test_area_report_log_and_case_tables(two_runs, demo_study):
    outcome = two_runs[0]
    tables = outcome.folder / "tables"
    results = outcome.results
    # every analysis of the demo finishes (a crash stops the run; an analysis may finish with warnings)
    assert {name: result.status for name, result in results.items() if result.status not in FINISHED} == \
        {"nsum_bayes": "skipped"}  # the test profile switches the MCMC off
    areas = pd.read_csv(demo_study.parent / "data" / "areas.csv")
    estimates = pd.read_csv(tables / "area_estimates.csv")
    direct = pd.read_csv(tables / "area_direct.csv")
    assert len(estimates) == len(areas) and set(estimates["area"]) == set(areas["area_id"])
    assert len(direct) == int(areas["surveyed"].sum()) and (direct["respondents"] == 24).all()
    assert (estimates["lower"] <= estimates["estimate"]).all() and (estimates["estimate"] <= estimates["upper"]).all()
    assert {"longitude", "latitude"} <= set(estimates.columns)
    # the demo's key is readable by its owner only, so reading it raises no warning (a path in a warning would
    # also differ between the demo's temporary folder and its final one)
    assert (demo_study.parent / "keys" / "demo-key.txt").stat().st_mode & 0o077 == 0
    assert not any("key file" in warning for warning in results["report_log"].estimates.warnings)
    audit = pd.read_csv(tables / "cleaning_audit.csv")
    log = pd.read_csv(demo_study.parent / "data" / "report_log.csv")
    assert audit["rows_in"].iloc[0] == len(log)
    assert (audit["rows_in"] - audit["rows_out"] == audit["removed"]).all()
    series = pd.read_csv(tables / "rolling_series.csv")
    assert len(series) >= 2 and (series["estimate"].dropna() >= series["observed"][series["estimate"].notna()]).all()
    typologies = pd.read_csv(tables / "cases_typologies.csv")
    counts = pd.to_numeric(typologies["count"], errors="coerce").dropna()
    assert not ((counts > 0) & (counts < 5)).any()  # small cells never published
    casework = pd.read_csv(tables / "casework_by_area.csv")
    for column in ("victims_rescued", "suspects_arrested"):
        values = casework[column].dropna()
        assert not ((values > 0) & (values < 5)).any()
    # the report-log identifiers never reach any output
    addresses = set(pd.read_csv(demo_study.parent / "data" / "report_log.csv")["ip_address"].dropna())
    text = "\n".join(p.read_text(errors="ignore") for p in outcome.folder.rglob("*") if p.suffix in (".csv", ".json",
                                                                                                   ".html", ".toml"))
    assert not any(address in text for address in list(addresses)[:200])


def test_the_demo_headline_covers_its_truth_and_its_ratio_divides_the_shown_draws(tmp_path):
    """The bundled demo (full profile, its own seed), design-based analysis only: the headline victims, traffickers
    and their ratio cover the truths the data were drawn from, the ratio is the headline numbers' ratio draw by
    draw, and the declared transmission prior is stated beside them."""
    from hiddenpop.study.demo import write_demo_study

    study_path = write_demo_study(tmp_path / "study", profile="full")
    truth = json.loads((study_path.parent / "truth.json").read_text())
    outcome = run_study(load_study(study_path), tmp_path / "run", steps=[("nsum", steps.nsum_step)])
    headline = outcome.headline.set_index("quantity")
    for quantity in ("victims", "traffickers", "victims_per_trafficker"):
        row = headline.loc[quantity]
        assert row["analysis"] == "nsum"
        assert row["lower"] <= truth[quantity] <= row["upper"], quantity
    assert headline.loc["victims_per_trafficker", "estimate"] == pytest.approx(
        headline.loc["victims", "estimate"] / headline.loc["traffickers", "estimate"], rel=1e-12)
    replicates = outcome.results["nsum"].estimates.extras["replicates"]["mle"]
    ratio = replicates["victims"] / replicates["traffickers"]
    assert replicates["victims_per_trafficker"].to_numpy() == pytest.approx(ratio.to_numpy(), rel=1e-12)
    assumptions = pd.read_csv(outcome.folder / "tables" / "assumptions.csv")
    tau = assumptions[assumptions["assumption"] == "transmission rate (tau)"].iloc[0]
    assert tau["value"] == "beta(17, 3)" and "assumed for the demo" in tau["source"]
    sentences = pd.read_csv(outcome.folder / "tables" / "break_even.csv")["sentence"]
    assert any("degree ratio (delta) exceeded" in s for s in sentences)
    html = (outcome.folder / "report.html").read_text()
    assert "What these numbers assume" in html and 'id="figure-headline_sensitivity"' in html


def test_a_rerun_of_the_demo_with_its_bayesian_analyses_is_byte_identical(tmp_path):
    """The quick demo (Bayesian NSUM and the pooled area model included) run twice: every table, figure and the
    report are identical; only the manifest's timings differ."""
    from hiddenpop.study.demo import run_demo

    outcomes = [run_demo(tmp_path / name, profile="quick", seed=3) for name in ("a", "b")]
    assert outcomes[0].results["nsum_bayes"].status in (*FINISHED, "failed_gates")
    first, second = (_files(outcome.folder) for outcome in outcomes)
    assert first.keys() == second.keys() and "report.html" in first
    for name in first:
        if name != "manifest.json":
            assert first[name] == second[name], f"{name} differs between two runs with the same seed"
    manifests = [json.loads(files["manifest.json"]) for files in (first, second)]
    for manifest in manifests:
        manifest.pop("timings")
    assert manifests[0] == manifests[1]


def test_lists_join_the_triangulation_with_the_declared_headline_first(two_runs, demo_study):
    """The demo's four lists: every model class the study asked for is a row of tables/mse_estimates.csv, the class
    its headline rule names is flagged, and their estimates of the victims sit in the triangulation panel."""
    outcome = two_runs[0]
    study = load_study(demo_study)
    spec = study.specs["mse"]
    estimates = pd.read_csv(outcome.folder / "tables" / "mse_estimates.csv")
    assert list(estimates["model_class"]) == list(spec.classes)
    assert estimates.loc[estimates["headline"], "model_class"].tolist() == [spec.headline]
    seen = pd.read_csv(demo_study.parent / "data" / "lists.csv")["count"].sum()
    assert (estimates["lower"] >= seen).all()
    triangulation = pd.read_csv(outcome.folder / "tables" / "triangulation.csv")
    lists = triangulation[triangulation["analysis"] == "mse"]
    assert set(lists["quantity"]) == {"victims"} and lists["comparable"].all()
    assert lists["method"].iloc[0].startswith(f"{spec.headline}: ")
    assert sorted(lists["estimate"]) == pytest.approx(sorted(estimates["estimate"]))


def test_an_analysis_error_names_the_study_key_not_the_command_line_flag(demo_study, tmp_path):
    from hiddenpop.errors import ConfigError

    folder = tmp_path / "study"
    shutil.copytree(demo_study.parent, folder)
    toml = folder / demo_study.name
    text = toml.read_text()
    assert 'estimator = "Mth Chao (LB)"' in text
    toml.write_text(text.replace('estimator = "Mth Chao (LB)"', 'estimator = "zeltermann"'))
    with pytest.raises(ConfigError) as caught:
        run_study(load_study(toml), tmp_path / "run", steps=[("report_log", steps.report_log_step)])
    message = str(caught.value)
    assert message.startswith(f"{toml.name}, [analyses.report_log] estimator 'zeltermann'")
    assert "--estimator" not in message and "zelterman" in message
    assert not (tmp_path / "run").exists()
