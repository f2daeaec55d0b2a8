"""The leak scanner: every documented kind found, nothing found in the binary outputs of a clean run, a summary
before a capped list of hits."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest

from hiddenpop.cli import main
from hiddenpop.privacy.scanner import PATTERNS, compile_patterns, scan_paths
from hiddenpop.simulate.reports import simulate_reports

#: one planted example per documented kind (docs/privacy.md)
PLANTED = {
    "ipv4": ["198.51.100.23"],
    "ipv6": ["2001:db8:85a3::8a2e:370:7334"],
    "email": ["maria.santos@example.org"],
    "phone": ["09171234567", "+639171234567", "0917 123 4567", "+63 917 123 4567", "+44 20 7946 0958",
              "(02) 8123 4567"],
}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(pixels: bytes, text: bytes = b"") -> bytes:
    """A PNG-framed file whose image data holds ``pixels`` verbatim and whose tEXt chunk holds ``text``."""
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    extra = _chunk(b"tEXt", b"Comment\0" + text) if text else b""
    return head + extra + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    """A real `capture events` output folder (CSV, JSON, PNG, HTML) plus its series as Parquet."""
    folder = tmp_path_factory.mktemp("clean")
    stream = simulate_reports(initial=300, days=120, rate_median=0.05, seed=3)
    stream.write(folder / "reports.csv")
    key = folder / "key.txt"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o600)
    out = folder / "run"
    with pytest.raises(SystemExit) as info:
        main(["capture", "events", str(folder / "reports.csv"), "--id", "ip", "--id-kind", "ip", "--time", "time",
              "--occasions", "3", "--key-file", str(key), "--quiet", "--out-dir", str(out)])
    assert info.value.code in (0, None)
    pd.read_csv(out / "series.csv").to_parquet(out / "series.parquet")
    return out


def test_clean_run_including_binary_files_has_no_hit(clean_run):
    assert (clean_run / "series.png").is_file()
    assert scan_paths(clean_run, compile_patterns(list(PATTERNS)), all_files=True) == []


def test_address_shaped_bytes_in_png_pixels_are_not_a_hit_but_png_text_is(tmp_path):
    (tmp_path / "figure.png").write_bytes(_png(b"\x00\x0110.20.30.40\x02\xff"))
    assert scan_paths(tmp_path, compile_patterns(["ipv4"]), all_files=True) == []
    (tmp_path / "figure.png").write_bytes(_png(b"\x00", text=b"source 10.20.30.40"))
    assert [h["kind"] for h in scan_paths(tmp_path, compile_patterns(["ipv4"]), all_files=True)] == ["ipv4"]


def test_identifiers_inside_parquet_tables_are_found(tmp_path):
    pd.DataFrame({"who": ["maria.santos@example.org"]}).to_parquet(tmp_path / "t.parquet", compression="gzip")
    assert [h["kind"] for h in scan_paths(tmp_path, compile_patterns(["email"]), all_files=True)] == ["email"]


@pytest.mark.parametrize(("kind", "text"), [(k, t) for k, texts in PLANTED.items() for t in texts])
def test_each_documented_kind_is_found(tmp_path, kind, text):
    (tmp_path / "notes.csv").write_text(f"id,note\n1,reach me at {text} today\n")
    assert [h["kind"] for h in scan_paths(tmp_path, compile_patterns(list(PATTERNS)))] == [kind]


def test_summary_comes_first_and_hits_are_capped(tmp_path, capsys):
    lines = [f"{i},198.51.100.{i}" for i in range(1, 8)] + ["8,09171234567"]
    (tmp_path / "leak.csv").write_text("id,value\n" + "\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as info:
        main(["privacy", "scan", str(tmp_path), "--max-hits", "3"])
    out = capsys.readouterr().out.splitlines()
    assert info.value.code == 1
    assert out[0] == "privacy scan: 8 identifier-like string(s) in 1 file(s): ipv4 7, phone 1"
    assert out[1:4] == ["leak.csv:2: ipv4", "leak.csv:3: ipv4", "leak.csv:4: ipv4"]
    assert out[4] == "... and 5 more (see --max-hits)" and len(out) == 5
    assert "198.51.100" not in "\n".join(out)
