"""The one results type every estimator returns.

``Estimates`` holds a tidy table with one row per (quantity, method) and the columns
``quantity, method, estimate, se, lower, upper, level`` plus any method-specific columns (deviance, df, aic,
bic, rhat, ess_bulk, ...). Around the table it carries what a reader needs to trust the numbers: the settings
and seed used, warnings (as data, never only printed), diagnostics, notes, auxiliary tidy tables
(e.g. a leave-one-out consistency table or a cleaning audit) and provenance.

The same surface everywhere (``.table``, ``.summary()``, ``.conf_int()``, ``.to_dict()``, ``.to_json()``,
``.plot()``) means a user who learns one estimator knows them all.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.errors import ModelError
from hiddenpop.formatting import PRIMARY_COLUMNS, column_label, display_table, fit_columns

CORE_COLUMNS = ["quantity", "method", "estimate", "se", "lower", "upper", "level"]


def _clean(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers into JSON-friendly Python values (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, pd.DataFrame):
        return [_clean(r) for r in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return _clean(value.to_dict())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def to_jsonable(value: Any) -> Any:
    """Public helper: the JSON-safe form of nested results (used by every CLI command)."""
    return _clean(value)


@dataclass
class Estimates:
    """Tidy estimates plus everything needed to read them honestly.

    Attributes
    ----------
    table:
        One row per (quantity, method); always has the columns in ``CORE_COLUMNS``.
    settings:
        The options the estimator ran with (JSON-safe).
    seed:
        The seed used where randomness entered, else ``None``.
    warnings:
        Human-readable warnings. They are part of the result, shown by ``summary()`` and in reports.
    diagnostics:
        Method-specific diagnostics (dict of JSON-safe values).
    notes:
        Informational remarks (e.g. ignored columns, rows dropped by an explicit policy).
    tables:
        Auxiliary tidy tables keyed by name (e.g. ``"consistency"``, ``"audit"``, ``"degrees"``).
    provenance:
        Versions, input hashes and timings, filled by readers and the CLI.
    extras:
        Non-tabular objects (e.g. an ArviZ ``InferenceData``). Not serialised. May be a :class:`LazyExtras`,
        which builds an expensive object the first time it is read.
    """

    table: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    warnings: list[str] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        table = self.table.copy()
        for column in CORE_COLUMNS:
            if column not in table.columns:
                table[column] = np.nan
        extra = [c for c in table.columns if c not in CORE_COLUMNS]
        order = CORE_COLUMNS + extra
        # selecting the columns copies the frame again; skipped when they are already in this order
        self.table = (table if list(table.columns) == order else table[order]).reset_index(drop=True)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def tables_only(cls, tables: dict[str, pd.DataFrame], **fields: Any) -> Estimates:
        """A result with no estimate rows, only auxiliary tables (a listing, a grid summary, history counts)."""
        empty = pd.DataFrame({"quantity": pd.Series(dtype=str), "method": pd.Series(dtype=str),
                              "estimate": pd.Series(dtype=float)})
        return cls(table=empty, tables=dict(tables), **fields)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], **kwargs: Any) -> Estimates:
        """Build from a list of row dicts (missing core columns become NaN)."""
        return cls(table=pd.DataFrame(rows), **kwargs)

    def combine(self, other: Estimates) -> Estimates:
        """Stack two results (tables concatenated, warnings/notes/tables/diagnostics merged)."""
        merged_tables = {**self.tables, **other.tables}
        return Estimates(
            table=pd.concat([self.table, other.table], ignore_index=True),
            settings={**self.settings, **other.settings},
            seed=self.seed if self.seed is not None else other.seed,
            warnings=list(dict.fromkeys(self.warnings + other.warnings)),
            diagnostics={**self.diagnostics, **other.diagnostics},
            notes=list(dict.fromkeys(self.notes + other.notes)),
            tables=merged_tables,
            provenance={**self.provenance, **other.provenance},
            extras=LazyExtras.merge(self.extras, other.extras),
        )

    # ------------------------------------------------------------------ access
    def get(self, quantity: str, method: str | None = None) -> pd.Series:
        """The single row for ``quantity`` (and ``method`` when several methods estimated it)."""
        rows = self.table[self.table["quantity"] == quantity]
        if method is not None:
            rows = rows[rows["method"] == method]
        if len(rows) != 1:
            available = sorted(set(zip(self.table["quantity"], self.table["method"], strict=True)))
            raise ModelError(
                f"expected one row for quantity={quantity!r} method={method!r}, found {len(rows)}; "
                f"available (quantity, method): {available}"
            )
        return rows.iloc[0]

    def estimate(self, quantity: str, method: str | None = None) -> float:
        """The point estimate for one quantity."""
        return float(self.get(quantity, method)["estimate"])

    def conf_int(self) -> pd.DataFrame:
        """Interval table: quantity, method, lower, upper, level."""
        return self.table[["quantity", "method", "lower", "upper", "level"]].copy()

    @property
    def ok(self) -> bool:
        """True when the estimator raised no warnings."""
        return not self.warnings

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with a stable schema (documented in docs/cli.md)."""
        return _clean(
            {
                "estimates": self.table.to_dict(orient="records"),
                "settings": self.settings,
                "seed": self.seed,
                "diagnostics": self.diagnostics,
                "warnings": self.warnings,
                "notes": self.notes,
                "tables": {name: t.to_dict(orient="records") for name, t in self.tables.items()},
                "provenance": self.provenance,
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self, width: int = 100) -> str:
        """A plain-text summary for people: the table (numbers as :mod:`hiddenpop.formatting` writes them,
        secondary columns left out to fit ``width`` characters, with a note), then warnings and notes."""

        names, rows = display_table(self.table)
        kept = fit_columns(names, rows, width)
        index = [names.index(n) for n in kept]
        labels = [column_label(n) for n in kept]
        widths = [max([len(label)] + [len(row[i]) for row in rows]) for label, i in zip(labels, index, strict=True)]
        left = [n not in ("estimate", "interval") and not any(ch.isdigit() for row in rows for ch in row[i][:1])
                for n, i in zip(kept, index, strict=True)]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if lft else c.rjust(w) for c, w, lft in zip(cells, widths, left, strict=True))

        lines = [line(labels).rstrip()] + [line([row[i] for i in index]).rstrip() for row in rows]
        dropped = [column_label(n) for n in names if n not in kept]
        if dropped:
            lines.append(f"({len(dropped)} column(s) left out: {', '.join(dropped)}; see .table)")
        if self.warnings:
            lines.append("")
            lines.append("Warnings:")
            lines.extend(f"  - {w}" for w in self.warnings)
        if self.notes:
            lines.append("")
            lines.append("Notes:")
            lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The notebook view: the main columns as an HTML table (numbers formatted as everywhere else, every
        cell escaped), then the counts of warnings and notes."""


        names, rows = display_table(self.table)
        index = [i for i, n in enumerate(names) if n in PRIMARY_COLUMNS or n == "level"] or list(range(len(names)))
        head = "".join(f"<th>{escape(column_label(names[i]))}</th>" for i in index)
        body = "".join("<tr>" + "".join(f"<td>{escape(row[i])}</td>" for i in index) + "</tr>" for row in rows)
        extra = f"{len(self.warnings)} warning(s), {len(self.notes)} note(s)"
        if self.warnings:
            extra += ": " + "; ".join(escape(w) for w in self.warnings[:3])
        return (f"<div class=\"hiddenpop-estimates\"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                f"</table><p>{extra}. The whole table is <code>.table</code>.</p></div>")

    def __repr__(self) -> str:  # pragma: no cover - convenience
        return f"Estimates({len(self.table)} rows, {len(self.warnings)} warnings)\n{self.summary()}"

    def plot(self, ax: Any = None, log: bool = False) -> Any:
        """Forest plot of estimates with their intervals (matplotlib); returns the Axes."""
        # matplotlib is loaded only when this runs: importing it costs start-up time
        import matplotlib

        matplotlib.use("Agg", force=False)
        # matplotlib is loaded only when this runs: importing it costs start-up time
        import matplotlib.pyplot as plt

        table = self.table.dropna(subset=["estimate"])
        labels = [f"{q} ({m})" for q, m in zip(table["quantity"], table["method"], strict=True)]
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
        y = np.arange(len(table))
        lower = (table["estimate"] - table["lower"]).fillna(0).clip(lower=0)
        upper = (table["upper"] - table["estimate"]).fillna(0).clip(lower=0)
        ax.errorbar(table["estimate"], y, xerr=[lower, upper], fmt="o", capsize=3)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        ax.set_xlabel("estimate")
        ax.grid(axis="x", alpha=0.3)
        return ax


class LazyExtras(dict):
    """A dict whose values may be given as factories: ``lazy(key, build)`` registers ``build`` and the first read
    of ``extras[key]`` calls it once and keeps the result. Used for objects that cost seconds to build and that
    most callers never read (ArviZ InferenceData of a large posterior). ``in``, ``keys()``, iteration and ``len``
    include unbuilt entries; ``items()`` and ``values()`` show built ones only (they would otherwise build all)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._factories: dict[str, Any] = {}

    def lazy(self, key: str, build: Any) -> LazyExtras:
        self._factories[key] = build
        return self

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or key in self._factories

    def __missing__(self, key: str) -> Any:
        if key not in self._factories:
            raise KeyError(key)
        value = self._factories.pop(key)()
        self[key] = value
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(super().keys()) + [k for k in self._factories if not dict.__contains__(self, k)]

    def __iter__(self):  # type: ignore[override]
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    @staticmethod
    def merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
        """``{**first, **second}`` that keeps unread factories unread."""
        merged = LazyExtras()
        for source in (first, second):
            for key, value in dict.items(source):
                merged[key] = value
                merged._factories.pop(key, None)
            for key, build in getattr(source, "_factories", {}).items():
                dict.pop(merged, key, None)
                merged._factories[key] = build
        return merged

