"""The committed corpus of broken files (tests/data/bad/) through the CLI: exit 2, one line, the expected message.

Most files run in-process through ``hiddenpop.cli.root`` (the console script's own error handling); two run as real
subprocesses to check the user sees one line and no traceback from a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pandas as pd
import pytest

from hiddenpop.cli import main
from hiddenpop.privacy import KEY_ENV

BAD = Path(__file__).parent / "data" / "bad"
EXPECTED = pd.read_csv(BAD / "expected.csv", dtype=str)
KEY = "0123456789abcdef0123456789abcdef"


def _args(family: str, path: Path, tmp_path: Path) -> list[str]:
    known = BAD / "_known.csv"
    common = ["--population", "1000000", "--hidden", "h1", "--bootstrap", "0"]
    if family == "nsum":
        return ["nsum", "estimate", str(path), "--known", str(known), *common, "--id-column", "id"]
    if family == "known":
        return ["nsum", "estimate", str(BAD / "nsum_ok.csv"), "--known", str(path), *common]
    if family == "capture":
        return ["capture", "closed", str(path)]
    if family == "events":
        return ["capture", "events", str(path), "--id", "ip", "--time", "reported_at", "--out-dir", str(tmp_path / "ev")]
    if family == "grid":
        return ["simulate", "grid", str(path), "--scheduler", "serial", "--out-dir", str(tmp_path / "grid")]
    raise AssertionError(f"unknown family {family} in expected.csv")


def _cells(path: Path) -> set[str]:
    """Cell values of a broken file that are not numbers or header names (must never be echoed)."""
    if path.suffix != ".csv":
        return set()
    try:
        frame = pd.read_csv(path, dtype=str, header=None, on_bad_lines="skip")
    except Exception:  # binary garbage has no cells to echo
        return set()
    values = set(frame.iloc[1:].stack().astype(str))
    return {v for v in values if len(v) > 3 and not v.replace(".", "").replace("-", "").isdigit()}


def test_every_corpus_file_is_listed():
    listed = set(EXPECTED["file"])
    present = {p.name for p in BAD.iterdir() if p.suffix in (".csv", ".toml")} - {
        "expected.csv", "_known.csv", "nsum_ok.csv"}
    assert present == listed


@pytest.mark.parametrize("row", EXPECTED.to_dict("records"), ids=list(EXPECTED["file"]))
def test_bad_file_gives_one_clear_line(row, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    path = BAD / row["file"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        main(_args(row["command"], path, tmp_path))
    stderr = err.getvalue()
    assert info.value.code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert row["message"] in lines[0]
    assert "Traceback" not in stderr + out.getvalue()
    for value in _cells(path):
        assert value not in lines[0], f"the message echoes a cell value of {row['file']}"


def test_valid_companion_file_passes(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        main(_args("known", BAD / "_known.csv", tmp_path))
    assert info.value.code in (0, None), err.getvalue()


@pytest.mark.parametrize("name", ["nsum_text_count.csv", "grid_not_toml.toml"])
def test_console_script_prints_one_line_without_traceback(run_cli, tmp_path, name):
    row = EXPECTED.set_index("file").loc[name]
    done = run_cli(*_args(row["command"], BAD / name, tmp_path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert row["message"] in done.stderr and "Traceback" not in done.stderr
