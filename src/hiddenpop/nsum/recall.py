"""Recall correction for network scale-up: a calibration curve fitted on the known groups, applied to every group.

Respondents under-report ties to large groups and over-report ties to small ones (Killworth et al. 2003;
McCormick, Salganik & Zheng 2010). Writing p = N_k / N for a group's true share of the scale-up base, the
**log-linear recall curve** says that the share an estimator sees is

    reported share = exp(a + b log p) * p,   i.e.   log(reported share / p) = a + b log p,

so b = 0 is accurate recall and b < 0 the usual pattern. For a known group the estimator's own answer, computed
as if the group were hidden (N_k^ = N * sum_i w_i y_ik / sum_i w_i d_i for the MLE, the mean of ratios for the
PIMLE and the mean of sums), gives the point (log p_k, log(N_k^ / N_k)); a and b are the least-squares line
through these points (Maltiel et al. 2015 regress the same log ratio on group size; McCormick et al. calibrate
with a curve over known groups).

**Correcting a hidden group.** Its reported share p^_H = N_H^ / N is the curve evaluated at its own, unknown,
share: p^_H = exp(a) p_H^(1 + b). The fixed point p = p^_H exp(-a - b log p) has the closed-form solution

    log p_H = (log p^_H - a) / (1 + b),

so no iteration is needed; it exists and is unique when 1 + b > 0 (reports grow with the group's size). With
b <= -1 the curve cannot be inverted and the corrected estimate is undefined.

The intercept a also absorbs any common scale of the degree (the known-population degree is itself built from
the distorted reports of the known groups); because the hidden group is scaled by the same degree, that scale
cancels in the inversion. A hidden group is corrected at the size the respondents see (before any visibility
factor divides it): the curve describes how respondents recall the members they know of.

Uncertainty: the curve is refitted on every rescaled-bootstrap replicate, from that replicate's own reports, and
each replicate's hidden estimate is inverted through its own curve, so the percentile interval carries the
sampling uncertainty of a and b.

Assumptions and failure modes:

* the known groups carry the same recall distortion as a hidden group of the same size; groups that are hard to
  recognise (transmission error) or socially distant (barrier effects) depart from the curve for reasons the
  curve does not model;
* the curve is a straight line on the log-log scale; beyond the range of known-group sizes it is an
  extrapolation, and the correction is then a modelling assumption, not a calibration (a warning says so);
* known groups' residual scatter around the line beyond sampling noise (mis-sized groups, group-specific
  visibility) is not in the interval; the fit reports the residual standard deviation so a reader can judge it;
* every known group needs at least one reported contact (log 0 is undefined); a bootstrap replicate in which a
  known group has none gives no estimate and is counted among the failed replicates.

References: Killworth, McCarty, Bernard, Johnsen, Domini & Shelley (2003), Social Networks 25:141-160;
McCormick, Salganik & Zheng (2010), JASA 105:59-70; Maltiel, Raftery, McCormick & Baraff (2015), Annals of
Applied Statistics 9:1247-1277.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiddenpop.errors import ConfigError, ModelError
from hiddenpop.nsum.specs import RECALL_CURVES

__all__ = [
    "MIN_KNOWN_GROUPS",
    "RECALL_CURVES",
    "RecallFit",
    "check_recall",
    "curve_table",
    "fit_loglinear",
    "invert",
]

#: A line has two parameters; with a third group its residual scatter can be seen.
MIN_KNOWN_GROUPS = 3
#: Below this value of 1 + b the inversion magnifies the hidden group's reported share by more than a factor 10
#: per unit on the log scale; a warning says so.
STEEP_INVERSE = 0.1


def check_recall(recall: str) -> str:
    if recall not in RECALL_CURVES:
        raise ConfigError(f"recall must be one of {list(RECALL_CURVES)}, got {recall!r}")
    return recall


def fit_loglinear(log_share: np.ndarray, log_ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares intercept and slope of ``log_ratio`` on ``log_share``.

    ``log_share`` has one value per known group (K); ``log_ratio`` is (K,) or (R, K), one fit per row. Rows with a
    non-finite value give NaN."""
    x = np.asarray(log_share, dtype=float)
    y = np.asarray(log_ratio, dtype=float)
    centre = x.mean()
    xc = x - centre
    sxx = float(np.sum(xc**2))
    if not sxx > 0:
        raise ModelError("the recall curve needs known groups of different sizes")
    slope = (y - y.mean(axis=-1, keepdims=True)) @ xc / sxx
    intercept = y.mean(axis=-1) - slope * centre
    return intercept, slope


def invert(log_reported_share: np.ndarray, intercept: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """log p solving log p^ = a + (1 + b) log p; NaN where 1 + b <= 0 (the curve cannot be inverted)."""
    power = 1.0 + np.asarray(slope, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(power > 0, (np.asarray(log_reported_share) - intercept) / np.where(power > 0, power, 1.0),
                        np.nan)


@dataclass
class RecallFit:
    """The curve of one estimator and degree, on the full sample and (optionally) on every replicate."""

    groups: list[str]
    sizes: np.ndarray  # known sizes N_k
    estimates: np.ndarray  # each known group estimated as if hidden, N_k^
    base: float  # the scale-up base N
    intercept: float
    slope: float
    intercept_reps: np.ndarray | None = None
    slope_reps: np.ndarray | None = None

    @property
    def log_share(self) -> np.ndarray:
        return np.log(self.sizes / self.base)

    @property
    def log_ratio(self) -> np.ndarray:
        return np.log(self.estimates / self.sizes)

    @property
    def residual_sd(self) -> float:
        resid = self.log_ratio - self.intercept - self.slope * self.log_share
        return float(np.sqrt(np.sum(resid**2) / (len(resid) - 2))) if len(resid) > 2 else float("nan")

    def correct(self, estimate: float) -> float:
        """The recall-corrected size of a group whose estimator gave ``estimate``."""
        if not estimate > 0:
            return 0.0 if estimate == 0 else float("nan")
        return float(self.base * np.exp(invert(np.log(estimate / self.base), self.intercept, self.slope)))

    def correct_replicates(self, estimates: np.ndarray) -> np.ndarray:
        """Replicate estimates corrected through each replicate's own curve."""
        assert self.intercept_reps is not None and self.slope_reps is not None
        est = np.asarray(estimates, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_share = np.log(np.where(est > 0, est, np.nan) / self.base)
            corrected = self.base * np.exp(invert(log_share, self.intercept_reps, self.slope_reps))
        return np.where(est == 0, 0.0, corrected)

    def summary(self) -> dict[str, float | int | list[float]]:
        out: dict[str, float | int | list[float]] = {
            "intercept": self.intercept, "slope": self.slope, "groups": len(self.groups),
            "residual_sd": self.residual_sd,
            "size_range": [float(self.sizes.min()), float(self.sizes.max())],
        }
        if self.slope_reps is not None:
            finite = self.slope_reps[np.isfinite(self.slope_reps)]
            if finite.size >= 2:
                out["slope_se"] = float(np.std(finite, ddof=1))
        return out


def fit_recall(groups: Sequence[str], sizes: np.ndarray, estimates: np.ndarray, base: float,
               replicate_estimates: np.ndarray | None = None, *, label: str = "") -> RecallFit:
    """Fit the log-linear curve on the known groups' estimates (and on each replicate's, shape (R, K))."""
    sizes = np.asarray(sizes, dtype=float)
    estimates = np.asarray(estimates, dtype=float)
    if len(groups) < MIN_KNOWN_GROUPS:
        raise ConfigError(f"the recall curve needs at least {MIN_KNOWN_GROUPS} known groups; {len(groups)} given "
                          "(add known groups or use --recall none)")
    empty = [g for g, e in zip(groups, estimates, strict=True) if not e > 0]
    if empty:
        raise ModelError(f"{label}recall curve: no respondent reports anyone in known group(s) {empty}; the curve "
                         "needs a positive count for every known group (drop those groups from the known sizes)")
    intercept, slope = fit_loglinear(np.log(sizes / base), np.log(estimates / sizes))
    fit = RecallFit(list(groups), sizes, estimates, float(base), float(intercept), float(slope))
    if replicate_estimates is not None:
        reps = np.asarray(replicate_estimates, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(np.where(reps > 0, reps, np.nan) / sizes)
        fit.intercept_reps, fit.slope_reps = fit_loglinear(np.log(sizes / base), log_ratio)
    return fit


def curve_table(fit: RecallFit, hidden: dict[str, tuple[float, float]], *, method: str, degree: str,
                level: float, points: int = 41) -> pd.DataFrame:
    """Rows for the diagnostic figure: the known groups (reported / expected against their size), the hidden
    groups (their estimator's answer over the corrected size, placed on the curve) and the fitted curve with its
    bootstrap band over a grid of sizes spanning both.

    ``hidden`` maps each hidden group to (uncorrected estimate, corrected estimate)."""
    rows = []
    for group, size, estimate in zip(fit.groups, fit.sizes, fit.estimates, strict=True):
        rows.append({"kind": "known", "group": group, "size": float(size), "ratio": float(estimate / size)})
    for group, (raw, corrected) in hidden.items():
        if corrected > 0 and np.isfinite(corrected):
            rows.append({"kind": "hidden", "group": group, "size": float(corrected), "ratio": float(raw / corrected)})
    sizes = [r["size"] for r in rows]
    grid = np.exp(np.linspace(np.log(min(sizes)), np.log(max(sizes)), points))
    alpha = 1.0 - level
    for size in grid:
        share = np.log(size / fit.base)
        row = {"kind": "curve", "group": "", "size": float(size),
               "ratio": float(np.exp(fit.intercept + fit.slope * share))}
        if fit.slope_reps is not None:
            values = fit.intercept_reps + fit.slope_reps * share
            values = values[np.isfinite(values)]
            if values.size >= 2:
                low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
                row["lower"], row["upper"] = float(np.exp(low)), float(np.exp(high))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["kind", "group", "size", "ratio", "lower", "upper"])
    for row in rows:
        if row["kind"] != "curve":
            frame.loc[(frame["kind"] == row["kind"]) & (frame["group"] == row["group"]), "fitted"] = float(
                np.exp(fit.intercept + fit.slope * np.log(row["size"] / fit.base)))
    frame.insert(0, "degree", degree)
    frame.insert(0, "method", method)
    frame["level"] = level
    return frame
