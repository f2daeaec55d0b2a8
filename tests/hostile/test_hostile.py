"""Every case of the hostile-input corpus (tests/hostile/cases/*.toml) through the console script's entry point.

See tests/hostile/README.md for the case format. A failing case must exit with its code, print one clear line and
leave the folder it ran in byte for byte as it was; no case may print or write any of its listed secrets.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hiddenpop.cli import main

HERE = Path(__file__).parent
CASES = sorted((HERE / "cases").glob("*.toml"))
DATA = HERE / "data"


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 (or 'dir') of everything under ``folder``, hidden files included."""
    state: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        state[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def _expand(value: str, tmp: Path) -> str:
    return value.replace("{tmp}", str(tmp)).replace("{corpus}", str(DATA))


def _prepare(case: dict, tmp: Path) -> None:
    for name, text in case.get("files", {}).items():
        target = tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_expand(text, tmp), encoding="utf-8")
    for name, source in case.get("binary", {}).items():
        target = tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.startswith("base64:"):
            target.write_bytes(base64.b64decode(source.removeprefix("base64:")))
        else:
            shutil.copyfile(DATA / source, target)


def _run(case: dict, tmp: Path, monkeypatch) -> tuple[int, str, str]:
    args = [_expand(a, tmp) for a in case["args"]]
    env = {k: _expand(v, tmp) for k, v in case.get("env", {}).items()}
    if case.get("subprocess", False):
        import os

        done = subprocess.run(
            [sys.executable, "-m", "hiddenpop.cli", *args],
            capture_output=True, text=True, cwd=tmp, env={**os.environ, **env}, timeout=600,
        )
        return done.returncode, done.stdout, done.stderr
    monkeypatch.chdir(tmp)
    monkeypatch.delenv("HIDDENPOP_DEBUG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def _written_text(tmp: Path, before: dict[str, str]) -> str:
    """Everything the command wrote or changed, decoded leniently (secrets must not appear in it)."""
    chunks = []
    for path in sorted(tmp.rglob("*")):
        key = str(path.relative_to(tmp))
        if path.is_file() and before.get(key) != hashlib.sha256(path.read_bytes()).hexdigest():
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def test_corpus_is_not_empty():
    assert len(CASES) >= 1


@pytest.mark.parametrize("case_path", CASES, ids=[p.stem for p in CASES])
def test_hostile_case(case_path: Path, tmp_path: Path, monkeypatch):
    case = tomllib.loads(case_path.read_text(encoding="utf-8"))
    assert case.get("about"), f"{case_path.name}: say what is hostile about this input"
    _prepare(case, tmp_path)
    before = _snapshot(tmp_path)
    code, stdout, stderr = _run(case, tmp_path, monkeypatch)
    expected = case.get("exit", 2)
    assert code == expected, f"exit {code}, expected {expected}; stderr: {stderr[-2000:]}"
    assert "Traceback" not in stdout + stderr
    if expected != 0:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert re.search(case["message"], lines[0]), f"{lines[0]!r} does not match {case['message']!r}"
        assert _snapshot(tmp_path) == before, "a failing command changed, created or deleted files"
    elif "message" in case:
        assert re.search(case["message"], stdout + stderr), f"{case['message']!r} not in the output"
    written = _written_text(tmp_path, before)
    for secret in case.get("secrets", []):
        assert secret not in stdout, f"stdout shows {secret!r}"
        assert secret not in stderr, f"stderr shows {secret!r}"
        assert secret not in written, f"a written file holds {secret!r}"
