"""Shares from a reviewed sample when many reviews come back "unknown", and their combination with totals.

A random sample of units (e.g. IP addresses) is reviewed and each is classified positive (e.g. livestreamed
exploitation), negative, or unknown. With ``x`` positive, ``y`` negative, ``u`` unknown and ``n = x + y + u``:

Missing at random (MAR, complete-case)
    If "unknown" is unrelated to the true status, ``p = x / (x + y)`` with ``n_known = x + y``.

Worst/best-case bounds (Manski 1989, 2003)
    Without that assumption the data only identify the interval ``[x / n, (x + u) / n]`` (all unknowns
    negative, all unknowns positive). Its width is exactly the unknown share ``u / n``: with 80% unknown (as in
    Study 1) the bounds span 0.8 and say little, which is the honest answer. A confidence region covering the
    whole identification region with probability at least ``1 - alpha`` is ``[L(x, n), U(x + u, n)]`` where
    ``L``/``U`` are the lower/upper limits of two-sided ``1 - alpha`` intervals (conservative). The Imbens and
    Manski (2004) interval covers the share itself and is narrower when the bounds are far apart.

Wilson score interval (Wilson 1927)
    ``(x + z^2/2) / (n + z^2) +/- z / (n + z^2) * sqrt(x (n - x) / n + z^2 / 4)``; good coverage even for
    small ``n`` or ``p`` near 0 or 1 (Brown, Cai and DasGupta 2001).

Clopper-Pearson exact interval (Clopper and Pearson 1934)
    ``[B(alpha/2; x, n - x + 1), B(1 - alpha/2; x + 1, n - x)]`` with ``B`` the beta quantile (0 when ``x = 0``,
    1 when ``x = n``); coverage at least ``1 - alpha`` for every ``p`` (conservative).

Both intervals treat the sample as drawn with replacement (binomial); for a sample that is a large fraction of
a finite population they are conservative (no finite population correction).

Combination with a capture-recapture total (Monte Carlo)
    The number of positive units is ``T = N * p``. ``N`` is drawn from the sampling distribution implied by the
    capture-recapture estimate (log-normal matched to its confidence interval by default, as for Chao's
    interval, or normal from a standard error), ``p`` from its Jeffreys posterior ``Beta(x + 1/2, y + 1/2)``
    (or the bound versions), independently, and the percentile interval of ``N * p`` is reported. Assumes the
    total and the review sample come from independent data and refer to the same units and period; fails when
    the total's interval is badly asymmetric in a way the log-normal does not capture, or when ``x`` is tiny
    (then the product's interval is dominated by the share and is wide, correctly).
"""

from __future__ import annotations

import math

import numpy as np

from hiddenpop.brent import find_root
from hiddenpop.data.io import missing_column
from hiddenpop.distributions import beta_quantile, normal_cdf, two_sided_z
from hiddenpop.errors import ConfigError, DataError, locate
from hiddenpop.results import Estimates
from hiddenpop.review.specs import ReviewEstimateSpec
from hiddenpop.specs import to_dict


def _z(level: float) -> float:
    if not (0.0 < level < 1.0):
        raise ConfigError(f"confidence level must be strictly between 0 and 1 (got {level!r})")
    return two_sided_z(level)


def _check_counts(x: int, n: int) -> None:
    if not (isinstance(x, (int, np.integer)) and isinstance(n, (int, np.integer))) or x < 0 or n < 0 or x > n:
        raise ConfigError(f"counts must be whole numbers with 0 <= positives <= total (got {x!r} of {n!r})")


def wilson_interval(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``x / n`` (NaN, NaN when ``n = 0``)."""
    _check_counts(x, n)
    if n == 0:
        return math.nan, math.nan
    z = _z(level)
    centre = (x + z * z / 2.0) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4.0)
    lower = 0.0 if x == 0 else max(0.0, centre - half)
    upper = 1.0 if x == n else min(1.0, centre + half)
    return lower, upper


def clopper_pearson_interval(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson exact interval for ``x / n`` (NaN, NaN when ``n = 0``)."""
    _check_counts(x, n)
    if n == 0:
        return math.nan, math.nan
    alpha = 1.0 - level
    _z(level)
    lower = 0.0 if x == 0 else float(beta_quantile(alpha / 2.0, x, n - x + 1))
    upper = 1.0 if x == n else float(beta_quantile(1.0 - alpha / 2.0, x + 1, n - x))
    return lower, upper


INTERVALS = {"Wilson": wilson_interval, "Clopper-Pearson": clopper_pearson_interval}


def imbens_manski_interval(positive: int, unknown: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Imbens and Manski (2004) interval covering the *share itself* (not the whole bound interval).

    With bound estimates ``l = x / n``, ``u = (x + unknown) / n``, standard errors ``s_l``, ``s_u`` (binomial)
    and ``s = max(s_l, s_u)``, the interval is ``[l - c s_l, u + c s_u]`` where ``c`` solves
    ``Phi(c + (u - l) / s) - Phi(-c) = level``: ``c`` is the two-sided ``z`` when the bounds coincide and tends to
    the one-sided ``z`` as they separate. Normal approximation, so use it only with several positives and
    negatives; clipped to [0, 1].
    """

    _z(level)
    lower_share, upper_share = positive / n, (positive + unknown) / n
    se_lower = math.sqrt(lower_share * (1 - lower_share) / n)
    se_upper = math.sqrt(upper_share * (1 - upper_share) / n)
    scale = max(se_lower, se_upper)
    if scale == 0:
        return lower_share, upper_share
    gap = (upper_share - lower_share) / scale
    c = find_root(lambda c: normal_cdf(c + gap) - normal_cdf(-c) - level, 0.0, 10.0)
    return max(0.0, lower_share - c * se_lower), min(1.0, upper_share + c * se_upper)


def estimate_share(positive: int, negative: int, unknown: int = 0, *, level: float = 0.95) -> Estimates:
    """Share positive under MAR and as worst/best-case bounds, each with Wilson and Clopper-Pearson intervals.

    Rows (``quantity``, ``method``):

    * ``share`` / ``Wilson (unknown missing at random)`` and ``Clopper-Pearson (...)``: ``x / (x + y)``;
    * ``share_lower_bound`` / ``... (unknowns all negative)``: ``x / n``;
    * ``share_upper_bound`` / ``... (unknowns all positive)``: ``(x + u) / n``;
    * ``share_bounds`` / ``Manski bounds, <interval> outer limits``: estimate NaN, ``lower``/``upper`` the
      confidence region ``[L(x, n), U(x + u, n)]`` with the identification region in ``bound_lower`` and
      ``bound_upper``;
    * ``unknown_share``: ``u / n`` with its intervals.
    """
    for name, value in (("positive", positive), ("negative", negative), ("unknown", unknown)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"{name} count must be a whole number >= 0 (got {value!r})")
    positive, negative, unknown = int(positive), int(negative), int(unknown)
    n = positive + negative + unknown
    if n == 0:
        raise ConfigError("no reviewed units: all counts are zero")
    known = positive + negative
    rows = []
    warnings: list[str] = []
    counts = {"positive": positive, "negative": negative, "unknown": unknown, "reviewed": n}

    def add(quantity: str, label: str, x: int, m: int) -> None:
        for name, interval in INTERVALS.items():
            est = x / m if m else math.nan
            lo, hi = interval(x, m, level)
            rows.append(
                {
                    "quantity": quantity,
                    "method": f"{name} ({label})",
                    "estimate": est,
                    "se": math.sqrt(est * (1 - est) / m) if m else math.nan,
                    "lower": lo,
                    "upper": hi,
                    "level": level,
                    "numerator": x,
                    "denominator": m,
                }
            )

    add("share", "unknown missing at random", positive, known)
    add("share_lower_bound", "unknowns all negative", positive, n)
    add("share_upper_bound", "unknowns all positive", positive + unknown, n)
    for name, interval in INTERVALS.items():
        rows.append(
            {
                "quantity": "share_bounds",
                "method": f"Manski bounds, {name} outer limits",
                "estimate": math.nan,
                "lower": interval(positive, n, level)[0],
                "upper": interval(positive + unknown, n, level)[1],
                "level": level,
                "bound_lower": positive / n,
                "bound_upper": (positive + unknown) / n,
                "numerator": positive,
                "denominator": n,
            }
        )
    im_lower, im_upper = imbens_manski_interval(positive, unknown, n, level)
    rows.append(
        {
            "quantity": "share_bounds",
            "method": "Imbens-Manski interval for the share",
            "estimate": math.nan,
            "lower": im_lower,
            "upper": im_upper,
            "level": level,
            "bound_lower": positive / n,
            "bound_upper": (positive + unknown) / n,
            "numerator": positive,
            "denominator": n,
        }
    )
    add("unknown_share", "share of reviews that are unknown", unknown, n)
    if known == 0:
        warnings.append(
            "every review is unknown: the share is not estimable under missing at random; only the "
            "trivial bounds [0, 1] remain"
        )
    if unknown / n >= 0.5:
        warnings.append(
            f"{unknown / n:.0%} of reviews are unknown: the worst/best-case bounds are {unknown / n:.2f} wide, so the "
            "share rests on the missing-at-random assumption; compare both columns before quoting a figure"
        )
    return Estimates.from_rows(
        rows,
        settings={"level": level, **counts},
        warnings=warnings,
        diagnostics={**counts, "known": known, "unknown_share": unknown / n},
    )


def total_draws(
    rng: np.random.Generator,
    draws: int,
    total: float,
    *,
    total_se: float | None,
    total_lower: float | None,
    total_upper: float | None,
    total_level: float,
    distribution: str,
) -> np.ndarray:
    """Draws of the total from its sampling distribution (log-normal or normal) matched to the estimate's
    interval (``mu = (log L + log U) / 2``, ``sigma = (log U - log L) / (2 z)``) or standard error."""
    if not (math.isfinite(total) and total > 0):
        raise ConfigError(f"total must be a positive number (got {total!r})")
    has_ci = total_lower is not None or total_upper is not None
    if has_ci and (total_lower is None or total_upper is None):
        raise ConfigError("give both --total-lower and --total-upper (or --total-se)")
    if has_ci == (total_se is not None):
        raise ConfigError("give the total's uncertainty as either --total-se or --total-lower/--total-upper")
    z = _z(total_level)
    if has_ci:
        if not (0 < total_lower <= total <= total_upper):
            raise ConfigError(
                f"the total's interval must contain the total and be positive (got {total_lower!r} <= {total!r} <= "
                f"{total_upper!r})"
            )
    elif not (math.isfinite(total_se) and total_se >= 0):
        raise ConfigError(f"--total-se must be >= 0 (got {total_se!r})")
    if distribution == "lognormal":
        if has_ci:
            mu = (math.log(total_lower) + math.log(total_upper)) / 2.0
            sigma = (math.log(total_upper) - math.log(total_lower)) / (2.0 * z)
        else:
            sigma = math.sqrt(math.log1p((total_se / total) ** 2))
            mu = math.log(total) - sigma * sigma / 2.0
        return np.exp(mu + sigma * rng.standard_normal(draws))
    if distribution == "normal":
        sd = (total_upper - total_lower) / (2.0 * z) if has_ci else total_se
        centre = (total_upper + total_lower) / 2.0 if has_ci else total
        return centre + sd * rng.standard_normal(draws)
    raise ConfigError(f"distribution must be 'lognormal' or 'normal' (got {distribution!r})")


def propagate_share(
    total_sample: np.ndarray, positive: int, negative: int, rng: np.random.Generator, *, level: float = 0.95
) -> tuple[np.ndarray, float, float]:
    """Multiply total draws by Jeffreys-posterior share draws ``Beta(x + 1/2, y + 1/2)``; returns the product
    draws and their equal-tailed percentile interval at ``level``."""
    share = rng.beta(positive + 0.5, negative + 0.5, size=len(total_sample))
    product = total_sample * share
    alpha = 1.0 - level
    lower, upper = np.quantile(product, [alpha / 2.0, 1.0 - alpha / 2.0])
    return product, float(lower), float(upper)


def combine_with_total(
    positive: int,
    negative: int,
    unknown: int = 0,
    *,
    total: float,
    total_se: float | None = None,
    total_lower: float | None = None,
    total_upper: float | None = None,
    total_level: float = 0.95,
    distribution: str = "lognormal",
    level: float = 0.95,
    draws: int = 100_000,
    seed: int,
) -> Estimates:
    """Number of positive units ``N * p`` with both uncertainties propagated by simulation (seeded).

    See the module docstring. Rows ``positive_total`` for the MAR share and for the two bounds; ``estimate`` is
    the plug-in ``N_hat * p_hat`` and ``lower``/``upper`` the percentile interval of the simulated product.
    """
    if draws < 1000:
        raise ConfigError(f"draws must be at least 1000 for stable percentiles (got {draws})")
    share = estimate_share(positive, negative, unknown, level=level)
    rng = np.random.default_rng(seed)
    # the total's uncertainty as given: what the draws follow and what the settings record
    total_options = {"total_se": total_se, "total_lower": total_lower, "total_upper": total_upper,
                     "total_level": total_level, "distribution": distribution}
    n_total = total_draws(rng, draws, total, **total_options)
    warnings = list(share.warnings)
    negative_draws = int((n_total < 0).sum())
    if negative_draws:
        warnings.append(
            f"{negative_draws} of {draws} simulated totals were negative under the normal "
            "distribution; use --total-dist lognormal"
        )
    n = positive + negative + unknown
    scenarios = [
        (
            "share_mar",
            "unknown missing at random",
            positive,
            negative,
            positive / (positive + negative) if positive + negative else math.nan,
        ),
        ("share_lower_bound", "unknowns all negative", positive, negative + unknown, positive / n),
        (
            "share_upper_bound",
            "unknowns all positive",
            positive + unknown,
            negative,
            (positive + unknown) / n,
        ),
    ]
    rows = []
    for name, label, a, b, p_hat in scenarios:
        if a + b == 0:
            continue
        product, lo, hi = propagate_share(n_total, a, b, rng, level=level)
        rows.append(
            {
                "quantity": "positive_total",
                "method": f"Monte Carlo, {distribution} total x Jeffreys share ({label})",
                "estimate": total * p_hat,
                "se": float(product.std(ddof=1)),
                "lower": float(lo),
                "upper": float(hi),
                "level": level,
                "share_scenario": name,
                "share": p_hat,
                "simulated_median": float(np.median(product)),
            }
        )
    result = Estimates.from_rows(
        rows,
        settings={"total": total, **total_options, "level": level, "draws": draws},
        seed=seed,
        warnings=warnings,
        notes=["the total and the share are assumed independent and to refer to the same units and period"],
        diagnostics=share.diagnostics,
    )
    return share.combine(result)


def count_reviews(
    reviews,
    *,
    status: str,
    positive: list[str],
    negative: list[str],
    unknown: list[str],
    unit: str | None = None,
    source: str | None = None,
) -> tuple[int, int, int]:
    """Count positive/negative/unknown reviews in a one-row-per-unit review file (validated, values never echoed)."""
    if status not in reviews.columns:
        raise missing_column(source, status, reviews.columns, role="review status")
    lists = {
        "positive": [v.lower() for v in positive],
        "negative": [v.lower() for v in negative],
        "unknown": [v.lower() for v in unknown],
    }
    seen: dict[str, str] = {}
    for name, values in lists.items():
        for value in values:
            if value in seen:
                raise ConfigError(f"category {value!r} is listed as both {seen[value]} and {name}")
            seen[value] = name
    if not lists["positive"] or not lists["negative"]:
        raise ConfigError(
            "give the positive and negative categories (--positive, --negative; --unknown optional)"
        )
    if unit is not None:
        if unit not in reviews.columns:
            raise missing_column(source, unit, reviews.columns, role="unit")
        duplicated = reviews[unit].duplicated(keep="first") & reviews[unit].notna()
        if duplicated.any():
            row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
            raise DataError(
                f"{locate(source, row, unit)}unit appears more than once; the review sample is by unit, not by "
                "report: give one status per unit"
            )
    counts = {"positive": 0, "negative": 0, "unknown": 0}
    for i, value in enumerate(reviews[status].tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
            raise DataError(
                f"{locate(source, i + 1, status)}status is missing; record an explicit unknown category "
                "(and list it with --unknown) rather than leaving the cell empty"
            )
        category = seen.get(str(value).strip().lower())
        if category is None:
            raise DataError(
                f"{locate(source, i + 1, status)}status is not one of the categories given with --positive "
                f"{positive}, --negative {negative}, --unknown {unknown}; add it to one of them"
            )
        counts[category] += 1
    return counts["positive"], counts["negative"], counts["unknown"]


def review_estimate(positive: int, negative: int, unknown: int, spec: ReviewEstimateSpec) -> Estimates:
    """The share (:func:`estimate_share`), or with ``spec.total`` the number of positive units in that total
    (:func:`combine_with_total`); the command line calls this."""

    if spec.total is None:
        if spec.total_se is not None or spec.total_lower is not None or spec.total_upper is not None:
            raise ConfigError("--total-se/--total-lower/--total-upper need --total")
        result = estimate_share(positive, negative, unknown, level=spec.level)
    else:
        result = combine_with_total(positive, negative, unknown, total=spec.total, total_se=spec.total_se,
                                    total_lower=spec.total_lower, total_upper=spec.total_upper,
                                    total_level=spec.total_level, distribution=spec.total_dist, level=spec.level,
                                    draws=spec.draws, seed=spec.seed)
    result.settings = {**to_dict(spec), **result.settings}
    return result
