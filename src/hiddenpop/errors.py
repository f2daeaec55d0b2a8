"""Exception families.

Every failure a user can fix is one of these, with a one-line message that names the file, row and column
involved and says what to do. The CLI prints the message on one line and exits with code 2.
"""

from __future__ import annotations


class HiddenpopError(Exception):
    """Base class for errors a user can act on."""


class DataError(HiddenpopError, ValueError):
    """Input data are malformed or inconsistent (file, row, column and the fix are in the message)."""


class ModelError(HiddenpopError, RuntimeError):
    """A model cannot be fitted or is not identified with the data and settings given."""


class ConfigError(HiddenpopError, ValueError):
    """A setting, option or study file entry is invalid."""


class PrivacyError(HiddenpopError, RuntimeError):
    """An operation would expose identifiers or run without the protection it needs (e.g. no key)."""


class InternalError(Exception):
    """A fault inside hiddenpop (a bug), not something the user can fix: the command exits with code 1 and one line
    naming where it happened. The message names the step and the exception type only, never its text (which could
    quote data); ``HIDDENPOP_DEBUG=1`` shows the traceback."""


def locate(source: str | None = None, row: int | None = None, column: str | None = None) -> str:
    """Format a location prefix such as ``survey.csv, row 12, column 'nurse': ``.

    ``row`` is the 1-based data row (the header line is not counted), as a spreadsheet user counts records.
    """
    parts: list[str] = []
    if source:
        parts.append(str(source))
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return (", ".join(parts) + ": ") if parts else ""
