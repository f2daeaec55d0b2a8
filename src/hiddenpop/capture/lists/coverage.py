"""Sample-coverage estimators of population size (Chao and co-authors).

Two families, both closed-form in the capture-history counts, so the bootstrap is vectorised over
replicates:

* **Lists** (epidemiological version; Chao & Tsay 1998, Chao et al. 2001, as in R's CARE1):
  ``"Nhat-0 (Indep)"``, ``"Nhat (HSC)"`` and ``"Nhat-1 (LSC)"`` via :func:`sample_coverage`.
* **Occasions** (ecological M_th version; Chao, Lee & Jeng 1992; Lee & Chao 1994):
  ``"Nhat-0 (Mth coverage)"`` and ``"Nhat (Mth coverage)"`` via :func:`coverage_mth`.

Standard errors come from a seeded parametric bootstrap (a multinomial population of round(N̂) units over the
observed histories plus the unseen cell, re-estimated each time), intervals from Chao's (1987) log-transformed
construction ``[n + (N̂ − n)/C, n + (N̂ − n)·C]``, ``C = exp(z · sqrt(log(1 + se²/(N̂ − n)²)))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.capture.core.histories import Histories
from hiddenpop.distributions import two_sided_z
from hiddenpop.errors import ConfigError, DataError, locate
from hiddenpop.results import Estimates

LOW_COVERAGE = 0.55


# ---------------------------------------------------------------------------------------------- input adapter
@dataclass(frozen=True)
class PatternCounts:
    """Distinct capture histories (0/1 rows, one column per list/occasion) with their counts.

    Keyed on the pattern, never on row order: duplicate patterns are summed. ``patterns`` has shape
    (K, t) with K distinct non-empty histories; ``counts`` has shape (K,). Zero-count rows are kept
    (they matter for nothing here but are not an error).
    """

    patterns: np.ndarray
    counts: np.ndarray
    names: tuple[str, ...]
    source: str | None = None

    @property
    def occasions(self) -> int:
        return self.patterns.shape[1]

    @property
    def observed(self) -> int:
        return int(self.counts.sum())


def pattern_counts(
    data: Any,
    *,
    count_column: str | None = None,
    source: str | None = None,
) -> PatternCounts:
    """Validate capture-history input through the :class:`~hiddenpop.capture.core.histories.Histories` contract.

    ``data`` may be a path (CSV, Parquet, Excel, SPSS, Stata), a DataFrame, a ``Histories`` or a
    :class:`PatternCounts`. Patterns are keyed on the 0/1 history, never on row order; errors (non-0/1 cells,
    all-zero histories, negative or fractional counts, fewer than 2 lists) name the file, row and column.
    """

    if isinstance(data, PatternCounts):
        return data
    if isinstance(data, (str, Path)):
        histories = Histories.from_file(data, count_column=count_column)
    elif isinstance(data, pd.DataFrame):
        histories = Histories.from_frame(data, count_column=count_column, source=source)
    elif isinstance(data, Histories):
        histories = data
    else:
        raise ConfigError(
            f"capture histories must be a file path, a DataFrame or Histories, got {type(data).__name__}; "
            "pass the path of a CSV with 0/1 columns and an optional count column"
        )
    if histories.is_frequency_only:
        raise DataError(
            f"{locate(histories.source)}these estimators need the capture histories (one 0/1 column per "
            "list/occasion), not capture-count frequencies (nbcap, freq)"
        )
    return PatternCounts(
        patterns=np.asarray(histories.patterns, dtype=np.int64),
        counts=np.asarray(histories.counts, dtype=np.float64),
        names=tuple(str(label) for label in histories.labels),
        source=histories.source,
    )


# ---------------------------------------------------------------------------------------------- statistics
def _list_statistics(patterns: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Sufficient statistics of the list estimators, vectorised: ``counts`` is (K,) or (B, K)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    t = patterns.shape[1]
    size = patterns.sum(axis=1)
    on_list = counts @ patterns  # (B, t) n_j
    single = counts @ ((size == 1)[:, None] & (patterns == 1))  # (B, t) Z_j: seen on list j only
    observed = counts.sum(axis=1)  # (B,) M
    pair_i, pair_j = np.triu_indices(t, k=1)
    both = (patterns[:, pair_i] == 1) & (patterns[:, pair_j] == 1)  # (K, P)
    b_pair = counts @ both  # B_ij: on both i and j, whatever else
    only_pair = counts @ (both & (size == 2)[:, None])  # on i and j and nothing else
    a_pair = single[:, pair_i] + single[:, pair_j] + 2.0 * only_pair
    return {
        "t": np.asarray(t),
        "observed": observed,
        "on_list": on_list,
        "single": single,
        "a_pair": a_pair,
        "b_pair": b_pair,
        "pair_i": pair_i,
        "pair_j": pair_j,
    }


def _list_estimators(patterns: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """N̂-0, N̂ (HSC), N̂-1 (LSC), Ĉ, D and the pairwise coefficients of covariation; each (B,)."""
    s = _list_statistics(patterns, counts)
    t = int(s["t"])
    observed, on_list, single = s["observed"], s["on_list"], s["single"]
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = 1.0 - (single / on_list).mean(axis=1)
        d_stat = observed - single.mean(axis=1)
        n0 = d_stat / coverage
        product = on_list[:, s["pair_i"]] * on_list[:, s["pair_j"]]
        ratio = s["b_pair"] / product
        numerator = t * d_stat - s["a_pair"].sum(axis=1)
        denominator = t * coverage - (s["a_pair"] * ratio).sum(axis=1)
        hsc = numerator / denominator
        hsc = np.where((denominator < 1e-4) | (hsc < observed), observed, hsc)
        n_tilde = n0 + (s["a_pair"] * (n0[:, None] * ratio - 1.0)).sum(axis=1) / (t * coverage)
        covariation = n_tilde[:, None] * ratio - 1.0
        lsc = n0 + (s["a_pair"] * covariation).sum(axis=1) / (t * coverage)
    return {
        "independence": n0,
        "hsc": hsc,
        "lsc": lsc,
        "coverage": coverage,
        "d": d_stat,
        "observed": observed,
        "covariation": covariation,
    }


def _mth_statistics(patterns: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Coverage, CV² and both M_th coverage estimators, vectorised over rows of ``counts``."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    size = patterns.sum(axis=1).astype(np.float64)
    observed = counts.sum(axis=1)
    f1 = counts @ (size == 1).astype(np.float64)
    total_captures = counts @ size
    pairs_within = counts @ (size * (size - 1.0))
    on_occasion = counts @ patterns
    sum_products = (on_occasion.sum(axis=1) ** 2 - (on_occasion**2).sum(axis=1)) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = 1.0 - f1 / total_captures
        n0 = observed / coverage
        cv2 = np.maximum(n0 * pairs_within / (2.0 * sum_products) - 1.0, 0.0)
        nhat = n0 + f1 / coverage * cv2
    return {
        "independence": n0,
        "heterogeneity": nhat,
        "coverage": coverage,
        "cv2": cv2,
        "observed": observed,
        "f1": f1,
    }


# ---------------------------------------------------------------------------------------------- bootstrap + CI
def log_transformed_interval(
    estimate: float, se: float, observed: float, level: float
) -> tuple[float, float]:
    """Chao (1987) log-transformed interval for N̂ with lower bound ≥ the number observed.

    ``C = exp(z_{1-α/2} · sqrt(log(1 + se² / (N̂ − n)²)))``; interval ``[n + (N̂ − n)/C, n + (N̂ − n)·C]``.
    Undefined (NaN) when N̂ ≤ n or se is not finite.
    """
    excess = estimate - observed
    if not (np.isfinite(se) and np.isfinite(excess)) or excess <= 0:
        return float("nan"), float("nan")
    z = two_sided_z(level)
    factor = np.exp(z * np.sqrt(np.log1p(se**2 / excess**2)))
    return float(observed + excess / factor), float(observed + excess * factor)


def _bootstrap_counts(
    counts: np.ndarray, population: float, reps: int, rng: np.random.Generator
) -> np.ndarray:
    """Multinomial populations of round(N̂) units over the observed histories plus the unseen cell."""
    observed = counts.sum()
    size = int(max(round(population), observed))
    probs = np.append(counts, size - observed) / size
    draws = rng.multinomial(size, probs, size=reps)
    return draws[:, :-1].astype(np.float64)


def _validate_common(bootstrap: int, level: float) -> None:
    if bootstrap < 0 or int(bootstrap) != bootstrap:
        raise ConfigError(f"bootstrap must be a whole number ≥ 0, got {bootstrap}")
    if not 0 < level < 1:
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level}")


def _se_rows(
    estimators: dict[str, str],
    point: dict[str, np.ndarray],
    compute: Any,
    data: PatternCounts,
    bootstrap: int,
    seed: int | None,
    level: float,
    notes: list[str],
    warnings: list[str],
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    observed = float(data.observed)
    for key, label in estimators.items():
        estimate = float(point[key][0])
        se = float("nan")
        failed = 0
        if bootstrap > 0 and np.isfinite(estimate):
            replicate = compute(data.patterns, _bootstrap_counts(data.counts, estimate, bootstrap, rng))[key]
            ok = np.isfinite(replicate)
            failed = int((~ok).sum())
            if ok.sum() >= 2:
                se = float(np.std(replicate[ok], ddof=1))
            if failed:
                notes.append(
                    f"{label}: {failed} of {bootstrap} bootstrap replicates had an empty list/occasion and no "
                    "estimate; the standard error uses the rest"
                )
        lower, upper = log_transformed_interval(estimate, se, observed, level)
        if bootstrap > 0 and np.isfinite(estimate) and estimate <= observed:
            warnings.append(f"{label}: estimate equals the number observed; no interval is reported")
        rows.append(
            {
                "quantity": "population",
                "method": label,
                "estimate": estimate,
                "se": se,
                "lower": lower,
                "upper": upper,
                "level": level,
                "observed": observed,
                "bootstrap": bootstrap,
                "bootstrap_failed": failed,
                "interval": "log-transformed (Chao 1987)" if bootstrap > 0 else "none (no bootstrap)",
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------- public API
def sample_coverage(
    data: Any,
    *,
    count_column: str | None = None,
    bootstrap: int = 200,
    seed: int | None = 1,
    level: float = 0.95,
) -> Estimates:
    """Sample-coverage estimators for t ≥ 3 overlapping lists (Chao & Tsay 1998; Chao et al. 2001).

    Notation: n_j units on list j, Z_j units on list j only, M units seen, t lists.

    * Sample coverage Ĉ = 1 − (1/t) Σ_j Z_j / n_j; D = M − (1/t) Σ_j Z_j.
    * **Nhat-0 (Indep)**: N̂₀ = D / Ĉ — lists independent (no dependence, no heterogeneity).
    * **Nhat (HSC)**: N̂ = (tD − Σ_{i<j} A_ij) / (tĈ − Σ_{i<j} A_ij B_ij / (n_i n_j)), with
      A_ij = Z_i + Z_j + 2·(units on exactly i and j), B_ij = units on both i and j. Set to M when the
      denominator is below 1e-4 or N̂ < M (as CARE1 does). Valid when coverage is high.
    * **Nhat-1 (LSC)**: one-step estimator for low coverage: Ñ = N̂₀ + (tĈ)⁻¹ Σ A_ij (N̂₀ B_ij/(n_i n_j) − 1),
      r̂_ij = Ñ B_ij/(n_i n_j) − 1 (estimated coefficient of covariation of lists i, j),
      N̂₁ = D/Ĉ + (tĈ)⁻¹ Σ A_ij r̂_ij.

    Assumptions: closed population; dependence between lists enters through pairwise coefficients of
    covariation (higher-order effects are ignored). Fails when Ĉ is low (≤ 0.55: the HSC estimate is then
    unstable and Chao et al. advise N̂₀ or N̂₁), when a list has no unit seen on it alone, or with two lists.
    Standard errors: parametric bootstrap (``bootstrap`` replicates, ``seed``), log-transformed interval.

    Reference: Chao, A., Tsay, P. K., Lin, S.-H., Shau, W.-Y. & Chao, D.-Y. (2001). The applications of
    capture-recapture models to epidemiological data. Statistics in Medicine 20, 3123-3157.
    """
    _validate_common(bootstrap, level)
    data = pattern_counts(data, count_column=count_column)
    t = data.occasions
    if t < 3:
        raise DataError(
            f"{locate(data.source)}sample-coverage list estimators need at least 3 lists, found {t}; "
            "for two lists use the Chapman estimator"
        )
    on_list = data.counts @ data.patterns
    if np.any(on_list == 0):
        empty = [data.names[j] for j in np.flatnonzero(on_list == 0)]
        raise DataError(f"{locate(data.source)}list(s) {empty} contain nobody; remove them before estimating")
    point = _list_estimators(data.patterns, data.counts)
    warnings: list[str] = []
    notes: list[str] = []
    coverage = float(point["coverage"][0])
    if coverage <= LOW_COVERAGE:
        warnings.append(
            f"sample coverage Ĉ = {coverage:.3f} ≤ {LOW_COVERAGE}: the lists overlap too little for the HSC "
            "estimate, which is unstable; use Nhat-0 (Indep) or Nhat-1 (LSC)"
        )
    labels = {"independence": "Nhat-0 (Indep)", "hsc": "Nhat (HSC)", "lsc": "Nhat-1 (LSC)"}
    rows = _se_rows(labels, point, _list_estimators, data, bootstrap, seed, level, notes, warnings)
    if float(point["hsc"][0]) == data.observed:
        warnings.append(
            "Nhat (HSC) hit its floor (the number observed): the HSC formula broke down on these data"
        )
    for row in rows:
        row["coverage"] = coverage
    pair_i, pair_j = np.triu_indices(t, k=1)
    dependence = pd.DataFrame(
        {
            "list_i": [data.names[i] for i in pair_i],
            "list_j": [data.names[j] for j in pair_j],
            "both": (data.counts @ ((data.patterns[:, pair_i] == 1) & (data.patterns[:, pair_j] == 1))),
            "covariation": point["covariation"][0],
        }
    )
    return Estimates.from_rows(
        rows,
        settings={
            "estimator": "sample coverage (lists)",
            "bootstrap": bootstrap,
            "level": level,
            "lists": list(data.names),
        },
        seed=seed if bootstrap > 0 else None,
        warnings=warnings,
        notes=[
            *notes,
            "covariation r̂_ij > 0 means lists i and j share more units than independence implies (LSC step)",
        ],
        diagnostics={
            "observed": data.observed,
            "lists": t,
            "coverage": coverage,
            "d": float(point["d"][0]),
        },
        tables={"dependence": dependence},
    )


def coverage_mth(
    data: Any,
    *,
    count_column: str | None = None,
    bootstrap: int = 200,
    seed: int | None = 1,
    level: float = 0.95,
) -> Estimates:
    """Sample-coverage estimator for model M_th over t capture occasions (Chao, Lee & Jeng 1992).

    With f_k units caught exactly k times, n units caught, n_j caught on occasion j:

    * Sample coverage Ĉ = 1 − f_1 / Σ_k k f_k.
    * **Nhat-0 (Mth coverage)**: N̂₀ = n / Ĉ (no heterogeneity).
    * Squared CV of the individual capture effects (p_ij = p_i e_j):
      γ̂² = max{ N̂₀ · Σ_k k(k−1) f_k / (2 Σ_{j<l} n_j n_l) − 1, 0 }.
    * **Nhat (Mth coverage)**: N̂ = n/Ĉ + (f_1/Ĉ) γ̂².

    Assumptions: closed population, capture probabilities multiplicative in an individual effect and an
    occasion effect (M_th with p_ij = p_i e_j); no behavioural response. The estimator is biased low when
    heterogeneity is large and coverage is low (Ĉ small, many singletons), and undefined when nobody is
    caught twice (Ĉ = 0). The bias-corrected one-step γ̂₁² of Lee & Chao (1994) is not implemented.
    Standard errors: parametric bootstrap (multinomial over observed histories plus the unseen cell,
    ``seed``), log-transformed interval (Chao 1987).

    References: Chao, A., Lee, S.-M. & Jeng, S.-L. (1992). Estimating population size for capture-recapture
    data when capture probabilities vary by time and individual animal. Biometrics 48, 201-216.
    Lee, S.-M. & Chao, A. (1994). Estimating population size via sample coverage for closed
    capture-recapture models. Biometrics 50, 88-97.
    """
    _validate_common(bootstrap, level)
    data = pattern_counts(data, count_column=count_column)
    point = _mth_statistics(data.patterns, data.counts)
    coverage = float(point["coverage"][0])
    if not coverage > 0:
        raise DataError(
            f"{locate(data.source)}nobody was caught more than once (sample coverage 0); "
            "the coverage estimator is undefined"
        )
    warnings: list[str] = []
    notes: list[str] = []
    if coverage <= LOW_COVERAGE:
        warnings.append(
            f"sample coverage Ĉ = {coverage:.3f} ≤ {LOW_COVERAGE}: most captures are singletons; "
            "the coverage estimate is unstable and likely biased low"
        )
    labels = {"independence": "Nhat-0 (Mth coverage)", "heterogeneity": "Nhat (Mth coverage)"}
    rows = _se_rows(labels, point, _mth_statistics, data, bootstrap, seed, level, notes, warnings)
    for row in rows:
        row["coverage"] = coverage
        row["cv2"] = float(point["cv2"][0])
    return Estimates.from_rows(
        rows,
        settings={"estimator": "sample coverage (M_th occasions)", "bootstrap": bootstrap, "level": level},
        seed=seed if bootstrap > 0 else None,
        warnings=warnings,
        notes=notes,
        diagnostics={
            "observed": data.observed,
            "occasions": data.occasions,
            "coverage": coverage,
            "cv2": float(point["cv2"][0]),
            "f1": float(point["f1"][0]),
        },
    )
