"""Open the demo report in headless Chromium: no script or console errors, the key sections render, and a
screenshot is kept under tests/artifacts/ for people to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hiddenpop.study.runner import run_study
from hiddenpop.study.schema import load_study

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "tests" / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=15000"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report(demo_study, tmp_path_factory) -> Path:
    outcome = run_study(load_study(demo_study), tmp_path_factory.mktemp("browser") / "run")
    return outcome.folder / "report.html"


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.fail("headless Chromium is missing: run `make browser` (installs Debian's chromium)")
    profile = tmp_path / "chromium-profile"
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           *args], capture_output=True, text=True, timeout=180)


def test_report_is_self_contained(report):
    html = report.read_text(encoding="utf-8")
    # plotly.js is inlined exactly once and nothing is loaded from the network
    assert html.count("plotly.js v") <= 2 and html.count("<script>") >= 2
    assert len(re.findall(r"Plotly\.newPlot\(", html)) >= 1
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"?https?://", html)
    assert 'src="https://' not in html and "src='https://" not in html
    for section in ("headline", "triangulation", "diagnostics", "rolling", "areas", "cleaning", "cases",
                    "methods", "reproducibility"):
        assert f'<section id="{section}">' in html


def test_report_renders_without_errors_in_chromium(report, tmp_path):
    url = report.resolve().as_uri()
    dumped = _chromium(tmp_path, "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    status = re.search(r'<div id="render-status"[^>]*data-js-errors="(-?\d+)"[^>]*>(.*?)</div>', dom, re.S)
    assert status is not None, "the page's load handler did not run"
    assert status.group(1) == "0", f"script errors in the report: {status.group(2)[:1000]}"
    plots = re.search(r'data-plots="(\d+)"', status.group(0))
    assert plots is not None and int(plots.group(1)) >= 1
    console_errors = [line for line in dumped.stderr.splitlines()
                      if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)]
    assert console_errors == []
    for section, text in (("headline", "Headline estimates"), ("triangulation", "Triangulation"),
                          ("diagnostics", "Diagnostics"), ("methods", "Methods in plain language")):
        match = re.search(rf'<section id="{section}">(.*?)</section>', dom, re.S)
        assert match is not None and text in match.group(1), f"section {section} did not render"
    headline = re.search(r'<section id="headline">(.*?)</section>', dom, re.S).group(1)
    assert "Child victims" in headline and "Adult traffickers" in headline and "Victims per trafficker" in headline
    # plotly rendered real SVG into its divs
    assert 'class="main-svg"' in dom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    shot = _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,3000", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000
    shutil.copy(report, ARTIFACTS / "report.html")
