"""What the area models fit and how they are cross-validated, shared by pooling and extrapolation.

``log_targets`` puts the direct estimates on the log scale the models work on (areas with a zero estimate or a zero
standard error stay out of the likelihood, with a note saying how many); ``grouped_folds`` makes cross-validation
folds that keep each region whole, so held-out error measures extrapolation to unseen regions.
"""

from __future__ import annotations

import numpy as np

from hiddenpop.errors import ModelError
from hiddenpop.smallarea.areas import AreaTable

__all__ = ["grouped_folds", "log_targets"]


def log_targets(areas: AreaTable) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[str]]:
    """Log direct estimates, their log-scale SEs, the mask of areas entering the likelihood, and notes."""
    y = areas.y()
    se = areas.y_se()
    surveyed = np.isfinite(y)
    usable = surveyed & (y > 0)
    notes = []
    zero = surveyed & ~usable
    if zero.any():
        notes.append(
            f"{int(zero.sum())} surveyed area(s) with a direct estimate of 0 left out of the likelihood (log scale); "
            "they get model-based estimates like unsurveyed areas"
        )
    if se is not None:
        bad = usable & ~(se > 0)
        if bad.any():
            notes.append(f"{int(bad.sum())} surveyed area(s) with standard error 0 left out of the likelihood "
                         "(a zero SE claims an exact estimate)")
            usable &= ~bad
    with np.errstate(divide="ignore", invalid="ignore"):
        y_log = np.where(usable, np.log(np.where(usable, y, 1.0)), np.nan)
        s_log = None if se is None else np.where(usable, se / np.where(usable, y, 1.0), np.nan)
    if usable.sum() < 10:
        raise ModelError(f"only {int(usable.sum())} areas have a positive direct estimate; the pooled model needs "
                         "at least 10")
    return y_log, s_log, usable, notes


def grouped_folds(groups: np.ndarray | None, n: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test index pairs; groups are kept whole (GroupKFold on shuffled group labels)."""
    from sklearn.model_selection import GroupKFold, KFold  # heavy: loaded only when folds are made

    if groups is None:
        return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(n)))
    labels = np.unique(groups)
    if labels.size < 3:
        raise ModelError(f"only {labels.size} groups among surveyed areas; grouped cross-validation needs at least 3")
    folds = min(folds, labels.size)
    rng = np.random.default_rng(seed)
    relabel = dict(zip(labels, rng.permutation(labels.size), strict=True))
    coded = np.array([relabel[g] for g in groups])
    return list(GroupKFold(n_splits=folds).split(np.zeros(n), groups=coded))
