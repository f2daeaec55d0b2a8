"""Reading tabular files at the edge: CSV, Parquet, Excel, SPSS and Stata.

Readers never estimate; they return a ``pandas.DataFrame`` with the file's own column names and raise
:class:`~hiddenpop.errors.DataError` naming the file and what is wrong. Values are read as they are: no
silent type coercion, clipping or dropping happens here (contracts validate and report afterwards).
"""

from __future__ import annotations

import csv
import hashlib
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from hiddenpop.errors import ConfigError, DataError, HiddenpopError, locate

SUPPORTED = {
    ".csv": "CSV",
    ".txt": "CSV",
    ".tsv": "TSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".xlsx": "Excel",
    ".xlsm": "Excel",
    ".sav": "SPSS",
    ".zsav": "SPSS",
    ".dta": "Stata",
}


# Header cells that are data, not names: numbers, dates and times, IP addresses, e-mail addresses, phone numbers.
_DATA_LIKE = re.compile(
    r"^\s*(?:"
    r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?"       # a number
    r"|\d{4}-\d{1,2}-\d{1,2}(?:[T ].*)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}.*"  # a date or timestamp
    r"|\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?|[0-9a-fA-F.]*:[0-9a-fA-F.]*:[0-9a-fA-F.:]*"  # an IP address, a time
    r"|[^\s@]+@[^\s@]+"                                          # an e-mail address
    r"|\+?[\d\s().-]*\d[\d\s().-]{6,}"                         # a phone number
    r")\s*$"
)


def header_looks_like_data(columns: Iterable[object]) -> bool:
    """True when any header cell reads as a value (a number, date, IP or e-mail address, phone number): the
    file probably has no header row, and its "column names" are the first record, which must not be echoed."""
    return any(_DATA_LIKE.match(str(column)) for column in columns)


def missing_column(source: str | None, column: str, columns: Iterable[object], *, role: str = "",
                   fix: str = "check the spelling against the file's header",
                   error: type[HiddenpopError] = DataError) -> HiddenpopError:
    """The error for a required column that is absent. Lists the file's column names only when they look like
    names; a header that looks like data is reported as a missing header row, never echoed. ``error`` is the
    exception family (ConfigError where an option names the column)."""
    columns = [str(c) for c in columns]
    what = f" ({role})" if role else ""
    if header_looks_like_data(columns):
        return error(f"{locate(source)}no header row: the first line looks like data, so column {column!r}{what} "
                         "cannot be found; add a header line naming the columns")
    return error(f"{locate(source, column=column)}column not found{what}; the columns are {', '.join(columns)}; "
                     f"{fix}")


def check_header_names(names: Iterable[object], source: str | Path) -> None:
    """No header name may repeat: readers rename a repeated ``x`` (``x.1``, ``x_1``) and one copy would be used
    silently in place of the other."""
    names = [str(name).strip() for name in names]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated and header_looks_like_data(names):  # a first record, not a header: never echo it
        raise DataError(f"{source}: no header row: the first line looks like data; add a header line naming the "
                        "columns")
    if repeated:
        raise DataError(f"{source}: column {repeated[0]!r} appears more than once in the header; rename one")


def first_line_fields(path: str | Path, delimiter: str = ",") -> list[str]:
    """The header fields of a delimited text file (only its first line is read)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


def _check_delimited_structure(path: Path, delimiter: str) -> None:
    """Every data row has exactly as many fields as the header, and no header name repeats.

    pandas would otherwise pad a short row with missing values, turn the first column into an index when every
    row ends with a delimiter (shifting every column by one), and rename a repeated header ``x`` to ``x.1``.
    Blank lines are skipped, as pandas skips them, so row numbers count data rows as in every other message."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        check_header_names(header, path)
        row = 0
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            row += 1
            if len(fields) == len(header):
                continue
            if len(fields) == len(header) + 1 and not fields[-1].strip():
                raise DataError(f"{locate(str(path), row)}ends with an extra delimiter (one more field than the "
                                f"header's {len(header)}); remove the trailing delimiters or add a header name")
            raise DataError(f"{locate(str(path), row)}has {len(fields)} fields where the header has {len(header)}; "
                            "fix the row (missing or extra delimiters, or an unclosed quote)")


def _text_options(as_text: bool) -> dict:
    return {"dtype": str, "keep_default_na": False, "na_values": []} if as_text else {}


def _check_single_sheet(path: Path) -> None:
    """A workbook read without naming a sheet must hold data on one sheet only: reading the first and ignoring
    the others would silently leave data out."""
    from openpyxl import load_workbook  # loaded only for Excel files

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        with_data = [ws.title for ws in workbook.worksheets
                     if any(cell is not None for row in ws.iter_rows(max_row=2, values_only=True) for cell in row)]
    finally:
        workbook.close()
    if len(with_data) > 1:
        raise DataError(f"{path}: the workbook has data on {len(with_data)} sheets and only one can be read; save "
                        "the sheet to analyse as its own file (or delete the others)")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (recorded in manifests so a run names exactly what it read)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: str | Path, *, sheet: str | int | None = None, as_text: bool = False) -> pd.DataFrame:
    """Read one table from ``path``; the format is chosen by extension.

    CSV files may carry a UTF-8 byte-order mark and CRLF line ends; header names are stripped of surrounding
    whitespace. Excel reads the named ``sheet``; without one, a workbook with data on more than one sheet is refused. SPSS/Stata value labels are not applied:
    the stored codes are returned, as counts must be numbers. ``as_text`` reads every CSV and Excel cell as text
    with no missing-value tokens (pandas would read "NA", "N/A", "null" ... as missing): for coded files whose
    codebook says which codes are missing.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {known}")
    try:
        if suffix in (".csv", ".txt"):
            _check_delimited_structure(path, ",")
            frame = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=False, **_text_options(as_text))
        elif suffix == ".tsv":
            _check_delimited_structure(path, "\t")
            frame = pd.read_csv(path, sep="\t", encoding="utf-8-sig", **_text_options(as_text))
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".xlsx", ".xlsm"):
            if sheet is None:
                _check_single_sheet(path)
            frame = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, engine="openpyxl",
                                  **_text_options(as_text))
        elif suffix in (".sav", ".zsav"):
            # pyreadstat is loaded only when this runs: importing it costs start-up time
            import pyreadstat

            frame, _meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
        else:  # .dta
            # pyreadstat is loaded only when this runs: importing it costs start-up time
            import pyreadstat

            frame, _meta = pyreadstat.read_dta(str(path), apply_value_formats=False)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 text near byte {exc.start}; save the file as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows") from None
    except pd.errors.ParserError as exc:
        first = str(exc).splitlines()[0]
        raise DataError(f"{path}: cannot parse as {SUPPORTED[suffix]} ({first}); check delimiters and quoting") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read as {SUPPORTED[suffix]} ({type(exc).__name__}); is the file damaged?") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise DataError(f"{path}: column {duplicated[0]!r} appears more than once in the header; rename one")
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no columns found; expected a header row")
    return frame


def read_toml(path: str | Path, *, what: str, missing_fix: str = "check the path",
              syntax_fix: str = "fix the syntax at that line") -> dict:
    """A TOML file (a study, a grid, a streams file) as a dict; a missing file, invalid TOML or text that is not
    UTF-8 is one :class:`ConfigError` naming the file and the fix. A leading byte-order mark is accepted."""

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found; {missing_fix}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc}); {syntax_fix}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text; save the {what} as UTF-8") from None
