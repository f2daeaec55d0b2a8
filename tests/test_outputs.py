"""Output folders never destroy what hiddenpop did not write (hiddenpop.outputs; run, demo)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hiddenpop.errors import ConfigError
from hiddenpop.outputs import MARKER, check_output_folder, install_output_folder, partial_folder
from hiddenpop.study.demo import write_demo_study


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(out: Path, files: dict[str, str]) -> Path:
    partial = partial_folder(out)
    for name, text in files.items():
        (partial / name).parent.mkdir(parents=True, exist_ok=True)
        (partial / name).write_text(text)
    return partial


def test_a_folder_hiddenpop_did_not_write_is_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    with pytest.raises(ConfigError, match="did not write"):
        check_output_folder(mine)
    assert _tree(mine) == {"thesis.txt": hashlib.sha256(b"years of work").hexdigest()}


def test_new_and_empty_folders_are_used(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("new", "empty"):
        out = check_output_folder(tmp_path / name)
        install_output_folder(_build(out, {"a.csv": "1"}), out, command="test")
        assert (out / "a.csv").read_text() == "1" and (out / MARKER).is_file()


def test_a_previous_output_is_replaced_but_the_users_files_in_it_survive(tmp_path):
    out = check_output_folder(tmp_path / "run")
    install_output_folder(_build(out, {"report.html": "old", "tables/a.csv": "old"}), out, command="test")
    (out / "my-notes.txt").write_text("mine")
    (out / "tables" / "annotated.csv").write_text("mine too")
    out = check_output_folder(out)
    install_output_folder(_build(out, {"report.html": "new"}), out, command="test")
    assert (out / "report.html").read_text() == "new"
    assert not (out / "tables" / "a.csv").exists()
    assert (out / "my-notes.txt").read_text() == "mine" and (out / "tables" / "annotated.csv").read_text() == "mine too"
    assert not list(tmp_path.glob(".run.*"))


def test_a_users_file_with_the_name_of_a_new_output_is_kept_beside(tmp_path):
    out = check_output_folder(tmp_path / "run")
    install_output_folder(_build(out, {"report.html": "old"}), out, command="test")
    (out / "summary.docx").write_text("my edits")
    notes = install_output_folder(_build(out, {"report.html": "new", "summary.docx": "generated"}), out,
                                  command="test")
    kept = list(tmp_path.glob("run.kept-*"))
    assert len(kept) == 1 and (kept[0] / "summary.docx").read_text() == "my edits" and notes


def test_force_adds_beside_and_never_overwrites(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    out = check_output_folder(mine, force=True)
    install_output_folder(_build(out, {"report.html": "new"}), out, command="test", force=True)
    assert (mine / "thesis.txt").read_text() == "years of work" and (mine / "report.html").read_text() == "new"
    (mine / "notes.txt").write_text("also mine")
    partial = _build(out, {"notes.txt": "generated"})
    os.remove(mine / MARKER)
    with pytest.raises(ConfigError, match="would be overwritten"):
        install_output_folder(partial, out, command="test", force=True)
    assert (mine / "notes.txt").read_text() == "also mine"


def test_an_output_folder_cannot_hold_or_be_an_input(tmp_path):
    study = write_demo_study(tmp_path / "study", seed=3, profile="test")
    for out in (tmp_path / "study", tmp_path, study.parent / "data", study.parent / "keys", study.parent / "data" /
                "survey.csv"):
        with pytest.raises(ConfigError, match="hiddenpop reads"):
            check_output_folder(out, protect=[study.parent, *(study.parent / "data").iterdir(),
                                              *(study.parent / "keys").iterdir()])


@pytest.mark.parametrize("command", ["run", "demo"])
def test_run_and_demo_refuse_a_users_folder_and_leave_it_untouched(command, run_cli, tmp_path):
    study = write_demo_study(tmp_path / "study", seed=3, profile="test")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    before = _tree(tmp_path)
    args = ["run", study, "--out", mine] if command == "run" else ["demo", "--quick", "--out", mine]
    done = run_cli(*args, "--quiet")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "did not write" in done.stderr
    assert _tree(tmp_path) == before


def test_run_into_the_study_folder_or_its_data_is_refused(run_cli, tmp_path):
    study = write_demo_study(tmp_path / "study", seed=3, profile="test")
    before = _tree(tmp_path)
    for out in (study.parent, study.parent / "data", study.parent / "keys", tmp_path, "."):
        done = run_cli("run", study, "--out", out, "--quiet", cwd=study.parent)
        assert done.returncode == 2 and "hiddenpop reads" in done.stderr, done.stderr
    assert _tree(tmp_path) == before


def test_a_killed_run_leaves_the_previous_run_as_it_was(tmp_path):
    study = write_demo_study(tmp_path / "study", seed=3, profile="test")
    out = tmp_path / "runs" / "one"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.run([sys.executable, "-m", "hiddenpop.cli", "run", str(study), "--out", str(out),
                            "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    before = _tree(out)
    process = subprocess.Popen([sys.executable, "-m", "hiddenpop.cli", "run", str(study), "--out", str(out),
                                "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.parent.glob(".one.partial-*")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert _tree(out) == before
    again = subprocess.run([sys.executable, "-m", "hiddenpop.cli", "run", str(study), "--out", str(out),
                            "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr


def test_an_internal_error_in_an_analysis_exits_1_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from hiddenpop.cli import main
    from hiddenpop.study import steps

    study = write_demo_study(tmp_path / "study", seed=3, profile="test")

    def crash(context):
        raise RuntimeError("respondent R00042 said 7")

    monkeypatch.setattr(steps, "casework_step", crash)
    monkeypatch.delenv("HIDDENPOP_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and len(err) == 1 and err[0].startswith("error: internal error")
    assert "'casework'" in err[0] and "R00042" not in err[0]
    assert not (tmp_path / "run").exists()


def test_the_manifest_names_the_bytes_read_and_only_a_fingerprint_of_the_key(tmp_path):
    import json

    from hiddenpop.study.runner import run_study
    from hiddenpop.study.schema import load_study
    from hiddenpop.study.steps import casework_step

    study = load_study(write_demo_study(tmp_path / "study", seed=3, profile="test"))
    outcome = run_study(study, tmp_path / "run", steps=[("casework", casework_step)])
    manifest = json.loads((outcome.folder / "manifest.json").read_text())
    key_hash = hashlib.sha256(study.key_file.read_bytes()).hexdigest()
    assert key_hash not in json.dumps(manifest)
    assert study.key_file.name not in {item["file"] for item in manifest["inputs"]}
    assert len(manifest["privacy"]["key_fingerprint"]) > 0

    def rewrite_survey(context):
        survey = Path(context.study.survey["file"])
        survey.write_text(survey.read_text() + "\n")
        return casework_step(context)

    before = _tree(tmp_path)
    with pytest.raises(ConfigError, match="changed while the run was reading it"):
        run_study(study, tmp_path / "run", steps=[("casework", rewrite_survey)])
    after = _tree(tmp_path)
    changed = {name for name in before if before[name] != after.get(name)}
    assert changed == {"study/data/survey.csv"}  # the run folder is as it was
