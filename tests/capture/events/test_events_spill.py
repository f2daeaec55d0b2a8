"""Raw identifiers never rest on disk: DuckDB spills only pseudonyms, into a private folder removed on exit.

A report log large enough to spill under a small memory limit is read by ``capture events`` in a subprocess. The
run is killed with SIGKILL (uncatchable) once DuckDB has written spill files: nothing on disk (spill folder,
working folder, output folder) may then hold any raw address. With SIGTERM the private spill folder must be gone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SRC = str(Path(__file__).resolve().parents[3] / "src")
KEY = "0123456789abcdef0123456789abcdef"
ROWS = 1_200_000
IDENTIFIERS = 400_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> tuple[Path, list[str]]:
    """A CSV of ROWS reports over IDENTIFIERS distinct IPv4 addresses (written once per test module)."""
    folder = tmp_path_factory.mktemp("spill-log")
    rng = np.random.default_rng(19)
    codes = rng.choice(2**32 - 2**24, size=IDENTIFIERS, replace=False) + 2**24  # first octet >= 1
    addresses = np.array([f"{c >> 24}.{(c >> 16) & 255}.{(c >> 8) & 255}.{c & 255}" for c in codes.tolist()])
    picks = rng.integers(0, IDENTIFIERS, size=ROWS)
    seconds = rng.integers(0, 365 * 86400, size=ROWS)
    times = (pd.Timestamp("2016-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s")).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    frame = pd.DataFrame({"ip": addresses[picks], "time": times})
    frame.to_csv(folder / "reports.csv", index=False)
    (folder / "key.txt").write_text(KEY + "\n")
    (folder / "key.txt").chmod(0o600)
    return folder, sorted(set(addresses[picks].tolist()))


def _start(log: Path, cwd: Path, tmpdir: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "TMPDIR": str(tmpdir)}
    env.pop("HIDDENPOP_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hiddenpop.cli", "capture", "events", str(log / "reports.csv"), "--id", "ip",
         "--id-kind", "ip", "--time", "time", "--key-file", str(log / "key.txt"), "--memory-limit", "100MB",
         "--threads", "1", "--quiet", "--out-dir", str(out)],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _wait_for_spill(process: subprocess.Popen, tmpdir: Path, timeout: float = 120.0) -> list[Path]:
    """Poll until DuckDB has written a spill file into a private folder under ``tmpdir``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spilled = []
        for path in tmpdir.glob("hiddenpop-duckdb-*/**/*"):
            try:
                if path.is_file() and path.stat().st_size > 0:
                    spilled.append(path)
            except FileNotFoundError:  # DuckDB removes spill files it no longer needs
                continue
        if spilled:
            return spilled
        if process.poll() is not None:
            pytest.fail(f"capture events ended before spilling: {process.stderr.read().decode()[-400:]}")
        time.sleep(0.02)
    process.kill()
    pytest.fail("DuckDB never spilled; make the log bigger or the memory limit smaller")


def _files(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()]


def test_sigkill_leaves_no_raw_address_on_disk(big_log, tmp_path):
    log, raw = big_log
    cwd, tmpdir, out = tmp_path / "cwd", tmp_path / "tmp", tmp_path / "cwd" / "run"
    cwd.mkdir()
    tmpdir.mkdir()
    process = _start(log, cwd, tmpdir, out)
    spilled = _wait_for_spill(process, tmpdir)
    time.sleep(0.5)  # let it spill more
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    private = spilled[0].relative_to(tmpdir).parts[0]
    assert (os.stat(tmpdir / private).st_mode & 0o777) == 0o700
    assert not (cwd / ".tmp").exists(), "DuckDB spilled into the working folder"
    files = _files(tmpdir, cwd)
    assert files, "the spill files should still be there after SIGKILL (nothing can remove them)"
    # every address-shaped string in every file the run left behind, compared with the raw addresses
    raw_set = {address.encode() for address in raw}
    shaped = re.compile(rb"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9])")
    for path in files:
        found = raw_set.intersection(shaped.findall(path.read_bytes()))
        assert not found, f"{path.name} holds {len(found)} raw addresses"


def test_sigterm_removes_the_private_spill_folder(big_log, tmp_path):
    log, _raw = big_log
    cwd, tmpdir, out = tmp_path / "cwd", tmp_path / "tmp", tmp_path / "cwd" / "run"
    cwd.mkdir()
    tmpdir.mkdir()
    process = _start(log, cwd, tmpdir, out)
    _wait_for_spill(process, tmpdir)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert list(tmpdir.iterdir()) == [], "the private spill folder outlived SIGTERM"
    assert not (cwd / ".tmp").exists()


def test_a_forked_child_never_removes_the_parents_spill_folders(tmp_path):
    """Pool workers are forked: when one is terminated (SIGTERM), its cleanup must not delete the spill folders
    the parent is still using (it did, and crashed interrupting an inherited DuckDB connection)."""
    import os
    import signal

    from hiddenpop.capture.events import reader

    folder = reader.private_temp_directory(str(tmp_path))
    pid = os.fork()
    if pid == 0:  # the child: run the cleanup a SIGTERM would run, then leave without Python's exit handlers
        try:
            reader._remove_private_dirs()
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) or os.WTERMSIG(status) == signal.SIGTERM
    assert os.path.isdir(folder)  # still there for the parent
    reader._remove_private_dirs()
    assert not os.path.exists(folder)
