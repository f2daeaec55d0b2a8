"""The leak scanner: identifier-like strings in a folder of outputs, reported by kind, never by content.

:func:`scan_paths` walks every text file under a folder (tables, JSON, HTML, logs) and returns file, line and the
*kind* of each hit (IPv4, IPv6, email, phone, or a literal pattern), never the matched text, so a scan report is
itself safe to share. Binary files are read for the text they can hold, not as raw bytes (compressed pixels match
IP-like patterns by chance): PNG text chunks (tEXt, zTXt, iTXt), Parquet tables decoded to CSV text; other images
(JPEG, GIF, WebP) hold no text hiddenpop writes and are skipped; anything else is scanned byte for byte.
"""

from __future__ import annotations

import ipaddress
import re
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

from hiddenpop.errors import ConfigError

#: Identifier-like patterns. Numbers in tables (estimates like 1234.5678) must not look like phone numbers or IPs,
#: so the phone pattern requires a leading + or separators typical of written phone numbers.
PATTERNS: dict[str, str] = {
    "ipv4": r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.])",
    # loose candidates (hex groups around 2+ colons), each confirmed by ``ipaddress`` (see VALIDATORS)
    "ipv6": r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "phone": r"(?<![\w+])\+\d{1,3}[ -]?\(?\d{1,4}\)?(?:[ -]?\d{2,4}){2,4}(?!\w)|(?<!\w)\(?0\d{1,4}\)?[ -]\d{3,4}[ -]\d{3,4}(?!\w)"
             # Philippine mobile numbers written without separators or with the +63 / 63 prefix
             r"|(?<![\w.+])(?:\+?63|0)9\d{2}[ -]?\d{3}[ -]?\d{4}(?![\w.])",
}
TEXT_SUFFIXES = {".csv", ".json", ".txt", ".log", ".html", ".htm", ".md", ".toml", ".tsv", ".svg", ".xml", ".yaml",
                 ".yml", ".out", ".err", ""}
BINARY_SCAN_LIMIT = 50_000_000
#: Hits printed by ``privacy scan`` before "... and N more" (the summary above them counts all).
DEFAULT_MAX_HITS = 50
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SKIPPED_IMAGES = (b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def compile_patterns(kinds: Iterable[str], literals: Iterable[str] = ()) -> list[tuple[str, re.Pattern[bytes]]]:
    """Compiled byte patterns for the named kinds plus literal strings (matched case-insensitively)."""
    compiled = []
    for kind in kinds:
        if kind not in PATTERNS:
            raise ConfigError(f"unknown pattern kind {kind!r}; choose from {', '.join(PATTERNS)}")
        compiled.append((kind, re.compile(PATTERNS[kind].encode())))
    for i, literal in enumerate(literals, start=1):
        if not literal:
            raise ConfigError("empty literal pattern")
        compiled.append((f"literal#{i}", re.compile(re.escape(literal.encode("utf-8")), re.IGNORECASE)))
    return compiled


def _is_ipv6(text: bytes) -> bool:
    """Times (23:59:59) and minified code (a:b:c) match the loose pattern; keep only real IPv6 addresses."""
    try:
        ipaddress.IPv6Address(text.decode("ascii"))
    except ValueError:
        return False
    return True


VALIDATORS = {"ipv6": _is_ipv6}
#: Script blocks that are a vendored library (the Plotly.js bundle embedded in self-contained HTML) rather than
#: output data: their licence headers and SVG path numbers look like e-mails and IPs. Figure data sits in separate
#: script blocks and is still scanned.
VENDOR_BANNERS = (b"plotly.js v",)
_SCRIPT = re.compile(rb"<script[^>]*>(.*?)</script>", re.S | re.I)


def _without_vendor_bundles(data: bytes) -> bytes:
    def blank(match: re.Match[bytes]) -> bytes:
        head = match.group(1)[:200]
        if any(banner in head for banner in VENDOR_BANNERS):
            return b"\n" * match.group(0).count(b"\n")  # keep line numbers of later hits
        return match.group(0)

    return _SCRIPT.sub(blank, data)


def scan_bytes(data: bytes, patterns: list[tuple[str, re.Pattern[bytes]]]) -> list[tuple[int, str]]:
    """(line number, kind) for every hit in ``data``; the matched text is deliberately not returned."""
    hits = []
    for kind, pattern in patterns:
        valid = VALIDATORS.get(kind)
        for match in pattern.finditer(data):
            if valid is not None and not valid(match.group()):
                continue
            hits.append((data.count(b"\n", 0, match.start()) + 1, kind))
    return sorted(set(hits))


def _png_text(data: bytes) -> bytes:
    """The text chunks of a PNG (tEXt, zTXt, iTXt), one per line; pixels are compressed bytes, not text."""
    texts = []
    position = len(PNG_MAGIC)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        try:
            if kind == b"tEXt":
                texts.append(body)
            elif kind == b"zTXt":
                keyword, _, rest = body.partition(b"\0")
                texts.append(keyword + b" " + zlib.decompress(rest[1:]))
            elif kind == b"iTXt":
                keyword, _, rest = body.partition(b"\0")
                compressed, rest = rest[:1], rest[2:]
                _language, _, rest = rest.partition(b"\0")
                _translated, _, text = rest.partition(b"\0")
                texts.append(keyword + b" " + (zlib.decompress(text) if compressed == b"\1" else text))
        except zlib.error:
            texts.append(body)
        if kind == b"IEND":
            break
    return b"\n".join(texts)


def _parquet_text(path: Path) -> bytes:
    """A Parquet file's table (and schema metadata) as CSV text: its pages are compressed, not text."""
    # Arrow is loaded only when this runs: importing it costs start-up time
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = b"\n".join(k + b" " + v for k, v in (table.schema.metadata or {}).items())
    return table.to_pandas().to_csv(index=False).encode("utf-8") + b"\n" + metadata


def readable_bytes(path: Path) -> bytes | None:
    """The bytes of ``path`` a scan should search, or ``None`` for an image without text (JPEG, GIF, WebP)."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if data.startswith(PNG_MAGIC):
        return _png_text(data)
    if data.startswith(SKIPPED_IMAGES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return None
    if data[:4] == b"PAR1" or suffix in (".parquet", ".pq"):
        try:
            return _parquet_text(path)
        except Exception:  # not a readable Parquet file: scan its bytes instead
            return data
    if suffix in (".html", ".htm"):
        return _without_vendor_bundles(data)
    return data


def scan_paths(
    root: Path, patterns: list[tuple[str, re.Pattern[bytes]]], *, all_files: bool = False
) -> list[dict[str, object]]:
    """Scan every (text) file under ``root``; returns records ``file, line, kind``."""
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file())
    else:
        raise ConfigError(f"{root}: no such file or folder to scan")
    hits = []
    for path in files:
        if not all_files and path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        if path.stat().st_size > BINARY_SCAN_LIMIT:
            continue
        data = readable_bytes(path)
        if data is None:
            continue
        for line, kind in scan_bytes(data, patterns):
            hits.append({"file": str(path.relative_to(root)) if root.is_dir() else path.name, "line": line, "kind": kind})
    return hits
