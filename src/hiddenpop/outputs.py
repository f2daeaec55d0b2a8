"""Output folders that never destroy what hiddenpop did not write.

Every folder hiddenpop writes (a study run, the demo, a report-log series, a validation grid) carries a marker file,
``.hiddenpop-output.json``, naming the command and listing the files it wrote. The rules:

* A folder that does not exist, or is empty, is used as is.
* A folder with a marker is a previous output of hiddenpop: it is replaced, but only the files its marker lists are
  removed; anything else found in it (a user's notes) is moved into the new folder, or, if a new file has the same
  name, kept beside it in ``NAME.kept-XXXX``.
* Any other existing folder is refused (one line, exit code 2), unless ``force``: then the new files are added
  beside what is there, and the command fails before writing anything if one of them would overwrite a file.
* An output folder can never be an input file, the study's folder, the folder holding the key, or a parent of any
  of them (``protect``).

The new content is built in a hidden sibling folder and moved into place at the end, so a run that fails or is
killed leaves the target as it was (a killed run may leave its hidden ``.NAME.partial-XXXX`` sibling behind).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hiddenpop.errors import ConfigError
from hiddenpop.results import to_jsonable

__all__ = ["MARKER", "atomic_write_bytes", "atomic_write_text", "check_output_folder", "dumps",
           "install_output_folder", "list_files", "partial_folder", "write_output_folder"]

MARKER = ".hiddenpop-output.json"


def list_files(folder: Path) -> list[str]:
    """Every file under ``folder`` as a POSIX path relative to it, sorted (the marker itself excluded)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MARKER)


def _marker(folder: Path) -> dict | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and content.get("written_by") == "hiddenpop" else None


def check_output_folder(out: str | Path, *, protect: Iterable[str | Path] = (), force: bool = False,
                        option: str = "--out") -> Path:
    """Check that ``out`` may receive an output folder (see the module rules); returns it resolved.

    Called before any work starts, so a refusal costs nothing."""
    out = Path(out).resolve()
    for item in protect:
        guarded = Path(item).resolve()
        if guarded == out or out in guarded.parents:
            raise ConfigError(f"{option} {out} would replace or contain {guarded}, which hiddenpop reads; choose a "
                              "folder outside the study, its data and its key")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out} is a file, not a folder; choose a new folder")
    if out.is_dir() and any(out.iterdir()) and _marker(out) is None and not force:
        raise ConfigError(f"{option} {out} already holds files that hiddenpop did not write; choose a new or "
                          "empty folder, or add --force to put the output beside them (nothing of yours is "
                          "deleted or overwritten)")
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {out}: cannot write in {parent}; choose a folder you can write to")
    return out


def partial_folder(out: Path) -> Path:
    """A fresh hidden sibling of ``out`` to build the new content in."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))


def write_output_folder(out: Path, command: str, write: Callable[[Path], object], *, force: bool = False) -> list[str]:
    """Build an output folder with ``write(folder)`` in a hidden sibling and move it to ``out`` by the rules above
    (check ``out`` with :func:`check_output_folder` before the work); returns notes for the user."""
    partial = partial_folder(out)
    try:
        write(partial)
        return install_output_folder(partial, out, command=command, force=force)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _write_marker(folder: Path, command: str, files: list[str]) -> None:
    text = json.dumps({"written_by": "hiddenpop", "command": command, "files": files}, indent=2) + "\n"
    (folder / MARKER).write_text(text, encoding="utf-8")


def install_output_folder(partial: Path, out: Path, *, command: str, force: bool = False) -> list[str]:
    """Move the finished ``partial`` folder to ``out`` by the module's rules; returns notes for the user."""
    written = list_files(partial)
    notes: list[str] = []
    if out.is_dir() and any(out.iterdir()) and _marker(out) is None:
        if not force:  # checked at the start too; the folder may have been filled since
            raise ConfigError(f"--out {out} already holds files that hiddenpop did not write; nothing was written")
        clashes = [name for name in written if (out / name).exists()]
        if clashes:
            raise ConfigError(f"--out {out}: {len(clashes)} file(s) would be overwritten (e.g. {clashes[0]}); "
                              "nothing was written; choose another folder")
        for name in written:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial / name, out / name)
        _write_marker(out, command, written)
        shutil.rmtree(partial, ignore_errors=True)
        return notes
    _write_marker(partial, command, written)
    previous: Path | None = None
    if out.exists():
        previous = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous-", dir=out.parent))
        previous.rmdir()
        os.replace(out, previous)
    try:
        os.replace(partial, out)
    except BaseException:
        if previous is not None:
            os.replace(previous, out)
        raise
    if previous is not None:
        notes += _retire(previous, out)
    return notes


def _retire(previous: Path, out: Path) -> list[str]:
    """Delete the files the old marker lists; move everything else into ``out`` or keep it beside it."""
    marker = _marker(previous) or {"files": []}
    ours = set(marker.get("files", [])) | {MARKER}
    kept = []
    for path in sorted(previous.rglob("*"), reverse=True):
        relative = path.relative_to(previous).as_posix()
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
            continue
        if relative in ours:
            path.unlink()
        elif not (out / relative).exists():
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, out / relative)
        else:
            kept.append(relative)
    if kept:
        destination = Path(tempfile.mkdtemp(prefix=f"{out.name}.kept-", dir=out.parent))
        destination.rmdir()
        os.replace(previous, destination)
        return [f"{len(kept)} file(s) that hiddenpop did not write had the name of a new output file; they are kept "
                f"in {destination}"]
    shutil.rmtree(previous, ignore_errors=True)
    return []


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\n`` line ends) to ``path`` via a temporary file and rename, so readers never see
    half a file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write here ({type(exc).__name__}); choose another path") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp creates 0600 files; published outputs get the usual mode under the user's umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(payload: Any) -> str:
    """JSON text of ``payload`` (NaN as null, numpy values as Python ones), indented, ending in a newline."""
    return json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
