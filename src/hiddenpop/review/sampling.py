"""Simple random sampling of distinct units (e.g. IP addresses) for review, never of reports.

A report log has many rows per unit; sampling rows would give units with many reports a higher chance of
review (size-biased sampling) and the share would describe reports, not units. Here the frame is the list of
distinct units: ``N`` units, ``n`` drawn without replacement, each with inclusion probability ``n / N``.

Identifiers must be pseudonymised before they reach this function (keyed HMAC pseudonyms from
:mod:`hiddenpop.privacy`), or a key must be given so they are pseudonymised on the way in; raw identifiers
are refused and never echoed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from hiddenpop.data.io import missing_column
from hiddenpop.design.precision import sample_size
from hiddenpop.errors import ConfigError, DataError, PrivacyError, locate
from hiddenpop.privacy import PSEUDONYM_HEX_CHARS, Pseudonymiser
from hiddenpop.results import Estimates
from hiddenpop.review.specs import ReviewSampleSpec

PSEUDONYM_PATTERN = re.compile(rf"^[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}$")


def draw_distinct(population: int, n: int, seed: int) -> np.ndarray:
    """Positions of ``n`` of ``population`` sorted distinct units, simple random sampling without replacement."""
    return np.random.default_rng(seed).choice(population, size=n, replace=False)


def sample_units(
    frame: pd.DataFrame,
    *,
    unit: str,
    n: int,
    seed: int,
    key: Pseudonymiser | None = None,
    source: str | None = None,
) -> Estimates:
    """Draw ``n`` distinct units by simple random sampling without replacement (seeded).

    ``frame`` may hold one row per report; the units are the distinct values of column ``unit`` (sorted, so
    the sample does not depend on row order). Without ``key`` the column must already hold pseudonyms
    (32 lower-case hex characters); with ``key`` raw identifiers are pseudonymised first.

    Returns ``Estimates`` with rows ``units_in_frame`` and ``units_sampled`` and the table ``sample``
    (``unit`` pseudonym, ``reports`` per unit, ``inclusion_probability = n / N``, ``design_weight = N / n``,
    ``review_order``).
    """
    if unit not in frame.columns:
        raise missing_column(source, unit, frame.columns, role="sampling unit")
    values = frame[unit]
    missing = values.isna() | (values.astype("string").str.strip() == "")
    notes: list[str] = []
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0]) + 1
        raise DataError(
            f"{locate(source, row, unit)}unit identifier is missing ({int(missing.sum())} rows); remove those rows "
            "before sampling (a report without a unit cannot be reviewed by unit)"
        )
    text = values.astype(str).str.strip()
    if key is not None:
        text = pd.Series(key.hash_many(text.tolist()), index=frame.index)
        notes.append(f"identifiers pseudonymised with key fingerprint {key.fingerprint}")
    else:
        bad = ~text.str.fullmatch(PSEUDONYM_PATTERN)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise PrivacyError(
                f"{locate(source, row, unit)}value is not a pseudonym; pass --key-file so identifiers are "
                "pseudonymised at ingestion (raw identifiers are never written to a sample list)"
            )
    reports = text.value_counts().sort_index()
    population = len(reports)
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ConfigError(f"sample size must be a whole number >= 1 (got {n!r})")
    if n > population:
        raise ConfigError(
            f"sample size {n} exceeds the {population} distinct units in the frame; review them all"
        )
    picked = draw_distinct(population, n, seed)
    sample = pd.DataFrame(
        {
            "unit": reports.index.to_numpy()[picked],
            "reports": reports.to_numpy()[picked],
            "inclusion_probability": n / population,
            "design_weight": population / n,
            "review_order": np.arange(1, n + 1),
        }
    )
    rows = [
        {"quantity": "units_in_frame", "method": "distinct units", "estimate": population},
        {"quantity": "reports_in_frame", "method": "rows", "estimate": len(frame)},
        {
            "quantity": "units_sampled",
            "method": "simple random sampling without replacement",
            "estimate": n,
            "inclusion_probability": n / population,
        },
    ]
    return Estimates.from_rows(
        rows, settings={"unit": unit, "n": n}, seed=seed, notes=notes, tables={"sample": sample}
    )


def review_sample(data: pd.DataFrame, spec: ReviewSampleSpec, *, unit: str, key: Pseudonymiser | None = None,
                  source: str | None = None) -> Estimates:
    """:func:`sample_units` of ``spec.n`` units, or of the number ``spec.margin`` needs (with the finite population
    correction over the distinct units of the file)."""

    if (spec.n is None) == (spec.margin is None):
        raise ConfigError("give exactly one of --n or --margin")
    n, note = spec.n, None
    if spec.margin is not None:
        if unit not in data.columns:
            raise missing_column(source, unit, data.columns, role="unit")
        population = int(data[unit].nunique(dropna=True))
        plan = sample_size(spec.margin, confidence=spec.confidence, population=population,
                           expected_unknown=spec.expected_unknown)
        n = min(int(plan.estimate("sample_size_to_draw")), population)
        note = (f"sample size {n} from margin {spec.margin} at {spec.confidence:.0%} confidence with FPC "
                f"(N = {population})")
    result = sample_units(data, unit=unit, n=n, seed=spec.seed, key=key, source=source)
    if note:
        result.notes.append(note)
    return result
