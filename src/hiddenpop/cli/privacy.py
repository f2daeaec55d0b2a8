"""``hiddenpop privacy ...``: key generation and scanning of outputs for identifier-like strings.

``privacy keygen`` writes a fresh 32-byte key (hex) to a file created with owner-only permissions (or prints it
once to stdout when no ``--out`` is given, for piping into a secret store). ``privacy scan DIR`` reports file,
line and the kind of each identifier-like hit (:mod:`hiddenpop.privacy.scanner`), never the matched text.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from hiddenpop.cli.common import parse_csv_list
from hiddenpop.errors import ConfigError, PrivacyError
from hiddenpop.privacy import generate_key
from hiddenpop.privacy.scanner import DEFAULT_MAX_HITS, compile_patterns, scan_paths


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    @app.command("keygen")
    def keygen(
        out: Annotated[Path | None, typer.Option("--out", help="key file to create (mode 600); refuses to overwrite")] = None,
    ) -> None:
        """Create a pseudonymisation key (32 random bytes, hex). Keep it out of version control."""
        key = generate_key()
        if out is None:
            sys.stdout.write(key + "\n")
            return
        if out.exists():
            raise PrivacyError(f"{out}: file exists; refusing to overwrite a key (pseudonyms would change)")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(key + "\n")
        print(f"wrote key to {out} (owner read/write only); store a copy in your secret store", file=sys.stderr)

    @app.command("scan")
    def scan(
        target: Annotated[Path, typer.Argument(help="folder (or file) of outputs to scan")],
        patterns: Annotated[str, typer.Option("--patterns", help="kinds to look for")] = "ipv4,ipv6,email,phone",
        literal: Annotated[list[str] | None, typer.Option("--literal", help="also look for this exact string (repeatable); not echoed")] = None,
        literal_file: Annotated[Path | None, typer.Option("--literal-file", help="file with one literal string per line (e.g. raw identifiers); not echoed")] = None,
        all_files: Annotated[bool, typer.Option("--all-files", help="scan binary files too (PNG text chunks, Parquet tables)")] = False,
        max_hits: Annotated[int, typer.Option("--max-hits", min=0, help="hits to list after the summary")] = DEFAULT_MAX_HITS,
    ) -> None:
        """Scan outputs for identifier-like strings; exit 1 and list file:line:kind when any is found."""
        literals = list(literal or [])
        if literal_file is not None:
            if not literal_file.is_file():
                raise ConfigError(f"{literal_file}: literal file not found")
            literals += [line.strip() for line in literal_file.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        compiled = compile_patterns(parse_csv_list(patterns), literals)
        hits = scan_paths(target, compiled, all_files=all_files)
        if hits:
            files = len({h["file"] for h in hits})
            counts = Counter(str(h["kind"]) for h in hits)
            print(f"privacy scan: {len(hits)} identifier-like string(s) in {files} file(s): "
                  + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())))
            for hit in hits[:max_hits]:
                print(f"{hit['file']}:{hit['line']}: {hit['kind']}")
            if len(hits) > max_hits:
                print(f"... and {len(hits) - max_hits} more (see --max-hits)")
            print(f"privacy scan: {len(hits)} identifier-like string(s) in {files} file(s)", file=sys.stderr)
            raise typer.Exit(1)
        print("privacy scan: clean", file=sys.stderr)
