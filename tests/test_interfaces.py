"""One definition per analysis: the study file and the command line offer the same options, and no message advises
an option or a value that does not exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer

from cli_commands import COMMAND_INPUTS, INTERFACE, spec_commands
from hiddenpop.cli import root
from hiddenpop.nsum.specs import SurveyOptions
from hiddenpop.specs import fields_of
from hiddenpop.study.schema import ANALYSIS_KEYS, ANALYSIS_SPECS, STUDY_WIDE, analysis_keys, survey_keys

SRC = Path(__file__).resolve().parents[1] / "src" / "hiddenpop"
COMMANDS = {path: (command, spec) for path, command, spec in spec_commands()}
#: The commands that run each spec-driven study analysis.
STUDY_COMMANDS = {"nsum": ("nsum estimate",), "nsum_bayes": ("nsum bayes",),
                  "smallarea": ("smallarea pool", "smallarea extrapolate"), "report_log": ("capture events",),
                  "cases": ("cases summarize",), "mse": ("capture mse",),
                  "compare": ("compare referrals",)}
#: Study keys that choose which commands run, rather than how.
STUDY_CHOICES = {"methods"}
#: What each study table reads (files, columns, groups) rather than how it computes, with the command input that
#: takes the same thing. A new option must go into the analysis's spec, not here: this list is checked exactly.
STUDY_INPUTS = {
    "nsum": {"enabled": "-"},
    "nsum_bayes": {"enabled": "-", "degree": "the survey's known groups", "hidden": "hidden"},
    "smallarea": {"enabled": "-", "file": "areas_path", "id": "id_", "population": "population",
                  "region": "region", "streams": "streams", "target": "target", "name": "name",
                  "geometry": "geometry", "geometry_key": "geometry_key"},
    "report_log": {"enabled": "-", "files": "files", "id": "identifier", "time": "time"},
    "cases": {"enabled": "-", "file": "cases", "codebook": "codebook"},
    "mse": {"enabled": "-", "file": "file", "quantity": "-"},
    "compare": {"enabled": "-", "file": "referrals", "base_file": "base_file"},
}


def _command_options(name: str) -> set[str]:
    return {p.name for path in STUDY_COMMANDS[name] for p in COMMANDS[path][0].params} - INTERFACE


def test_every_spec_driven_study_analysis_has_its_commands():
    assert set(ANALYSIS_SPECS) == set(STUDY_COMMANDS)
    for name, paths in STUDY_COMMANDS.items():
        offered = {info.name for path in paths for info in fields_of(COMMANDS[path][1])}
        declared = {info.name for info in fields_of(ANALYSIS_SPECS[name])} - STUDY_CHOICES
        assert declared <= offered, f"{paths} lack options {sorted(declared - offered)} of [analyses.{name}]"


@pytest.mark.parametrize("name", sorted(STUDY_COMMANDS))
def test_study_table_and_commands_offer_the_same_options(name):
    cli = _command_options(name)
    study = set(analysis_keys(name))
    options = {info.name for info in fields_of(ANALYSIS_SPECS[name])}
    # every option of the analysis is a key of its study table (but the study-wide seed) and a command option
    assert options - set(STUDY_WIDE) <= study
    assert options - STUDY_CHOICES <= cli
    # every command option is a study key, a [survey] key, or an input the study declares in its own tables
    unexplained = cli - study - set(survey_keys()) - set(COMMAND_INPUTS) - set(STUDY_WIDE)
    assert not unexplained, f"{name}: command options {sorted(unexplained)} have no study-file key"
    # every study key is a command option, an input the command takes as a file, column or group, or a choice
    # of which commands run
    inputs = set(ANALYSIS_KEYS[name])
    assert inputs == set(STUDY_INPUTS[name]), f"[analyses.{name}]: a key outside its spec; declare options in the spec"
    assert study - cli - inputs - STUDY_CHOICES == set(), f"{name}: study keys {sorted(study - cli)} have no flag"
    assert {flag for flag in STUDY_INPUTS[name].values() if flag != "-" and " " not in flag} <= cli


def test_survey_reading_options_are_one_declaration():
    assert survey_keys()[2:] == [info.name for info in fields_of(SurveyOptions)]
    command, _ = COMMANDS["nsum estimate"]
    assert {info.name for info in fields_of(SurveyOptions)} <= {p.name for p in command.params}


FLAG = r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9](?![\w-])"
#: Study-file templates, whose keys (e.g. a degree's method) are checked by loading the study they write.
TEMPLATES = {"study/demo.py"}
#: Modules that run another program: their flags are that program's (headless Chromium's), not hiddenpop's.
OTHER_PROGRAMS = {"study/report/exports.py"}


def _all_flags() -> set[str]:
    flags: set[str] = set()

    def walk(command) -> None:
        for param in command.params:
            flags.update(param.opts)
            flags.update(getattr(param, "secondary_opts", []))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(root.complete_app()))
    return flags


def _string_constants() -> list[tuple[str, str]]:
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found.append((path.relative_to(SRC).as_posix(), node.value))
    return found


def test_no_message_advises_a_flag_that_does_not_exist():
    flags = _all_flags()
    stale = sorted({(where, flag) for where, text in _string_constants() if where not in OTHER_PROGRAMS
                    for flag in re.findall(FLAG, text) if flag not in flags})
    assert not stale, f"messages name flags no command has: {stale}"


def _family(module: str) -> str:
    """The family a module or source file belongs to (``hiddenpop.smallarea.specs`` and ``smallarea/x.py``)."""
    parts = module.replace("/", ".").split(".")
    return parts[1] if parts[0] == "hiddenpop" else parts[0]


def test_no_message_advises_a_value_an_option_does_not_allow():
    """``engine='nuts'`` in a smallarea message must be a value of a smallarea option called engine; messages of
    the study layer are held to every study analysis's options."""
    specs = [spec for _, spec in COMMANDS.values()] + list(ANALYSIS_SPECS.values())
    choices: dict[tuple[str, str], set[str]] = {}
    for spec in specs:
        for info in fields_of(spec):
            if info.choices:
                for family in (_family(spec.__module__), "study"):
                    choices.setdefault((family, info.name), set()).update(info.choices)
    wrong = sorted({(where, key, value) for where, text in _string_constants()
                    for key, value in re.findall(r"\b([a-z_]+)\s*=\s*['\"]([\w-]+)['\"]", text)
                    if (_family(where), key) in choices and value not in choices[(_family(where), key)]
                    and where not in TEMPLATES})
    assert not wrong, f"messages advise values their option does not allow: {wrong}"


def test_the_checks_above_can_fail():
    """The scanners see a stale flag and a wrong value when there is one."""
    text = "refit with --no-such-flag or engine='warp'"
    assert re.findall(FLAG, text) == ["--no-such-flag"]
    assert "--no-such-flag" not in _all_flags()
    assert re.findall(r"\b([a-z_]+)\s*=\s*['\"]([\w-]+)['\"]", text) == [("engine", "warp")]


def test_study_file_docs_show_each_tables_options_as_declared():
    from cli_commands import marked, study_blocks

    text = (SRC.parents[1] / "docs" / "study-file.md").read_text()
    for name, table in study_blocks().items():
        assert marked(name, table) in text, f"docs/study-file.md: run `python tests/cli_commands.py` ({name})"


@pytest.mark.parametrize("top", list(root.COMMANDS))
def test_top_level_listing_matches_the_command_it_loads(top):
    """``hiddenpop --help`` lists each command from the registry without importing it; what it says must be what
    the loaded command says, and the command must be the one its name promises."""
    command = root.build(top)
    assert command.name == top
    assert command.help.strip().splitlines()[0] == root.COMMANDS[top].help
    assert bool(getattr(command, "commands", None)) == root.COMMANDS[top].group


@pytest.mark.parametrize("top", [name for name, entry in root.COMMANDS.items() if len(entry.modules) > 1])
def test_a_group_built_for_one_subcommand_stops_at_its_module_and_lists_all_otherwise(top):
    """A group of several modules loads only up to the module of the subcommand that runs; asked for its help (or
    with an option first) it lists the subcommands of every module."""
    everything = set(root.build(top).commands)
    for name in everything:
        built = set(root.build(top, [name, "--help"]).commands)
        assert name in built and built <= everything
    assert set(root.build(top, ["--help", sorted(everything)[0]]).commands) == everything
    assert set(root.build(top, ["no-such-command"]).commands) == everything
    first_module = set(root.build(top, [next(iter(root.build(top).commands))]).commands)
    assert first_module < everything  # the later modules were not needed


def test_top_level_help_imports_no_family():
    """Start-up: ``hiddenpop --help`` must not pay for pandas, SciPy or any family (they cost a second)."""
    import subprocess
    import sys

    code = ("import sys; from hiddenpop.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pandas', 'scipy', 'numpy', 'jax'} "
            "or m.startswith(('hiddenpop.nsum', 'hiddenpop.capture', 'hiddenpop.study', 'hiddenpop.smallarea'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert all(top in done.stdout for top in root.COMMANDS)


#: Start-up: what a small command must not import (each costs 0.1-0.5 s of CPU, more than the job). None needs
#: ``scipy.optimize``: the profile-likelihood intervals use ``hiddenpop.brent``, and SciPy's special functions come
#: from ``hiddenpop.special`` without ``scipy.special``'s array-API layer (an MSE design whose estimate's existence
#: needs the linear program still loads it; the UK lists' designs do not). A group loads only the module of the subcommand that runs (``capture closed`` does not load the
#: report-log commands), and a capture command only the analyses of its kind of input: no NUTS sampler, no
#: latent-class model, no class comparison or strata, for closed and open no MSE fitting either, and for open
#: no closed models (only the robust design fits them) and no report-log reading. pandas is
#: still on every one of these paths (docs/performance.md says what it would take).
_SAMPLER = ("jax", "numpyro", "hiddenpop.mcmc.nuts", "hiddenpop.mcmc.diagnostics", "hiddenpop.capture.lists.latent",
            "hiddenpop.capture.lists.compare", "hiddenpop.capture.lists.strata")
_MSE = ("hiddenpop.capture.lists.models", "hiddenpop.capture.lists.fitting", "hiddenpop.capture.lists.selection",
        "hiddenpop.capture.lists.bootstrap", "hiddenpop.capture.lists.existence", "hiddenpop.capture.lists.graphs",
        "hiddenpop.capture.analyses.lists")
NOT_IMPORTED = {
    "capture closed": ("scipy.optimize", "scipy.special", "scipy.stats", "duckdb", "hiddenpop.nsum", "hiddenpop.study",
                       "hiddenpop.cli.capture_events", "hiddenpop.capture.analyses.logs",
                       "hiddenpop.capture.analyses.histories", *_SAMPLER, *_MSE),
    "capture open": ("scipy.optimize", "scipy.special", "scipy.stats", "duckdb", "hiddenpop.nsum", "hiddenpop.study",
                     "hiddenpop.capture.analyses.closed", "hiddenpop.capture.analyses.logs", "hiddenpop.capture.closed.models",
                     "hiddenpop.capture.events.robust", "hiddenpop.capture.events.rolling",
                     "hiddenpop.capture.events.reader", *_SAMPLER, *_MSE),
    "capture mse": ("scipy.optimize", "scipy.special", "scipy.stats", "duckdb", "hiddenpop.nsum", "hiddenpop.study", "hiddenpop.cli.capture_events",
                    "hiddenpop.capture.analyses.closed", *_SAMPLER),
    "nsum estimate": ("scipy.optimize", "scipy.special", "scipy.stats", "duckdb", "hiddenpop.capture", "hiddenpop.mcmc",
                      "hiddenpop.nsum.bayes", "hiddenpop.study", "hiddenpop.cli.nsum_bayes", *_SAMPLER),
}


#: The compiled extension modules under ``scipy.special`` that ``hiddenpop.special`` loads without the package.
COMPILED_SPECIAL = ("scipy.special._ufuncs", "scipy.special._ufuncs_cxx", "scipy.special._special_ufuncs",
                    "scipy.special._gufuncs", "scipy.special._ellip_harm_2")


@pytest.fixture(scope="module")
def small_job_files(tmp_path_factory):
    from hiddenpop import datasets
    from hiddenpop.simulate.ard import NATIONAL_POPULATION, simulate_national_ard

    folder = tmp_path_factory.mktemp("small_jobs")
    for name in ("rcapture_hare", "mse_UKdat_5", "rcapture_duck"):
        datasets.load(name).to_csv(folder / f"{name}.csv", index=False)
    survey = simulate_national_ard(seed=1, n_respondents=600, n_psu=60)
    survey.frame.to_csv(folder / "survey.csv", index=False)
    survey.known_table.to_csv(folder / "known.csv", index=False)
    hidden = [flag for group in survey.ard.hidden for flag in ("--hidden", group)]
    return {
        "capture closed": ["capture", "closed", str(folder / "rcapture_hare.csv")],
        "capture open": ["capture", "open", str(folder / "rcapture_duck.csv")],
        "capture mse": ["capture", "mse", str(folder / "mse_UKdat_5.csv"), "--select", "aic"],
        "nsum estimate": ["nsum", "estimate", str(folder / "survey.csv"), "--known", str(folder / "known.csv"),
                          "--population", str(NATIONAL_POPULATION), *hidden, "--weights", "weight",
                          "--strata", "stratum", "--psu", "psu", "--bootstrap", "100"],
    }


@pytest.mark.parametrize("command", sorted(NOT_IMPORTED))
def test_small_commands_import_only_what_they_use(command, small_job_files):
    """The benchmarked small jobs (benchmarks/startup.py) run to the end without loading what they do not use."""
    import json
    import subprocess
    import sys

    code = ("import json, sys; from hiddenpop.cli import main\n"
            f"try:\n    main({small_job_files[command]!r})\nexcept SystemExit as exc:\n    assert not exc.code\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "numpy" in loaded and "hiddenpop.cli.common" in loaded  # the job ran
    unwanted = [m for m in loaded if any(m == name or m.startswith(name + ".") for name in NOT_IMPORTED[command])
                and not m.startswith(COMPILED_SPECIAL)]
    assert unwanted == []
