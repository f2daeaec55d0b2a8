"""The demo report as a reader gets it: opened in headless Chromium (driven by Selenium and chromium-driver) at
1,400 and 800 px, printed to PDF, and summarised in Word.

Checks: no script or console errors, nothing wider than its container, one map shape per area, every figure with
a title, axis titles and a text alternative, no serious or critical axe-core violations, the PDF on A4 with page
numbers and the headline numbers, the Word file with the headline table and the map, and the same numbers in
all three. A screenshot of the first screen is kept in tests/artifacts/ (the README's picture is a copy).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from hiddenpop.study.report.exports import CHROMIUM_FLAGS, chromium
from hiddenpop.study.runner import run_study
from hiddenpop.study.schema import load_study

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
A4_POINTS = (595.28, 841.89)  # 210 x 297 mm; Chromium writes the page box rounded to 1/25 pt (841.92)

pytestmark = pytest.mark.browser

# Elements sticking out of their parent (scrolling table regions and SVG internals excepted), and page overflow.
OVERFLOW_JS = """
const found = [];
const root = document.documentElement;
if (root.scrollWidth > root.clientWidth + 1) found.push("page " + root.scrollWidth + " > " + root.clientWidth);
for (const el of document.querySelectorAll("body *")) {
  const parent = el.parentElement;
  if (!parent || el.closest("svg") || parent.closest(".table-wrap") || el.closest("[hidden]")) continue;
  if (el.closest("details:not([open]) > :not(summary)")) continue;
  const r = el.getBoundingClientRect(), p = parent.getBoundingClientRect();
  if (r.width === 0 || r.height === 0 || getComputedStyle(el).position === "fixed") continue;
  if (r.right > p.right + 1.5 || r.left < p.left - 1.5)
    found.push(el.tagName + "#" + el.id + "." + el.className + " by " + Math.round(Math.max(r.right - p.right, p.left - r.left)));
}
return found.slice(0, 20);
"""

FIGURES_JS = """
const problems = [];
for (const figure of document.querySelectorAll("figure")) {
  const title = figure.querySelector("h3");
  if (!title || !title.textContent.trim()) problems.push(figure.id + ": no title");
  const alt = figure.querySelector(".alt");
  const img = figure.querySelector("img");
  if (!(alt && alt.textContent.trim().length > 20) && !(img && img.alt)) problems.push(figure.id + ": no text alternative");
}
for (const plot of document.querySelectorAll(".js-plotly-plot")) {
  const layout = plot._fullLayout;
  for (const key of Object.keys(layout).filter(k => /^[xy]axis\\d*$/.test(k))) {
    const axis = layout[key];
    if (axis.visible === false) continue;
    if (!(axis.title && axis.title.text)) problems.push(plot.id + " " + key + ": no axis title");
  }
}
return problems;
"""


@pytest.fixture(scope="module")
def run(demo_study, tmp_path_factory) -> Path:
    outcome = run_study(load_study(demo_study), tmp_path_factory.mktemp("browser") / "run")
    return outcome.folder


@pytest.fixture(scope="module")
def driver():
    executable = chromium()
    if executable is None or shutil.which("chromedriver") is None:
        pytest.fail("headless Chromium or chromium-driver is missing: run `make browser`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = executable
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    browser.set_script_timeout(120)
    yield browser
    browser.quit()


def _open(driver, report: Path, width: int, height: int = 1000) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_window_size(width, height)
    driver.get(report.resolve().as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element("id", "render-status").get_attribute("data-js-errors") != "-1")
    driver.execute_script("window.dispatchEvent(new Event('resize'));")
    driver.execute_async_script("setTimeout(arguments[0], 400);")  # let Plotly re-lay out at this width


def _headline_numbers(run: Path) -> list[str]:
    from hiddenpop.formatting import format_value, kind_for

    headline = pd.read_csv(run / "tables" / "headline.csv")
    rows = headline[headline["quantity"].isin(["victims", "traffickers", "victims_per_trafficker"])]
    return [format_value(v, kind_for("estimate", u)) for v, u in zip(rows["estimate"], rows["unit"], strict=True)]


def test_report_is_self_contained(run):
    html = (run / "report.html").read_text(encoding="utf-8")
    assert html.count("<script>") >= 2 and len(re.findall(r"Plotly\.newPlot\(", html)) >= 5
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"?https?://", html)
    assert 'src="https://' not in html and "src='https://" not in html
    for section in ("summary", "assumptions", "triangulation", "areas", "rolling", "cases", "methods", "appendix"):
        assert f'<section id="{section}"' in html
    # the technical parts are collapsed in the appendix
    appendix = html[html.index('<section id="appendix"'):]
    for part in ("diagnostics", "cleaning", "estimates", "reproducibility"):
        assert f'<details class="appendix-part" id="{part}">' in appendix


@pytest.mark.parametrize("width", [1400, 800])
def test_report_renders_cleanly_at_each_width(run, driver, width):
    _open(driver, run / "report.html", width)
    status = driver.find_element("id", "render-status")
    assert status.get_attribute("data-js-errors") == "0", status.get_attribute("textContent")[:1000]
    severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    assert int(status.get_attribute("data-plots")) >= 5
    assert driver.execute_script(OVERFLOW_JS) == []
    # the first screen: headline numbers, the map and the comparison
    summary = driver.find_element("id", "summary").text
    for number in _headline_numbers(run):
        assert number in summary
    assert driver.find_element("id", "figure-map").is_displayed()
    assert driver.find_element("id", "figure-comparison").is_displayed()
    if width == 1400:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "report-first-screen.png"
        shot.unlink(missing_ok=True)
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 30_000
        assert (ROOT / "docs" / "images" / "report-first-screen.png").is_file()  # the README's reduced copy
        shutil.copy(run / "report.html", ARTIFACTS / "report.html")


def test_map_has_one_shape_per_area_and_every_figure_is_labelled(run, driver):
    _open(driver, run / "report.html", 1400)
    areas = pd.read_csv(run / "tables" / "area_estimates.csv")
    shapes = driver.execute_script(
        "return document.getElementById('plot-map').data.filter(t => t.meta === 'area').map(t => t.name);")
    assert sorted(shapes) == sorted(areas["area"].astype(str))
    drawn = driver.execute_script("return document.querySelectorAll('#plot-map .scatterlayer .trace').length;")
    assert drawn >= len(areas)
    hover = driver.execute_script("return document.getElementById('plot-map').data.find(t => t.meta === 'area').text;")
    assert "interval" in hover and "<b>" in hover  # name, value and interval on hover
    assert driver.execute_script(FIGURES_JS) == []
    for name in ("map", "comparison", "headline_sensitivity", "consistency", "rolling", "importance"):
        for suffix in ("png", "svg"):
            assert (run / "figures" / f"{name}.{suffix}").stat().st_size > 1000


def test_no_serious_accessibility_violations(run, driver):
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `make browser`")
    _open(driver, run / "report.html", 1400)
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[0]; axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.length]))).catch(e => done(String(e)));")
    assert isinstance(result, list), result
    serious = [v for v in result if v[1] in ("serious", "critical")]
    assert serious == []


def _pdf_text(pdf: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: run `make browser` (installs poppler-utils)")
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_pdf_is_a4_with_page_numbers_and_the_headline(run):
    pdf = run / "report.pdf"
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "999", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    sizes = [tuple(float(x) for x in m) for m in re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", info)]
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert len(sizes) == pages > 3
    assert all(w <= A4_POINTS[0] + 0.05 and h <= A4_POINTS[1] + 0.05 for w, h in sizes)
    text = _pdf_text(pdf)
    assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text
    for number in _headline_numbers(run):
        assert number in text
    assert b"D:2000010100000" in pdf.read_bytes()  # fixed dates: reruns give the same bytes


def test_word_summary_has_the_headline_table_map_and_methods(run):
    from docx import Document

    document = Document(str(run / "summary.docx"))
    table = document.tables[0]
    header = [cell.text for cell in table.rows[0].cells]
    assert header[:2] == ["Quantity", "Estimate"]
    cells = [[cell.text for cell in row.cells] for row in table.rows[1:]]
    numbers = _headline_numbers(run)
    assert [row[1] for row in cells if row[1] in numbers] == numbers
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert "Methods" in headings and "Headline" in headings
    with zipfile.ZipFile(run / "summary.docx") as archive:
        media = [name for name in archive.namelist() if name.startswith("word/media/")]
        assert len(media) == 2
        assert (run / "figures" / "map.png").read_bytes() in [archive.read(name) for name in media]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_same_numbers_in_html_pdf_and_word(run):
    from docx import Document

    html = (run / "report.html").read_text(encoding="utf-8")
    pdf = _pdf_text(run / "report.pdf")
    word = "\n".join(p.text for p in Document(str(run / "summary.docx")).paragraphs)
    headline = pd.read_csv(run / "tables" / "headline.csv").set_index("quantity")
    from hiddenpop.formatting import format_interval

    victims = headline.loc["victims"]
    interval = format_interval(victims["lower"], victims["upper"], "count")
    sentence = re.search(r"An estimated ([\d,]+) child victims \(95% interval ([\d,]+ to [\d,]+)\)", word)
    assert sentence is not None
    assert sentence.group(2) == interval
    for text in (html, pdf, word):
        assert interval in text and sentence.group(1) in text
