"""Pollock's (1982) robust design as one log-linear model (Rivest & Daigle 2004; Rcapture ``robustd.t``).

Data: ``I >= 2`` primary periods, period ``i`` made of ``t_i >= 2`` secondary occasions, so a unit's history is
``omega = (omega_1, ..., omega_I)`` with ``omega_i`` its 0/1 sub-history in period ``i``; ``omega*_i = 1`` when
``omega_i`` has a capture. The population is closed within a primary period and open between them. The expected
count of history ``omega`` is

    log mu_omega = u + sum_{j=1}^{I-1} gamma_j 1[omega*_1 = ... = omega*_j = 0]
                     + sum_{i=1}^{I-1} gamma_{I-1+i} 1[omega*_I = ... = omega*_{I-i+1} = 0]
                     + sum_i omega*_i x_i(omega_i)' beta_i,

the gammas of Cormack's open model on the primary periods (arrivals, departures) and, within each period, the
columns ``x_i`` of a closed model on the sub-history (``k`` = captures in the period): M0 ``k``; Mt one column
per occasion; Mh ``k`` plus a heterogeneity column set (Chao ``(k - j + 1)_+``, Poisson ``2^k - 1``, Darroch
``k^2 / 2``, Gamma ``-log(theta + k) + log theta``); Mth the occasion columns plus those. Every ``x_i`` is 0 at the
empty sub-history, so the probability of being caught at least once in period ``i`` is

    p*_i = S_i / (1 + S_i),    S_i = sum_{omega_i != 0} exp(x_i(omega_i)' beta_i),

the closed model's own ``1 - exp(gamma)/N``. Survival ``phi_i``, period sizes ``N_i`` and arrivals
``B_i = N_{i+1} - phi_i N_i`` follow from ``u``, the gammas and these ``p*_i`` by Cormack's formulas
(:func:`hiddenpop.capture.events.open.cormack_demography`); unlike the open model alone, every ``p*_i`` is
estimated from the recaptures inside its period, so ``N_1``, ``N_I``, ``phi_{I-1}``, ``B_1`` and ``B_{I-1}`` are
identified too. The total ever present is ``N_1 + sum_i B_i``.

The fit never builds the ``2^(sum t_i) - 1`` cells. Because ``sum_{omega_i} exp(x_i' beta_i) = S_i``, the Poisson
likelihood needs only the counts of the ``2^I - 1`` primary patterns and of the sub-histories of each period:

    l = sum_{omega*} Y_{omega*} z_{omega*}'(u, gamma) + sum_i T_i' beta_i - sum_{omega*} M_{omega*},
    log M_{omega*} = z_{omega*}'(u, gamma) + sum_{i: omega*_i = 1} log S_i,

with ``T_i = sum_omega Y_omega omega*_i x_i(omega_i)``. Score and information are exact (Newton-Raphson with step
halving): with ``m_i`` the fitted number caught in period ``i`` and ``E_i``, ``C_i`` the mean and covariance of
``x_i`` under ``pi_i(omega_i) = exp(x_i' beta_i) / S_i``, the information is ``W' diag(M) W + blockdiag(m_i C_i)``
where row ``omega*`` of ``W`` is ``(z_{omega*}, omega*_1 E_1', ..., omega*_I E_I')``. This is the same model and MLE as
the full log-linear fit over all cells (tested against it). Deviance, df and AIC are those of the full table of
``2^(sum t_i) - 1`` histories, from the observed histories alone.

Constraints (``constrain_negative``, Rcapture ``neg = TRUE``): a Chao eta_j with j above the largest number of
captures seen in its period is fixed at 0 (no cell it acts on is observed); a negative eta is set to 0 (smallest j
first) and the model refitted; then a negative gamma (survival above 1 or negative arrivals) is fixed at 0, one at a
time, lowest index first. Standard errors: delta method on the inverse information; for ``N_i`` and the total the
multinomial adjustment ``sqrt(max(var - N, 0))``. Intervals: Chao's (1987) log-transformed interval around the
number seen for ``N_i`` and the total (never below it), Wald for ``p*``, ``phi`` and ``B``.

Assumptions: closure within each primary period; the chosen closed model describes captures within a period;
survival and arrival do not depend on capture (no trap-dependence between periods) nor on the unit (beyond what the
model allows); no temporary emigration (a unit absent from a period is dead or not yet arrived); independent units.
When it fails: births or deaths inside a primary period inflate ``N_i`` (use shorter primary periods); unmodelled
heterogeneity within periods biases ``N_i`` low, as for closed models (use Mh/Mth); temporary emigration (units that
leave and come back, such as addresses that go quiet for a week) is read as death then re-arrival, biasing survival
low and arrivals high; a period with no within-period recapture has no capture probability (refused).

References: Pollock, K. H. (1982) A capture-recapture design robust to unequal probability of capture. J. Wildl.
Manage. 46, 752-757; Kendall, Pollock & Brownie (1995) Biometrics 51, 293-308; Rivest, L.-P. & Daigle, G. (2004)
Loglinear models for the robust design in mark-recapture experiments. Biometrics 60, 100-107; Baillargeon &
Rivest (2007) Rcapture, J. Stat. Softw. 19(5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiddenpop.capture.closed.models import ModelSpec, parse_model
from hiddenpop.capture.core.histories import Histories, all_patterns
from hiddenpop.capture.core.intervals import log_transformed_ci
from hiddenpop.capture.core.loglinear import closed_design, fit_poisson
from hiddenpop.capture.events.occasions import parse_periods
from hiddenpop.capture.events.open import cormack_demography, full_open_design, history_matrix
from hiddenpop.distributions import two_sided_z
from hiddenpop.errors import ConfigError, DataError, ModelError
from hiddenpop.parallel import single_thread_blas
from hiddenpop.results import Estimates
from hiddenpop.special import gammaln

__all__ = ["ROBUST_BASES", "robust_design"]

#: Closed models available within a primary period (with any of Chao, Poisson, Darroch, Gamma for Mh / Mth).
ROBUST_BASES = ("M0", "Mt", "Mh", "Mth")
def _parse_models(model: str | Sequence[str], periods: int) -> list[ModelSpec]:
    names = [m.strip() for m in model.split(",")] if isinstance(model, str) else [str(m) for m in model]
    if len(names) == 1:
        names = names * periods
    if len(names) != periods:
        raise ConfigError(f"model: give one closed model for all {periods} primary periods or one per period "
                          f"(comma-separated), not {len(names)}")
    specs = [parse_model(name) for name in names]
    for spec in specs:
        if spec.base not in ROBUST_BASES or spec.heterogeneity == "Normal":
            raise ConfigError(f"model: {spec.name} is not offered within primary periods; use M0, Mt, or Mh / Mth "
                              "with Chao, Poisson, Darroch or Gamma heterogeneity")
    return specs


@dataclass
class _Period:
    """One primary period: its sub-histories, the closed model's columns over them and their counts."""

    occasions: int
    model: ModelSpec
    design: np.ndarray  # (2^t - 1, q): the closed model's columns, all_patterns order
    names: list[str]
    counts: np.ndarray  # units with each sub-history in this period
    start: int = 0  # first parameter index

    @property
    def stop(self) -> int:
        return self.start + self.design.shape[1]

    @property
    def seen(self) -> float:
        return float(self.counts.sum())


def _read(data, count_column, periods, source) -> tuple[np.ndarray, np.ndarray]:
    """Distinct observed histories (uint8 rows) and their counts from a frame of 0/1 columns (+ a count column)."""
    if isinstance(data, Histories):
        if data.patterns is None:
            raise ConfigError("the robust design needs capture histories, not capture-count frequencies")
        data = pd.DataFrame(data.patterns, columns=list(data.labels)).assign(_count=data.counts)
        count_column = "_count"
    where = f"{source}: " if source else ""
    if not isinstance(data, pd.DataFrame):
        raise ConfigError("the robust design takes a DataFrame of 0/1 occasion columns (and a count column) or "
                          "Histories")
    columns = list(data.columns)
    if count_column is not None and count_column not in columns:
        raise DataError(f"{where}count column {count_column!r} not found; name it with count_column (command line: "
                        "--count-column)")
    occasion_columns = [c for c in columns if c != count_column]
    total = sum(periods)
    if len(occasion_columns) != total:
        raise DataError(f"{where}{len(occasion_columns)} occasion columns, but the periods add up to {total} "
                        "occasions; give one 0/1 column per secondary occasion, in time order")
    if count_column is None:
        counts = np.ones(len(data))
    else:
        counts = pd.to_numeric(data[count_column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(counts) | (counts < 0) | (counts != np.round(counts))
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"{where}row {row}, column {count_column!r}: counts must be non-negative whole numbers")
    block = data[occasion_columns]
    if not all(pd.api.types.is_numeric_dtype(dtype) for dtype in block.dtypes):
        block = block.apply(pd.to_numeric, errors="coerce")
    values = block.to_numpy(dtype=float)
    bad = ~np.isin(values, [0.0, 1.0])
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{where}row {row + 1}, column {occasion_columns[col]!r}: capture indicators must be 0 or 1")
    patterns = values.astype(np.uint8)
    empty = (patterns.sum(axis=1) == 0) & (counts > 0)
    if empty.any():
        row = int(np.flatnonzero(empty)[0]) + 1
        raise DataError(f"{where}row {row}: a history with no capture cannot be observed; remove the row")
    used = counts > 0
    if not used.any():
        raise DataError(f"{where}no unit was seen")
    codes = patterns[used].astype(np.int64) @ (1 << np.arange(total - 1, -1, -1, dtype=np.int64))
    unique, inverse = np.unique(codes, return_inverse=True)
    merged = np.bincount(inverse, weights=counts[used])
    rows = ((unique[:, None] >> np.arange(total - 1, -1, -1, dtype=np.int64)[None, :]) & 1).astype(np.uint8)
    return rows, merged


def robust_design(*args, **kwargs) -> Estimates:
    """The robust-design model (see the module docstring); arguments as :func:`_robust_design`. BLAS runs on one
    thread: the matrices are small."""
    with single_thread_blas():
        return _robust_design(*args, **kwargs)


def _robust_design(
    data: pd.DataFrame,
    *,
    periods: str | Sequence[int],
    model: str | Sequence[str] = "Mt",
    count_column: str | None = "freq",
    constrain_negative: bool = True,
    level: float = 0.95,
    source: str | None = None,
) -> Estimates:
    """Fit the robust design to capture histories.

    Parameters
    ----------
    data:
        One 0/1 column per secondary occasion, in time order (period 1's occasions first), plus ``count_column``
        (one row per distinct history; ``None`` for one row per unit); or :class:`Histories` over all occasions.
    periods:
        Secondary occasions per primary period, e.g. ``[5, 5, 5]`` or ``"5,5,5"``.
    model:
        The closed model within every primary period ("M0", "Mt", "Mh Chao (LB)", "Mh Poisson2", "Mh Darroch",
        "Mh Gamma3.5", "Mth Chao (LB)", ...), or one per period (a list, or names separated by commas).
    constrain_negative:
        Fix negative gammas and Chao etas at 0 and refit (Rcapture ``neg = TRUE``).
    source:
        The file name, for error messages.

    Returns
    -------
    Estimates with quantities ``capture_probability`` (p*_i, per period), ``survival`` (per interval),
    ``abundance`` (N_i, per period), ``arrivals`` (B_i, per interval) and ``total_ever_present``; columns
    ``period``, ``seen`` (units caught in the period), ``at_boundary``; ``diagnostics`` with deviance, df, aic,
    convergence and the parameters fixed at 0; ``tables["loglinear_parameters"]`` and ``tables["periods"]``.
    """
    occasions = parse_periods(periods)
    specs = _parse_models(model, len(occasions))
    for i, spec in enumerate(specs):
        if spec.heterogeneity == "Chao" and occasions[i] < 3:
            raise ConfigError(f"model: {spec.name} needs at least 3 secondary occasions; period {i + 1} has "
                              f"{occasions[i]}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    rows, counts = _read(data, count_column, occasions, source)
    n_periods = len(occasions)
    offsets = np.concatenate([[0], np.cumsum(occasions)])

    # primary patterns, in the open model's history order
    seen_in = np.column_stack([rows[:, offsets[i] : offsets[i + 1]].any(axis=1) for i in range(n_periods)])
    primary = history_matrix(n_periods)
    primary_code = seen_in.astype(np.int64) @ (1 << np.arange(n_periods - 1, -1, -1, dtype=np.int64))
    by_code = np.bincount(primary_code, weights=counts, minlength=2**n_periods)
    primary_counts = by_code[np.arange(2**n_periods - 1, 0, -1)]
    z = full_open_design(primary, "ep")[:, : 2 * n_periods - 1]

    blocks: list[_Period] = []
    start = z.shape[1]
    for i, (t, spec) in enumerate(zip(occasions, specs, strict=True)):
        patterns = all_patterns(t)
        design, names = closed_design(patterns, spec.base, spec.heterogeneity, spec.theta)
        sub = rows[:, offsets[i] : offsets[i + 1]].astype(np.int64) @ (1 << np.arange(t - 1, -1, -1, dtype=np.int64))
        inside = sub > 0
        sub_counts = np.bincount(sub[inside] - 1, weights=counts[inside], minlength=len(patterns))
        block = _Period(t, spec, design, [f"p{i + 1}:{name}" for name in names], sub_counts, start)
        start = block.stop
        blocks.append(block)
        _check_period(block, i)

    names = ["intercept"] + [f"gamma{k}" for k in range(1, 2 * n_periods - 1)]
    names += [name for block in blocks for name in block.names]
    n_params = len(names)
    fixed: list[int] = []
    unsupported: list[int] = []
    for block in blocks:  # Chao eta_j beyond the most captures seen in the period: no observed cell to act on
        k = all_patterns(block.occasions).sum(axis=1)
        most = int(k[block.counts > 0].max())
        for j, name in enumerate(block.names):
            if name.split(":")[1].startswith("eta") and int(name.split(":")[1][3:]) > most:
                unsupported.append(block.start + j)
    problem = _Problem(z, primary, primary_counts, blocks, n_params)
    theta = problem.start(unsupported)
    dropped: list[int] = []
    gammas = list(range(1, 2 * n_periods - 1))
    while True:
        frozen = sorted(set(unsupported + dropped + fixed))
        theta, cov, converged = problem.fit(theta, frozen)
        if not constrain_negative:
            break
        etas = [k for k in range(n_params) if k not in frozen and ":eta" in names[k] and theta[k] < 0]
        if etas:
            dropped.append(etas[0])
            theta[etas[0]] = 0.0
            continue
        negative = [k for k in gammas if k not in frozen and theta[k] < 0]
        if not negative:
            break
        fixed.append(negative[0])
        theta[negative[0]] = 0.0
    frozen = sorted(set(unsupported + dropped + fixed))
    varies = np.ones(n_params, dtype=bool)
    varies[frozen] = False

    warnings: list[str] = []
    if not converged:
        warnings.append("the fit did not converge (estimates at or near a boundary); do not use them")
    if not constrain_negative:
        negative = [names[k] for k in gammas if theta[k] < 0]
        if negative:
            warnings.append(f"negative gamma parameter(s) {', '.join(negative)} (survival above 1 or negative "
                            "arrivals); use constrain_negative=True (command line: leave out --allow-negative)")
    if fixed:
        warnings.append(f"{len(fixed)} gamma parameter(s) fixed at 0 (boundary: survival 1 or no arrivals): "
                        f"{', '.join(names[k] for k in fixed)}; their standard errors are conditional on the boundary")
    if dropped:
        warnings.append(f"negative Chao eta parameter(s) set to 0 and the model refitted: "
                        f"{', '.join(names[k] for k in dropped)}")

    state = problem.evaluate(theta)
    pstar = 1 / (1 + np.exp(-state.log_s))
    d_pstar = np.zeros((n_params, n_periods))
    for i, block in enumerate(blocks):
        d_pstar[block.start : block.stop, i] = pstar[i] * (1 - pstar[i]) * state.means[i]
    d_pstar *= varies[:, None]
    phi, d_phi, abundance, d_abundance = cormack_demography(theta, n_periods, pstar, d_pstar)
    d_phi = d_phi * varies[:, None]
    d_abundance = d_abundance * varies[:, None]
    arrivals = abundance[1:] - phi * abundance[:-1]
    d_arrivals = d_abundance[:, 1:] - d_phi * abundance[None, :-1] - phi[None, :] * d_abundance[:, :-1]
    total = abundance[0] + arrivals.sum()
    d_total = d_abundance[:, 0] + d_arrivals.sum(axis=1)

    def variance(grad: np.ndarray) -> np.ndarray:
        return np.einsum("ki,kl,li->i", grad, cov, grad)

    seen = np.array([block.seen for block in blocks])
    observed = float(counts.sum())
    z_level = two_sided_z(level)
    records: list[dict] = []

    def wald(quantity, period, estimate, se, units=np.nan):
        records.append({"quantity": quantity, "estimate": estimate, "se": se, "lower": estimate - z_level * se,
                        "upper": estimate + z_level * se, "period": period, "seen": units})

    def sizes(quantity, period, estimate, se, units):
        lower, upper = log_transformed_ci(units, estimate, se, level)
        records.append({"quantity": quantity, "estimate": estimate, "se": se, "lower": lower, "upper": upper,
                        "period": period, "seen": units})

    pstar_se = np.sqrt(np.maximum(variance(d_pstar), 0))
    phi_se = np.sqrt(np.maximum(variance(d_phi), 0))
    abundance_se = np.sqrt(np.maximum(variance(d_abundance) - abundance, 0))
    arrivals_se = np.sqrt(np.maximum(variance(d_arrivals), 0))
    total_se = float(np.sqrt(max(float(variance(d_total[:, None])[0]) - total, 0)))
    for i in range(n_periods):
        wald("capture_probability", str(i + 1), pstar[i], pstar_se[i], seen[i])
    for i in range(n_periods - 1):
        wald("survival", f"{i + 1}->{i + 2}", phi[i], phi_se[i])
    for i in range(n_periods):
        sizes("abundance", str(i + 1), abundance[i], abundance_se[i], seen[i])
    for i in range(n_periods - 1):
        wald("arrivals", f"{i + 1}->{i + 2}", arrivals[i], arrivals_se[i])
    sizes("total_ever_present", "all", total, total_se, observed)
    label = specs[0].name if len({s.name for s in specs}) == 1 else ", ".join(s.name for s in specs)
    method = f"Robust design ({label} within periods)"
    table = pd.DataFrame(records)
    table.insert(1, "method", method)
    table.insert(6, "level", level)
    table["at_boundary"] = ((table["quantity"] == "survival") & np.isclose(table["estimate"], 1.0)) | (
        (table["quantity"] == "arrivals") & np.isclose(table["estimate"], 0.0))

    rank = int(varies.sum())
    kernel = state.kernel
    ylogy = float(np.sum(counts * np.log(counts)))
    log_factorials = float(gammaln(counts + 1).sum())
    deviance = 2 * (ylogy - observed) - 2 * kernel
    cells = 2 ** int(offsets[-1]) - 1
    loglik = kernel - log_factorials
    parameters = pd.DataFrame({"parameter": names, "estimate": theta,
                               "se": np.where(varies, np.sqrt(np.abs(np.diag(cov))), 0.0),
                               "fixed_at_zero": ~varies})
    period_table = pd.DataFrame({"period": [str(i + 1) for i in range(n_periods)], "occasions": list(occasions),
                                 "model": [s.name for s in specs], "seen": seen,
                                 "caught_twice_or_more": [_multiple(block) for block in blocks]})
    notes = [f"sizes: Chao (1987) log-transformed {level:g} intervals around the units seen in the period (never "
             "below it); capture probabilities, survival and arrivals: Wald intervals",
             f"deviance over all 2^{int(offsets[-1])} - 1 histories; with so many sparse cells compare models by AIC "
             "rather than by a chi-square test"]
    return Estimates(
        table=table,
        settings={"periods": list(occasions), "model": [s.name for s in specs], "count_column": count_column,
                  "constrain_negative": constrain_negative, "level": level},
        warnings=warnings,
        notes=notes,
        diagnostics={"deviance": deviance, "df": cells - rank, "aic": -2 * loglik + 2 * rank, "parameters": rank,
                     "observed": observed, "converged": converged,
                     "boundary_parameters": [names[k] for k in fixed],
                     "dropped_eta": [names[k] for k in dropped],
                     "unsupported_eta": [names[k] for k in unsupported]},
        tables={"loglinear_parameters": parameters, "periods": period_table},
    )


def _multiple(block: _Period) -> float:
    k = all_patterns(block.occasions).sum(axis=1)
    return float(block.counts[k >= 2].sum())


def _check_period(block: _Period, index: int) -> None:
    """A period's capture probability needs units seen in it and some caught twice within it."""
    if block.seen == 0:
        raise ModelError(f"primary period {index + 1}: no unit was seen, so its size cannot be estimated")
    if _multiple(block) == 0:
        raise ModelError(f"primary period {index + 1}: no unit was caught twice within it, so the closed model "
                         "cannot estimate its capture probability; use longer primary periods")


@dataclass
class _State:
    """The likelihood and its derivatives at one parameter vector."""

    kernel: float  # sum Y log mu - sum mu (without the log Y! terms)
    fitted: np.ndarray  # M per primary pattern
    log_s: np.ndarray  # log S_i per period
    means: list[np.ndarray]  # E_i
    score: np.ndarray
    information: np.ndarray


def _logsumexp(values: np.ndarray) -> float:
    """log(sum(exp(values))), by SciPy's ``logsumexp``."""
    # heavy: scipy.special's array-API layer costs about 0.2 s to import; only a fit needs logsumexp
    from scipy.special import logsumexp

    return logsumexp(values)


class _Problem:
    """The grouped likelihood of the module docstring: primary-pattern counts and per-period sub-history counts."""

    def __init__(self, z, primary, primary_counts, blocks, n_params):
        self.z = z
        self.primary = primary.astype(float)
        self.y = primary_counts
        self.blocks = blocks
        self.n_params = n_params
        self.totals = [block.design.T @ block.counts for block in blocks]
        self.y_z = z.T @ primary_counts

    def evaluate(self, theta: np.ndarray, derivatives: bool = True) -> _State:
        a = theta[: self.z.shape[1]]
        log_s = np.empty(len(self.blocks))
        means, covariances = [], []
        kernel = float(self.y_z @ a)
        for i, block in enumerate(self.blocks):
            beta = theta[block.start : block.stop]
            eta = block.design @ beta
            log_s[i] = _logsumexp(eta)
            kernel += float(self.totals[i] @ beta)
            if derivatives:
                weights = np.exp(eta - log_s[i])
                mean = block.design.T @ weights
                means.append(mean)
                covariances.append((block.design * weights[:, None]).T @ block.design - np.outer(mean, mean))
        with np.errstate(over="ignore"):
            fitted = np.exp(np.minimum(self.z @ a + self.primary @ log_s, 700.0))
        kernel -= float(fitted.sum())
        if not derivatives:
            return _State(kernel, fitted, log_s, [], np.empty(0), np.empty((0, 0)))
        caught = self.primary.T @ fitted  # m_i
        columns = [self.z] + [self.primary[:, [i]] * means[i][None, :] for i in range(len(self.blocks))]
        w = np.column_stack(columns)
        information = w.T @ (w * fitted[:, None])
        score = np.empty(self.n_params)
        score[: self.z.shape[1]] = self.z.T @ (self.y - fitted)
        for i, block in enumerate(self.blocks):
            information[block.start : block.stop, block.start : block.stop] += caught[i] * covariances[i]
            score[block.start : block.stop] = self.totals[i] - caught[i] * means[i]
        return _State(kernel, fitted, log_s, means, score, information)

    def start(self, frozen: list[int]) -> np.ndarray:
        """Within-period columns from the raw capture rates, then (u, gamma) from a Poisson fit of the primary
        patterns with those periods' log S_i as offset."""
        theta = np.zeros(self.n_params)
        for block in self.blocks:
            patterns = all_patterns(block.occasions).astype(float)
            seen = block.seen
            rates = np.clip((patterns.T @ block.counts) / seen, 0.02, 0.98)
            overall = float(np.clip((patterns.sum(axis=1) @ block.counts) / (seen * block.occasions), 0.02, 0.98))
            for j, name in enumerate(block.names):
                column = name.split(":")[1]
                if column == "k":
                    theta[block.start + j] = np.log(overall / (1 - overall))
                elif column.startswith("c") and column[1:].isdigit():
                    rate = rates[int(column[1:]) - 1]
                    theta[block.start + j] = np.log(rate / (1 - rate))
        theta[frozen] = 0.0
        log_s = np.array([_logsumexp(b.design @ theta[b.start : b.stop]) for b in self.blocks])
        fit = fit_poisson(self.z[:, 1:], self.y, offset=self.primary @ log_s)
        theta[: self.z.shape[1]] = np.nan_to_num(fit.coef)
        return theta

    def fit(self, theta: np.ndarray, frozen: list[int], max_iter: int = 200,
            tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, bool]:
        """Newton-Raphson with step halving over the parameters not in ``frozen`` (held at their values)."""
        free = np.array([k for k in range(self.n_params) if k not in set(frozen)])
        theta = theta.copy()
        state = self.evaluate(theta)
        converged = False
        for _ in range(max_iter):
            information = state.information[np.ix_(free, free)]
            try:
                step = np.linalg.solve(information, state.score[free])
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(information, state.score[free], rcond=None)[0]
            factor = 1.0
            for _halving in range(40):
                trial = theta.copy()
                trial[free] += factor * step
                candidate = self.evaluate(trial, derivatives=False)
                if np.isfinite(candidate.kernel) and candidate.kernel >= state.kernel - 1e-12 * (abs(state.kernel) + 1):
                    break
                factor /= 2
            theta = trial
            previous = state.kernel
            state = self.evaluate(theta)
            small = np.max(np.abs(factor * step)) < tol * (1 + np.max(np.abs(theta[free])))
            if factor == 1.0 and (small or abs(state.kernel - previous) < 1e-13 * (abs(state.kernel) + 0.1)):
                converged = bool(np.max(np.abs(step)) < 1e-4 * (1 + np.max(np.abs(theta[free]))))
                break
        cov = np.zeros((self.n_params, self.n_params))
        information = state.information[np.ix_(free, free)]
        try:
            cov[np.ix_(free, free)] = np.linalg.inv(information)
        except np.linalg.LinAlgError:
            cov[np.ix_(free, free)] = np.linalg.pinv(information)
        return theta, cov, converged
