"""The options of the case-file summary, declared once as a spec (see :mod:`hiddenpop.specs`).

``hiddenpop cases summarize`` and the study file's ``[analyses.cases]`` table are built from it;
:func:`hiddenpop.cases.summary.summarize_files` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hiddenpop.privacy import DEFAULT_SUPPRESSION_THRESHOLD
from hiddenpop.specs import opt

__all__ = ["FREE_TEXT_POLICIES", "CasesSpec"]

#: What happens to free-text columns: dropped with a note, or the run refused.
FREE_TEXT_POLICIES = ("drop", "refuse")


@dataclass(frozen=True, kw_only=True)
class CasesSpec:
    """Options of the case-file summary."""

    threshold: int = opt(DEFAULT_SUPPRESSION_THRESHOLD, "suppress counts from 1 to threshold - 1 (privacy)", min=1)
    level: float = opt(0.95, "confidence level of the shares and means", min=0, max=1, inclusive=False)
    by: str | None = opt(None, "cross-tabulate every coded column by this categorical column")
    crosstab: tuple[str, ...] = opt((), "ROW:COLUMN pair of columns to cross-tabulate")
    free_text: Literal[FREE_TEXT_POLICIES] = opt("drop", "free-text columns: drop (with a note) or refuse the file")
