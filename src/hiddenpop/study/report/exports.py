"""The report for print and for editing: ``report.pdf`` (headless Chromium prints ``report.html`` with its print
stylesheet: A4, page numbers, sections on new pages, the appendix's closed parts left out) and ``summary.docx``
(the headline sentences and table, the map and the key comparison, the caveats and the methods paragraph, in a
Word file a communications team can edit).

Both are written byte-identically for the same run: the PDF's dates and document ID are replaced by fixed values
of the same length, and the Word file's zip entries and document properties carry a fixed date.
"""

from __future__ import annotations

import datetime
import io
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

from hiddenpop.outputs import atomic_write_bytes

__all__ = ["CHROMIUM_FLAGS", "chromium", "print_pdf", "stable_pdf", "stable_zip", "write_docx"]

#: Headless Chromium on a machine with no network: no background connections, no first-run work.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--hide-scrollbars", "--mute-audio")
#: Printed page width in CSS pixels: A4 (210 mm) less the print stylesheet's 12 mm margins, at 96 px per inch, so
#: the plots are laid out at the width they are printed.
PRINT_WIDTH = 690
FIXED_DATE = b"D:20000101000000+00'00'"


def chromium() -> str | None:
    """The Chromium executable: ``HIDDENPOP_CHROMIUM`` when set, else the first found on the PATH."""
    named = os.environ.get("HIDDENPOP_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, *, timeout: float = 180) -> str:
    """Print ``html`` to ``pdf`` with headless Chromium; returns "" when written, else why not (the run goes on
    without a PDF and the manifest says why)."""
    executable = chromium()
    if executable is None:
        return "report.pdf not written: headless Chromium was not found (install Debian's chromium, e.g. `make " \
               "browser`, or set HIDDENPOP_CHROMIUM)"
    with tempfile.TemporaryDirectory(prefix="hiddenpop-chromium-") as profile:
        target = Path(profile) / "report.pdf"
        command = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/user", f"--print-to-pdf={target}",
                   "--no-pdf-header-footer", f"--window-size={PRINT_WIDTH},1000", "--virtual-time-budget=20000",
                   "--run-all-compositor-stages-before-draw", html.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"report.pdf not written: Chromium did not finish ({type(exc).__name__})"
        if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            return f"report.pdf not written: Chromium exited with code {done.returncode}"
        atomic_write_bytes(pdf, stable_pdf(target.read_bytes()))
    return ""


def stable_pdf(data: bytes) -> bytes:
    """The same PDF with its creation and modification dates fixed and its document ID derived from the
    content (a CRC-32, repeated to the ID's length), each replaced by bytes of the same length so the cross-reference offsets stay right."""
    def fixed_date(match: re.Match) -> bytes:
        value = match.group(2)
        return match.group(1) + (FIXED_DATE[:len(value)] if len(value) <= len(FIXED_DATE)
                                 else FIXED_DATE + b" " * (len(value) - len(FIXED_DATE))) + b")"

    data = re.sub(rb"(/(?:CreationDate|ModDate)\s*\()([^)]*)\)", fixed_date, data)
    ids = re.search(rb"/ID\s*\[\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*\]", data)
    if ids is not None:
        body = data[:ids.start()] + data[ids.end():]
        digest = f"{zlib.crc32(body):08X}".encode("ascii")  # a checksum of the content, not a secret
        for group in (1, 2):
            old = ids.group(group)
            new = (digest * (len(old) // len(digest) + 1))[:len(old)]
            data = data.replace(b"<" + old + b">", b"<" + new + b">")
    return data


def stable_zip(data: bytes) -> bytes:
    """The same zip archive with every entry dated 1980-01-01 and stored in name order (Word files are zips)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in sorted(source.infolist(), key=lambda i: i.filename):
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def write_docx(path: Path, *, title: str, items: list[dict[str, Any]], table: list[list[str]], caveats: list[str],
               methods: str, figures: dict[str, Path], level: str) -> None:
    """``summary.docx``: title, the headline in sentences and as a table, the map and the key comparison, the
    caveats and the methods paragraph."""
    # python-docx is loaded only when this runs: importing it costs start-up time
    from docx import Document
    from docx.shared import Inches

    document = Document()
    properties = document.core_properties
    properties.title = title
    properties.author = "hiddenpop"
    properties.last_modified_by = "hiddenpop"
    properties.created = properties.modified = datetime.datetime(2000, 1, 1)
    properties.revision = 1
    document.add_heading(title, level=0)
    document.add_heading("Headline", level=1)
    for item in items:
        document.add_paragraph(item["sentence"])
    grid = document.add_table(rows=1, cols=4)
    grid.style = "Light Grid Accent 1"
    for cell, text in zip(grid.rows[0].cells, ["Quantity", "Estimate", f"Interval ({level})", "Rate"],
                          strict=True):
        cell.text = text
    for row in table:
        cells = grid.add_row().cells
        for cell, text in zip(cells, [row[0], row[1], row[2].split(": ", 1)[-1], row[3]], strict=True):
            cell.text = text
    for name, caption in (("map", "Estimates by area (hatched areas were not surveyed)."),
                          ("comparison", "The headline beside every other method (intervals as bars).")):
        image = figures.get(name)
        if image is not None and image.is_file():
            document.add_picture(str(image), width=Inches(6.0))
            document.add_paragraph().add_run(caption).italic = True
    if caveats:
        document.add_heading("Read these numbers with care", level=1)
        for caveat in caveats:
            document.add_paragraph(caveat, style="List Bullet")
    document.add_heading("Methods", level=1)
    document.add_paragraph(methods)
    buffer = io.BytesIO()
    document.save(buffer)
    atomic_write_bytes(path, stable_zip(buffer.getvalue()))
