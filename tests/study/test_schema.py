"""Study-file validation: each kind of mistake gives one clear line (file, table, key, fix) and exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hiddenpop.errors import ConfigError
from hiddenpop.study.schema import load_study


@pytest.fixture
def study_copy(demo_study, tmp_path) -> Path:
    """A private copy of the demo study folder that a test may edit."""
    target = tmp_path / "study"
    shutil.copytree(demo_study.parent, target)
    return target / "study.toml"


def _edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in the study file"
    path.write_text(text.replace(old, new, 1))
    return path


def test_demo_study_is_valid(demo_study):
    study = load_study(demo_study)
    assert set(study.combine) == {"victims", "traffickers"}
    assert study.combine["victims"].groups == ("children_nonlive", "children_live")
    assert study.degrees["child"].method == "summation" and study.degrees["child"].base == "children"
    assert study.degrees["adult"].method == "known_population" and len(study.degrees["adult"].groups) == 11
    assert study.ratios["victims_per_trafficker"].denominator == "traffickers"
    assert study.suppression_threshold == 5
    # every input file is listed once, the study file first
    files = study.input_files()
    assert files[0] == demo_study.resolve() and len(files) == len(set(files))
    assert all(f.is_file() for f in files)


def test_unknown_key_suggests_the_right_one(study_copy, run_cli):
    _edit(study_copy, 'suppression_threshold = 5', 'supression_threshold = 5')
    with pytest.raises(ConfigError) as info:
        load_study(study_copy)
    message = str(info.value)
    assert message.startswith("study.toml, [privacy]: unknown key 'supression_threshold'")
    assert "did you mean 'suppression_threshold'?" in message
    completed = run_cli("run", study_copy)
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("error: study.toml, [privacy]: unknown key 'supression_threshold'")
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_unknown_analysis_suggests_the_right_one(study_copy):
    _edit(study_copy, "[analyses.casework]", "[analyses.casewrk]")
    with pytest.raises(ConfigError, match=r"\[analyses.casewrk\]: unknown analysis \(did you mean 'casework'\?\)"):
        load_study(study_copy)


def test_missing_file_names_the_key_and_the_fix(study_copy):
    _edit(study_copy, 'file = "data/casework.csv"', 'file = "data/casework_2022.csv"')
    with pytest.raises(ConfigError) as info:
        load_study(study_copy)
    message = str(info.value)
    assert message.startswith("study.toml, [analyses.casework] key 'file': file not found: data/casework_2022.csv")
    assert "relative to the study file's folder" in message


def test_wrong_type_says_what_was_expected(study_copy):
    _edit(study_copy, "bootstrap = 100", 'bootstrap = "100"')
    with pytest.raises(ConfigError) as info:
        load_study(study_copy)
    assert str(info.value) == ("study.toml, [analyses.nsum]: key 'bootstrap' must be a whole number "
                               "(rescaled-bootstrap replicates (0: Killworth Wald interval only)); got text")


def test_booleans_are_not_integers(study_copy):
    _edit(study_copy, "seed = 7", "seed = true")
    with pytest.raises(ConfigError, match=r"\[study\] key 'seed': expected an integer .* got true/false"):
        load_study(study_copy)


def test_combination_of_undeclared_hidden_group(study_copy, run_cli):
    _edit(study_copy, 'groups = ["children_nonlive", "children_live"]',
          'groups = ["children_nonlive", "children_livestream"]')
    with pytest.raises(ConfigError) as info:
        load_study(study_copy)
    message = str(info.value)
    assert message.startswith("study.toml, [combine.victims] key 'groups': hidden group 'children_livestream' is "
                              "not declared (did you mean 'children_live'?)")
    assert "declared: children_nonlive, children_live, adults_nonlive, adults_live" in message
    completed = run_cli("run", study_copy)
    assert completed.returncode == 2
    assert "hidden group 'children_livestream' is not declared" in completed.stderr


def test_combination_mixing_population_bases(study_copy):
    _edit(study_copy, 'groups = ["adults_nonlive", "adults_live"]', 'groups = ["adults_nonlive", "children_live"]')
    with pytest.raises(ConfigError, match=r"\[combine.traffickers\] key 'groups': mixes hidden groups scaled to "
                       r"different population bases \(children, total\)"):
        load_study(study_copy)


def test_ratio_of_undeclared_quantity(study_copy):
    _edit(study_copy, 'denominator = "traffickers"', 'denominator = "trafickers"')
    with pytest.raises(ConfigError, match=r"\[ratios.victims_per_trafficker\] key 'denominator': quantity "
                       r"'trafickers' is not declared \(did you mean 'traffickers'\?\)"):
        load_study(study_copy)


def test_hidden_group_with_undeclared_degree(study_copy):
    _edit(study_copy, 'degree = "child"\nlabel = "Children used in livestreams"',
          'degree = "children"\nlabel = "Children used in livestreams"')
    with pytest.raises(ConfigError, match=r"\[hidden.children_live\] key 'degree': degree 'children' is not "
                       r"declared \(did you mean 'child'\?\)"):
        load_study(study_copy)


def test_bayes_group_scaled_by_another_degree(study_copy):
    _edit(study_copy, 'hidden = ["adults_nonlive", "adults_live"]', 'hidden = ["adults_nonlive", "children_live"]')
    with pytest.raises(ConfigError, match=r"hidden group 'children_live' is scaled by degree 'child', not 'adult'"):
        load_study(study_copy)


def test_missing_required_key(study_copy):
    _edit(study_copy, "seed = 7\n", "")
    with pytest.raises(ConfigError, match=r"^study.toml, \[study\]: missing required key 'seed' \(the random seed"):
        load_study(study_copy)


def test_report_log_needs_a_key_file(study_copy):
    _edit(study_copy, 'key_file = "keys/demo-key.txt"\n', "")
    with pytest.raises(ConfigError, match=r"\[analyses.report_log\]: reading identifiers needs a pseudonymisation "
                       "key"):
        load_study(study_copy)


def test_invalid_toml_names_the_line(study_copy, run_cli):
    _edit(study_copy, "[survey]", "[survey")
    completed = run_cli("run", study_copy)
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: study.toml: not valid TOML (")
    assert "line" in completed.stderr


def test_missing_study_file(run_cli, tmp_path):
    completed = run_cli("run", tmp_path / "nope.toml")
    assert completed.returncode == 2
    assert "nope.toml: study file not found" in completed.stderr


def test_population_larger_than_total(study_copy):
    _edit(study_copy, "children = 44600000", "children = 144600000")
    with pytest.raises(ConfigError, match=r"\[populations\] key 'children': is larger than 'total'"):
        load_study(study_copy)


def test_examples_study_matches_the_generator():
    """examples/demo/study.toml is the generator's full-profile output (data paths and settings cannot drift)."""
    from hiddenpop.study.demo import PROFILES, study_toml

    committed = Path(__file__).resolve().parents[2] / "examples" / "demo" / "study.toml"
    assert committed.read_text() == study_toml(seed=20220101, spec=PROFILES["full"])


@pytest.mark.parametrize(("old", "replacement", "message"), [
    ("target_accept = 0.65", 'target_accept = 0.65\nlikelihood = "gaussian"',
     r"\[analyses.nsum_bayes\]: key 'likelihood'.*gaussian"),
    ("target_accept = 0.65", "target_accept = 1.5",
     r"\[analyses.nsum_bayes\]: key 'target_accept' must satisfy 0 < target_accept < 1"),
    ("target_accept = 0.65", "target_accept = 0.65\nseed = 3",
     r"\[analyses.nsum_bayes\]: key 'seed' is set once for the whole study"),
    ("target_accept = 0.65", "target_accept = 0.65\ntau_prior = [2, 8]",
     r"\[analyses.nsum_bayes\]: key 'tau_prior' is set once for the whole study, in \[visibility.NAME\] with "
     r"factor = 'transmission_rate'"),
    ("target_accept = 0.65", 'target_accept = 0.65\nz_global = ["age"]',
     r"z_global applies to the correlated and uncorrelated models only"),
    ("target_accept = 0.65", 'target_accept = 0.65\nx_columns = ["adult_nonlive"]', r"GROUP=COLUMN"),
])
def test_bayes_options_validated(study_copy, old, replacement, message):
    _edit(study_copy, old, replacement)
    with pytest.raises(ConfigError, match=message):
        load_study(study_copy)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("seed = 7", "seed = 18446744073709551615", "key 'seed': must be a whole number from 0 to 4,294,967,295"),
        ("seed = 7", "seed = -1", "key 'seed': must be a whole number from 0 to"),
        ("bootstrap = 100", "bootstrap = 1000000000",
         r"\[analyses.nsum\]: key 'bootstrap' must satisfy 0 <= bootstrap <= 100000; got 1000000000"),
        ("bootstrap = 100", "bootstrap = -1", "key 'bootstrap' must satisfy 0 <= bootstrap"),
        ('method = "mle"', 'method = ["mle", "pimle"]', r"\[analyses.nsum\] key 'method': a study's headline needs one"),
        ('method = "mle"', 'method = "mel"', r"key 'method' must be one of 'mle', 'pimle', 'mos'; got 'mel' \(did you"),
    ],
)
def test_numbers_beyond_their_documented_limits_are_refused_before_any_work(study_copy, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_study(_edit(study_copy, old, new))


def test_chains_beyond_the_limit_are_refused(study_copy):
    _edit(study_copy, "chains = 1\n", "chains = 100000\n")
    with pytest.raises(ConfigError, match="key 'chains' must satisfy 1 <= chains <= 16; got 100000"):
        load_study(study_copy)


def test_replicates_that_would_exhaust_memory_are_refused_before_fitting(demo_study, tmp_path, monkeypatch):
    from hiddenpop.study import steps
    from hiddenpop.study.runner import run_study

    monkeypatch.setattr(steps, "MAX_REPLICATE_BYTES", 1000)  # the survey has hundreds of respondents
    with pytest.raises(ConfigError, match=r"bootstrap replicates would need about .* GB"):
        run_study(load_study(demo_study), tmp_path / "run", steps=[("nsum", steps.nsum_step)])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300"])
def test_non_finite_or_absurd_casework_counts_are_an_input_error(study_copy, tmp_path, value):
    from hiddenpop.errors import DataError
    from hiddenpop.study import steps
    from hiddenpop.study.runner import run_study

    casework = study_copy.parent / "data" / "casework.csv"
    lines = casework.read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    column = next(i for i, name in enumerate(header) if "victim" in name)
    first[column] = value
    casework.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=rf"casework.csv, row 1, column '{header[column]}': expected a non-negative"):
        run_study(load_study(study_copy), tmp_path / "run", steps=[("casework", steps.casework_step)])
    assert not (tmp_path / "run").exists()


def test_a_survey_without_a_header_row_is_reported_without_echoing_it(study_copy, tmp_path):
    from hiddenpop.errors import DataError
    from hiddenpop.study import steps
    from hiddenpop.study.runner import run_study

    survey = study_copy.parent / "data" / "survey.csv"
    lines = survey.read_text().splitlines()
    survey.write_text("\n".join(lines[1:]) + "\n")  # the first record now stands where the header was
    first_record = lines[1].split(",")
    with pytest.raises(DataError, match="no header row: the first line looks like data") as caught:
        run_study(load_study(study_copy), tmp_path / "run", steps=[("nsum", steps.nsum_step)])
    assert not any(len(cell) > 3 and cell in str(caught.value) for cell in first_record)
    assert not (tmp_path / "run").exists()


def test_report_log_exclusions_are_recorded_by_label_never_by_value(study_copy):
    """An excluded value may itself be an identifier: the settings a run records name it by position only."""
    import json

    _edit(study_copy, 'exclude = { category = "viral" }', 'exclude = { category = "viral", ip_address = "203.0.113.77" }')
    study = load_study(study_copy)
    recorded = json.dumps(study.settings())
    assert "203.0.113.77" not in recorded and "viral" not in recorded
    assert study.settings()["analyses"]["report_log"]["exclude"] == ["category=value #1", "ip_address=value #2"]
    assert study.specs["report_log"].exclude == ("category=viral", "ip_address=203.0.113.77")


@pytest.mark.parametrize(("old", "new", "message"), [
    ('distribution = "beta(17, 3)"', 'distribution = "beta(17)"',
     r"\[visibility.transmission\] key 'distribution': expected a number, beta\(a, b\) or lognormal"),
    ('distribution = "beta(17, 3)"', 'distribution = "lognormal(0.8, 0.1)"',
     r"\[visibility.transmission\] key 'distribution': a transmission rate lies in \(0, 1\]"),
    ('distribution = "beta(17, 3)"', "distribution = 1.5", r"a transmission rate lies in \(0, 1\]"),
    ('factor = "transmission_rate"', 'factor = "transmision_rate"',
     r"\[visibility.transmission\] key 'factor': 'transmision_rate' is not one of .*did you mean"),
    ('factor = "transmission_rate"', 'factor = "transmission_rate"\ngroups = ["victim"]',
     r"\[visibility.transmission\] key 'groups': hidden group or combination 'victim' is not declared"),
    ('source = "assumed', 'sauce = "assumed', r"\[visibility.transmission\]: unknown key 'sauce'"),
    ('method = "mle"', 'method = "mle"\ntransmission_rate = "0.8"',
     r"\[analyses.nsum\]: key 'transmission_rate' is set once for the whole study, in \[visibility.NAME\]"),
    ('headline = "nsum"\nwhy = "the same', 'why = "the same',
     r"\[combine.traffickers\]: missing required key 'headline'"),
])
def test_visibility_model_is_declared_once_and_checked(study_copy, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_study(_edit(study_copy, old, new))


def test_a_ratio_needs_both_headlines_from_one_analysis(study_copy):
    text = study_copy.read_text()
    assert text.count('headline = "nsum"') == 2
    _edit(study_copy, 'headline = "nsum"\nwhy = "the same', 'headline = "nsum_bayes"\nwhy = "the same')
    with pytest.raises(ConfigError, match=r"\[ratios.victims_per_trafficker\]: its numerator and denominator have "
                                          r"headlines from different analyses \(victims: nsum, traffickers: "
                                          r"nsum_bayes\)"):
        load_study(study_copy)


def test_visibility_declarations_expand_combinations_to_their_groups(study_copy):
    _edit(study_copy, 'factor = "transmission_rate"', 'factor = "transmission_rate"\ngroups = ["victims"]')
    study = load_study(study_copy)
    (declared,) = study.visibility
    assert declared.groups == ("children_nonlive", "children_live")
    adjust = study.adjustments()
    assert adjust.for_group("children_live")["transmission_rate"] == pytest.approx(0.85)
    assert adjust.for_group("adults_live")["transmission_rate"] == 1.0


@pytest.mark.parametrize(("old", "new", "message"), [
    ('focus = "PHL"', 'focus = "Philippines"', r"\[analyses.compare\]: key 'focus': expected an ISO 3166-1"),
    ('base_label = "children"', 'base_lable = "children"', r"unknown key 'base_lable' \(did you mean 'base_label'\?\)"),
    ('base_label = "children"', 'threshold = 3', r"key 'threshold' is set once for the whole study"),
    ('base_file = "data/child_population.csv"', 'base_file = "data/children.csv"', r"key 'base_file'.*file not found"),
])
def test_compare_table_is_checked_by_its_spec(study_copy, old, new, message):
    _edit(study_copy, old, new)
    with pytest.raises(ConfigError, match=message):
        load_study(study_copy)
