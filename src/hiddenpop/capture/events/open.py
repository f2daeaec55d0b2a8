"""Cormack (1989) log-linear model for an open population (Rcapture ``openp`` equivalent).

Data: ``I >= 3`` capture periods and the counts ``Y_w`` of all ``2^I - 1`` observable capture histories ``w``
(zeros included). The expected count of history ``w`` is modelled as

    log mu_w = u + sum_{j=1}^{I-1} gamma_j * 1[w_1 = ... = w_j = 0]
                 + sum_{i=1}^{I-1} gamma_{I-1+i} * 1[w_I = ... = w_{I-i+1} = 0]
                 + capture part,

where the first ``I - 1`` indicators ("not seen up to period j") carry arrivals and the last ``I - 1``
("not seen from period I-i+1 on") carry departures. The capture part is ``beta_2..beta_{I-1}`` on
``w_2..w_{I-1}`` (``"up"``: unconstrained capture probabilities ``p*_i = logit^-1 beta_i``; ``p*_1`` and ``p*_I``
are not identifiable) or one ``beta`` on the number of captures (``"ep"``: equal ``p*``).

Derived demographic quantities (Cormack 1989; Rivest & Daigle 2004), with ``U_0 = V_0 = 1``:

    U_i = prod_{m=0}^{i-1} [e^{gamma_{I+m}} (1 - p*_{I-m})] (1 - e^{-gamma_{I+i-1}})
    V_i = prod_{l=1}^{i}   [e^{gamma_l}     (1 - p*_l)]     (1 - e^{-gamma_i})
    phi_{I-i} = 1 / (1 + U_i / sum_{l<i} U_l)                     survival from period I-i to I-i+1
    N_1 = e^u / (prod_i (1 - p*_i) prod_i phi_i),  N_{i+1} = N_i phi_i (1 + V_i / sum_{l<i} V_l)
    B_i = N_{i+1} - phi_i N_i                                     new arrivals between periods i and i+1

and the total number of units ever present (all periods) ``N_tot``. Survival ``phi <= 1`` and arrivals
``B >= 0`` require the gammas to be non-negative: with ``constrain_negative=True`` (Rcapture ``neg=TRUE``) the
first negative gamma is fixed at 0 (boundary) and the model refitted, until none is negative. Standard errors
come from the delta method on the Poisson covariance of the log-linear parameters (analytic first derivatives,
:func:`demography_jacobian`); for abundances and ``N_tot`` the multinomial adjustment ``sqrt(max(var - N, 0))`` is applied.

Assumptions: all units present in a period have the same capture probability in that period; survival and
capture do not depend on past captures (no trap effect, checked by the trap-effect fits in ``diagnostics``);
histories of different units are independent.
When it fails: heterogeneous capture probabilities bias abundances downwards; a strong trap effect (e.g. a
reporting platform that re-reports known addresses) inflates recapture and biases abundances down; with very
sparse histories several gammas go to the boundary and the derived quantities become unstable.

Reference: Cormack, R. M. (1989) Log-linear models for capture-recapture. Biometrics 45, 395-413;
Rivest, L.-P. & Daigle, G. (2004) Loglinear models for the robust design in mark-recapture experiments.
Biometrics 60, 100-107; Baillargeon & Rivest (2007) Rcapture, J. Stat. Softw. 19(5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiddenpop.capture.core.histories import all_patterns
from hiddenpop.capture.events.occasions import OPEN_CAPTURE
from hiddenpop.distributions import poisson_logpmf, two_sided_z
from hiddenpop.errors import ConfigError, DataError, ModelError
from hiddenpop.parallel import single_thread_blas
from hiddenpop.results import Estimates

METHOD = "Cormack open (log-linear)"


def history_matrix(periods: int) -> np.ndarray:
    """All ``2^I - 1`` observable histories, one row each, in Rcapture ``histpos.t`` order.

    Rows run from ``11...1`` down to ``00...01`` reading the history as a binary number with period 1 as the
    most significant digit.
    """
    return all_patterns(periods)[::-1].astype(np.int8)  # the canonical order, reversed


def history_labels(histories: np.ndarray) -> list[str]:
    return ["".join(map(str, row)) for row in histories.tolist()]


def _entry_exit_design(histories: np.ndarray) -> np.ndarray:
    """The 2(I-1) gamma columns: 'not seen up to j' (j=1..I-1) and 'not seen from I-i+1 on' (i=1..I-1)."""
    periods = histories.shape[1]
    unseen_prefix = np.cumsum(histories, axis=1) == 0
    unseen_suffix = np.cumsum(histories[:, ::-1], axis=1) == 0
    return np.column_stack([unseen_prefix[:, : periods - 1], unseen_suffix[:, : periods - 1]]).astype(float)


def full_open_design(histories: np.ndarray, capture: str) -> np.ndarray:
    """The model's design over ``histories``: intercept, the 2(I-1) gamma columns, then the capture columns
    (``"up"``: w_2..w_{I-1}; ``"ep"``: the number of captures)."""
    periods = histories.shape[1]
    if capture == "up":
        beta_columns = histories[:, 1 : periods - 1].astype(float)
    else:
        beta_columns = histories.sum(axis=1, keepdims=True).astype(float)
    return np.column_stack([np.ones(len(histories)), _entry_exit_design(histories), beta_columns])


@dataclass
class _PoissonFit:
    coef: np.ndarray
    cov: np.ndarray
    fitted: np.ndarray
    deviance: float
    loglik: float
    rank: int
    converged: bool


def _poisson_glm(design: np.ndarray, counts: np.ndarray, max_iter: int = 100, tol: float = 1e-10,
                 start: np.ndarray | None = None) -> _PoissonFit:
    """Poisson log-linear fit by Newton-Raphson (canonical link, so Fisher scoring = Newton).

    Rows with missing counts must be removed by the caller. Raises :class:`ModelError` if the design is rank
    deficient (the open model is then not identified with these histories).
    """
    rank = int(np.linalg.matrix_rank(design))
    if rank < design.shape[1]:
        raise ModelError(
            f"open-population design is not of full rank ({rank} < {design.shape[1]} parameters); "
            "too many histories excluded or too few periods"
        )
    positive = counts > 0
    if start is None:
        coef = np.linalg.lstsq(design, np.log(np.where(positive, counts, 0.5)), rcond=None)[0]
    else:
        coef = np.asarray(start, dtype=float).copy()

    def deviance_of(c: np.ndarray) -> float:
        mu_ = np.exp(np.clip(design @ c, -700, 700))
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(2 * (np.where(positive, counts * np.log(counts / mu_), 0.0) - (counts - mu_)).sum())

    current = deviance_of(coef)
    converged = False
    for _ in range(max_iter):
        eta = np.clip(design @ coef, -700, 700)
        mu = np.exp(eta)
        gradient = design.T @ (counts - mu)
        information = design.T @ (design * mu[:, None])
        try:
            step = np.linalg.solve(information, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(information, gradient, rcond=None)[0]
        # step halving keeps the deviance decreasing (cells with zero counts push some parameters to -inf)
        for _halving in range(30):
            trial = deviance_of(coef + step)
            if np.isfinite(trial) and trial <= current + 1e-12 * (abs(current) + 1):
                break
            step = step / 2
        coef = coef + step
        previous, current = current, trial
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(coef))) or abs(previous - current) < 1e-13 * (
            abs(current) + 0.1
        ):
            converged = True
            break
    mu = np.exp(np.clip(design @ coef, -700, 700))
    information = design.T @ (design * mu[:, None])
    try:
        cov = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(information)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(positive, counts * np.log(counts / mu), 0.0) - (counts - mu)
    deviance = float(2 * terms.sum())
    loglik = float(poisson_logpmf(counts, mu).sum())
    return _PoissonFit(coef, cov, mu, deviance, loglik, rank, converged)


def _histories_from_frame(frame: pd.DataFrame, count_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Counts aligned to :func:`history_matrix` from a frame of 0/1 columns (+ a count column)."""
    columns = list(frame.columns)
    if count_column is not None and count_column not in columns:
        raise DataError(f"count column {count_column!r} not found; columns are {columns}")
    occasion_columns = [c for c in columns if c != count_column]
    # plain NumPy numbers (the usual 0/1 columns and integer counts) are read as one float array; other
    # columns (text, pandas' nullable types) are converted column by column
    plain = all(isinstance(dtype, np.dtype) and dtype.kind in "iufb" for dtype in frame.dtypes)
    whole = frame.to_numpy(dtype=np.float64) if plain and frame.columns.is_unique else None
    if count_column is None:
        weights = np.ones(len(frame))
    else:
        if whole is not None:
            weights = whole[:, columns.index(count_column)]
        else:
            weights = pd.to_numeric(frame[count_column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(weights) | (weights < 0) | (weights != np.round(weights))
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"row {row}, column {count_column!r}: counts must be non-negative integers")
    if whole is not None:
        values = whole if count_column is None else np.delete(whole, columns.index(count_column), axis=1)
    else:
        block = frame[occasion_columns]
        if not all(pd.api.types.is_numeric_dtype(dtype) for dtype in block.dtypes):  # numeric columns stay
            block = block.apply(pd.to_numeric, errors="coerce")
        values = block.to_numpy()
    bad = ~np.isin(values, [0, 1])
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"row {row + 1}, column {occasion_columns[col]!r}: capture indicators must be 0 or 1")
    periods = len(occasion_columns)
    codes = values.astype(np.int64) @ (1 << np.arange(periods - 1, -1, -1))
    if (codes == 0).any():
        row = int(np.flatnonzero(codes == 0)[0]) + 1
        if weights[row - 1] > 0:
            raise DataError(f"row {row}: the all-zero history cannot be observed; remove it")
    counts_by_code = np.bincount(codes, weights=weights, minlength=2**periods)
    order = np.arange(2**periods - 1, 0, -1)
    return history_matrix(periods), counts_by_code[order]


def open_population(*args, **kwargs) -> Estimates:
    """Fit Cormack's open-population log-linear model; see :func:`_open_population` for the arguments.

    BLAS is limited to one thread during the fit: the matrices are small (2^I - 1 rows, 4I - 4 columns) and
    multithreaded BLAS only adds contention.
    """
    with single_thread_blas():
        return _open_population(*args, **kwargs)


def _open_population(
    data: pd.DataFrame | np.ndarray | Sequence[float],
    *,
    count_column: str | None = "freq",
    periods: int | None = None,
    capture: str = "up",
    constrain_negative: bool = True,
    exclude: Sequence[str] | None = None,
    keep: Sequence[bool] | np.ndarray | None = None,
    level: float = 0.95,
) -> Estimates:
    """Fit Cormack's open-population log-linear model (see module docstring for the formulas).

    Parameters
    ----------
    data:
        Either a DataFrame of 0/1 period columns plus ``count_column`` (one row per history, any order; use
        ``count_column=None`` for one row per unit), or a vector of the ``2^I - 1`` history counts in
        :func:`history_matrix` order (Rcapture ``histpos.t`` order; give ``periods``).
    capture:
        ``"up"`` (unconstrained capture probabilities, default) or ``"ep"`` (equal capture probabilities).
    constrain_negative:
        Fix negative gammas at 0 one at a time (boundary: survival 1 or no arrivals), as Rcapture ``neg=TRUE``.
    exclude / keep:
        Histories to treat as missing (Cormack 1989 p.410), as labels such as ``"100000"`` or a boolean mask in
        :func:`history_matrix` order. Abundances then add back ``sum(Y - mu_hat)`` over the excluded histories.

    Returns
    -------
    Estimates with quantities ``capture_probability`` (per period), ``survival`` (per interval),
    ``abundance`` (per period), ``arrivals`` (per interval) and ``total_ever_present``; column ``period``;
    ``diagnostics`` holds deviance, df, aic, the gammas fixed at the boundary and the trap-effect fits.
    """
    if capture not in OPEN_CAPTURE:
        raise ConfigError(f"capture must be 'up' (unconstrained) or 'ep' (equal), not {capture!r}")
    if isinstance(data, pd.DataFrame):
        histories, counts = _histories_from_frame(data, count_column)
    else:
        counts = np.asarray(data, dtype=float)
        if periods is None:
            periods = round(float(np.log2(counts.size + 1)))
        if counts.size != 2**periods - 1:
            raise DataError(f"expected {2**periods - 1} history counts for {periods} periods, got {counts.size}")
        histories = history_matrix(periods)
    periods = histories.shape[1]
    if periods < 3:
        raise ConfigError("the open-population model needs at least 3 periods")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise DataError("history counts must be finite and non-negative")
    labels = history_labels(histories)
    kept = np.ones(len(counts), dtype=bool)
    if keep is not None:
        kept = np.asarray(keep, dtype=bool)
        if kept.size != len(counts):
            raise ConfigError(f"keep must have {len(counts)} entries (one per history), got {kept.size}")
    for label in exclude or []:
        if label not in labels:
            raise ConfigError(f"history {label!r} to exclude is not one of the {len(labels)} histories of {periods} periods")
        kept[labels.index(label)] = False

    full_design = full_open_design(histories, capture)
    n_params = full_design.shape[1]
    n_gamma = 2 * periods - 2
    if capture == "up":
        # parameter indices (0 = intercept, gamma_k at index k): gamma_2..gamma_{I-2}, gamma_{I+1}..gamma_{2I-2}
        checked = list(range(2, periods - 1)) + list(range(periods + 1, 2 * periods - 1))
    else:
        checked = list(range(1, n_gamma + 1))

    fixed: list[int] = []
    coef = np.zeros(n_params)
    while True:
        free = [k for k in range(n_params) if k not in fixed]
        fit = _poisson_glm(full_design[kept][:, free], counts[kept], start=None if not fixed else coef[free])
        coef = np.zeros(n_params)
        coef[free] = fit.coef
        cov = np.zeros((n_params, n_params))
        cov[np.ix_(free, free)] = fit.cov
        negatives = [k for k in checked if k not in fixed and coef[k] < 0]
        if not constrain_negative or not negatives:
            break
        fixed.append(min(negatives))

    warnings: list[str] = []
    if not fit.converged:
        warnings.append("the Poisson fit did not converge; treat the estimates with caution")
    if not constrain_negative:
        negatives = [k for k in checked if coef[k] < 0]
        if negatives:
            warnings.append(
                f"{len(negatives)} gamma parameter(s) are negative (survival > 1 or negative arrivals); "
                "use constrain_negative=True to fix them at the boundary"
            )

    derived = demography_jacobian(coef, full_design, capture)
    free = np.ones(n_params, dtype=bool)
    free[fixed] = False  # a parameter fixed at the boundary does not vary: no derivative

    def jacobian(name: str) -> tuple[np.ndarray, np.ndarray]:
        value, grads = derived[name]
        return value, grads * free[:, None]

    pstar, d_pstar = jacobian("pstar")
    phi, d_phi = jacobian("phi")
    abundance, d_abundance = jacobian("abundance")
    total_model, d_total = jacobian("total")
    fitted_sum = float(np.exp(full_design @ coef).sum())

    def variance(grad: np.ndarray) -> np.ndarray:
        return np.einsum("ki,kl,li->i", grad, cov, grad)

    pstar_se = np.sqrt(np.maximum(variance(d_pstar), 0))
    phi_se = np.sqrt(np.maximum(variance(d_phi), 0))
    abundance_se = np.sqrt(np.maximum(variance(d_abundance) - abundance, 0))
    # excluded histories: add back observed minus fitted (Cormack 1989 p.410)
    mu_hat = np.exp(full_design @ coef)
    correction = float((counts[~kept] - mu_hat[~kept]).sum())
    abundance = abundance + correction
    d_arrivals = d_abundance[:, 1:] - d_abundance[:, :-1] * phi[None, :] - d_phi * abundance[None, :-1]
    arrivals = abundance[1:] - phi * abundance[:-1]
    arrivals_se = np.sqrt(np.maximum(variance(d_arrivals), 0))
    observed = float(counts.sum())
    if capture == "up":
        total = observed + (total_model[0] - fitted_sum)
    else:
        total = total_model[0]
    total_se = float(np.sqrt(max(variance(d_total)[0] - total, 0)))

    z = two_sided_z(level)
    # the table is built column by column, in the order Estimates keeps (core columns first), so that
    # neither pandas' row-dict parsing nor a reordering copy is paid on every fit
    columns: dict[str, list] = {name: [] for name in ("quantity", "estimate", "se", "lower", "upper", "period")}

    def add(quantity: str, period: str, estimate: float, se: float, identifiable: bool = True) -> None:
        if not identifiable:
            estimate, se = np.nan, np.nan
        for name, value in (("quantity", quantity), ("estimate", estimate), ("se", se), ("period", period),
                            ("lower", estimate - z * se), ("upper", estimate + z * se)):
            columns[name].append(value)

    up = capture == "up"
    for i in range(periods):
        add("capture_probability", str(i + 1), pstar[i], pstar_se[i], not (up and i in (0, periods - 1)))
    boundary = []
    for i in range(periods - 1):
        add("survival", f"{i + 1}->{i + 2}", phi[i], phi_se[i], not (up and i == periods - 2))
    for i in range(periods):
        add("abundance", str(i + 1), abundance[i], abundance_se[i], not (up and i in (0, periods - 1)))
    for i in range(periods - 1):
        add("arrivals", f"{i + 1}->{i + 2}", arrivals[i], arrivals_se[i], not (up and i in (0, periods - 2)))
    add("total_ever_present", "all", total, total_se)
    quantities = np.array(columns["quantity"])
    estimates = np.array(columns["estimate"], dtype=np.float64)
    at_boundary = ((quantities == "survival") & np.isclose(estimates, 1.0)) | (
        (quantities == "arrivals") & np.isclose(estimates, 0.0)
    )
    table = pd.DataFrame(
        {"quantity": columns["quantity"], "method": METHOD, "estimate": estimates, "se": columns["se"],
         "lower": columns["lower"], "upper": columns["upper"], "level": level, "period": columns["period"],
         "at_boundary": at_boundary}
    )
    for k in fixed:
        name = f"gamma{k}"
        boundary.append(name)
    if fixed:
        warnings.append(
            f"{len(fixed)} gamma parameter(s) fixed at 0 (boundary: survival 1 or no arrivals): {', '.join(boundary)}; "
            "their standard errors are conditional on the boundary"
        )
    n_cells = int(kept.sum())
    df = n_cells - fit.rank
    aic = -2 * fit.loglik + 2 * fit.rank
    trap = _trap_fits(full_design, counts, kept, fixed, histories, capture)
    names = ["intercept"] + [f"gamma{k}" for k in range(1, n_gamma + 1)]
    names += [f"beta{k}" for k in range(2, periods)] if up else ["beta"]
    loglinear = pd.DataFrame({"parameter": names, "estimate": coef, "se": np.sqrt(np.diag(cov)),
                              "fixed_at_boundary": [k in fixed for k in range(n_params)]})
    fitted = pd.DataFrame({"history": labels, "observed": counts, "fitted": mu_hat, "kept": kept})
    notes = []
    if (~kept).any():
        notes.append(f"{int((~kept).sum())} histories excluded from the fit (treated as missing); abundances add "
                     f"observed minus fitted over them ({correction:.3f})")
    return Estimates(
        table=table,
        settings={"capture": capture, "constrain_negative": constrain_negative, "periods": periods,
                  "excluded_histories": [lab for lab, k in zip(labels, kept, strict=True) if not k],
                  "level": level},
        warnings=warnings,
        notes=notes,
        diagnostics={"deviance": fit.deviance, "df": df, "aic": aic, "observed": observed,
                     "boundary_parameters": boundary, "converged": fit.converged, "trap_effect": trap},
        tables={"loglinear_parameters": loglinear, "fitted": fitted},
    )


P_UNIDENTIFIED = 0.5  # p*_1 and p*_I under "up" are not identifiable; they cancel in the identifiable quantities


def demography(theta: np.ndarray, design: np.ndarray, capture: str) -> dict[str, np.ndarray]:
    """The demographic quantities of the module docstring at log-linear parameters ``theta``.

    ``design`` is the full design over all histories (intercept, the 2(I-1) gamma columns, the capture
    columns). Returns ``pstar`` (I), ``phi`` (I-1), ``abundance`` (I), ``total`` (1; for "up" the fitted
    observable total plus the never-seen units, for "ep" N_1 plus the arrivals) and ``fitted_sum`` (1).
    """
    return {name: value for name, (value, _grad) in demography_jacobian(theta, design, capture).items()}


def demography_jacobian(
    theta: np.ndarray, design: np.ndarray, capture: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The quantities of :func:`demography`, each with its Jacobian: ``(value, d value / d theta)`` with one row
    per parameter and one column per entry of the value.

    Forward accumulation of exact derivatives through the formulas: every intermediate (products U_i, V_i,
    their partial sums, phi, N_i) is carried with its gradient, using d e^g = e^g dg, d logit^-1(b) =
    p(1 - p) db and the product and quotient rules.
    """
    theta = np.asarray(theta, dtype=float)
    n = theta.size
    n_gamma = _gamma_count(design.shape[1], capture)
    periods = n_gamma // 2 + 1
    eye = np.eye(n)
    u = theta[0]
    if capture == "up":
        beta = theta[n_gamma + 1 :]
        inner = 1 / (1 + np.exp(-beta))
        pstar = np.concatenate([[P_UNIDENTIFIED], inner, [P_UNIDENTIFIED]])
        d_pstar = np.zeros((n, periods))
        d_pstar[n_gamma + 1 + np.arange(periods - 2), np.arange(1, periods - 1)] = inner * (1 - inner)
    else:
        shared = 1 / (1 + np.exp(-theta[n_gamma + 1]))
        pstar = np.repeat(shared, periods)
        d_pstar = np.zeros((n, periods))
        d_pstar[n_gamma + 1] = shared * (1 - shared)
    miss = 1 - pstar
    d_miss = -d_pstar

    def chain(indices: list[tuple[int, int]], last: int) -> tuple[float, np.ndarray]:
        """prod over (gamma index k, period j) of e^{gamma_k} (1 - p*_j), times (1 - e^{-gamma_last})."""
        product, d_product = 1.0, np.zeros(n)
        for k, j in indices:
            e = np.exp(theta[k])
            d_product = d_product * e * miss[j] + product * e * (miss[j] * eye[k] + d_miss[:, j])
            product = product * e * miss[j]
        tail = 1 - np.exp(-theta[last])
        return product * tail, d_product * tail + product * np.exp(-theta[last]) * eye[last]

    u_val, d_u = [1.0], [np.zeros(n)]
    v_val, d_v = [1.0], [np.zeros(n)]
    for i in range(1, periods):
        value, grad = chain([(periods + m, periods - m - 1) for m in range(i)], periods + i - 1)
        u_val.append(value)
        d_u.append(grad)
        value, grad = chain([(l_, l_ - 1) for l_ in range(1, i + 1)], i)
        v_val.append(value)
        d_v.append(grad)
    u_arr, v_arr = np.array(u_val), np.array(v_val)
    d_u_arr, d_v_arr = np.array(d_u).T, np.array(d_v).T  # (n, periods)

    phi = np.empty(periods - 1)
    d_phi = np.zeros((n, periods - 1))
    for i in range(1, periods):
        total_before = u_arr[:i].sum()
        ratio = u_arr[i] / total_before
        d_ratio = (d_u_arr[:, i] - ratio * d_u_arr[:, :i].sum(axis=1)) / total_before
        phi[periods - i - 1] = 1 / (1 + ratio)
        d_phi[:, periods - i - 1] = -phi[periods - i - 1] ** 2 * d_ratio

    abundance = np.empty(periods)
    d_abundance = np.zeros((n, periods))
    abundance[0] = np.exp(u) / (np.prod(1 - pstar) * np.prod(phi))
    d_abundance[:, 0] = abundance[0] * (eye[0] - (d_miss / miss).sum(axis=1) - (d_phi / phi).sum(axis=1))
    for i in range(1, periods):
        total_before = v_arr[:i].sum()
        growth = 1 + v_arr[i] / total_before
        d_growth = (d_v_arr[:, i] - v_arr[i] / total_before * d_v_arr[:, :i].sum(axis=1)) / total_before
        abundance[i] = abundance[i - 1] * phi[i - 1] * growth
        d_abundance[:, i] = (d_abundance[:, i - 1] * phi[i - 1] * growth
                             + abundance[i - 1] * d_phi[:, i - 1] * growth
                             + abundance[i - 1] * phi[i - 1] * d_growth)

    mu_all = np.exp(design @ theta)
    if capture == "up":
        g = lambda k: theta[k]  # noqa: E731 - 1-based gamma, as in the formulas
        total = mu_all.sum() + _never_seen_total(u, g, periods)
        d_total = design.T @ mu_all
        for sign, coefficients in _never_seen_exponents(periods, n):
            d_total = d_total + sign * np.exp(coefficients @ theta) * coefficients
    else:
        total = abundance[0] + (abundance[1:] - phi * abundance[:-1]).sum()
        d_total = d_abundance[:, 0] + (
            d_abundance[:, 1:] - d_phi * abundance[None, :-1] - phi[None, :] * d_abundance[:, :-1]
        ).sum(axis=1)
    return {
        "pstar": (pstar, d_pstar),
        "phi": (phi, d_phi),
        "abundance": (abundance, d_abundance),
        "total": (np.atleast_1d(total), d_total[:, None]),
        "fitted_sum": (np.atleast_1d(mu_all.sum()), (design.T @ mu_all)[:, None]),
    }


def _gamma_count(columns: int, capture: str) -> int:
    """2(I-1) gamma columns: "up" has 1 + 2(I-1) + (I-2) = 3I - 3 columns, "ep" 1 + 2(I-1) + 1 = 2I."""
    periods = (columns + 3) // 3 if capture == "up" else columns // 2
    return 2 * periods - 2


def _never_seen_exponents(periods: int, n: int) -> list[tuple[float, np.ndarray]]:
    """The never-seen total of :func:`_never_seen_total` as sum(sign * exp(c @ theta)): the (sign, c) pairs."""

    def ones(first: int, last: int) -> np.ndarray:
        c = np.zeros(n)
        c[first : last + 1] = 1.0
        return c

    base_first = ones(periods, 2 * periods - 3)
    base_second = ones(periods, 2 * periods - 4)
    base_first[[0, 1]] += 1.0
    base_second[[0, 1]] += 1.0
    terms = []
    for i in range(1, periods - 1):
        shift = ones(2, i) - ones(2 * periods - 1 - i, 2 * periods - 3) if i >= 2 else np.zeros(n)
        terms.append((1.0, base_first + shift))
    for i in range(1, periods - 2):
        shift = ones(2, i) - ones(2 * periods - 2 - i, 2 * periods - 4) if i >= 2 else np.zeros(n)
        terms.append((-1.0, base_second + shift))
    return terms


def _never_seen_total(u, g, periods: int):
    """Expected count of units present at some period but never captured, under the "up" model, leaving out
    the units present in period 1 only or in period I only (their numbers involve p*_1 or p*_I, which "up" does
    not identify).

    Summed over entry period a and exit period b (a <= b, (a, b) not (1, 1) or (I, I)) it reduces to I - 2
    positive and I - 3 negative exponential terms in u and the gammas (Rcapture ``openp``, Cormack 1989); checked
    against the Jolly-Seber expected counts at I = 3, 4, 5 in the tests.
    """
    def gsum(first: int, last: int):
        total = 0.0 + 0 * u
        for k in range(first, last + 1):
            total = total + g(k)
        return total

    first_term = u + g(1) + gsum(periods, 2 * periods - 3)
    second_term = u + g(1) + gsum(periods, 2 * periods - 4)
    extra = 0.0 + 0 * u
    for i in range(1, periods - 1):
        shift = gsum(2, i) - gsum(2 * periods - 1 - i, 2 * periods - 3) if i >= 2 else 0.0
        extra = extra + np.exp(first_term + shift)
    for i in range(1, periods - 2):
        shift = gsum(2, i) - gsum(2 * periods - 2 - i, 2 * periods - 4) if i >= 2 else 0.0
        extra = extra - np.exp(second_term + shift)
    return extra


def _trap_fits(design, counts, kept, fixed, histories, capture) -> dict:
    """Deviance of the model with a homogeneous (and, for "up" with I >= 5, period-specific) trap effect."""
    periods = histories.shape[1]
    free = [k for k in range(design.shape[1]) if k not in fixed]
    base = design[:, free]
    consecutive = (histories[:, 1:] * histories[:, :-1]).astype(float)
    out = {}
    candidates = {"homogeneous": consecutive.sum(axis=1, keepdims=True)}
    if capture == "up" and periods >= 5:
        candidates["heterogeneous"] = consecutive[:, 1 : periods - 2]
    for name, extra in candidates.items():
        try:
            fit = _poisson_glm(np.column_stack([base, extra])[kept], counts[kept])
        except (ModelError, np.linalg.LinAlgError):
            continue
        out[name] = {"deviance": fit.deviance, "df": int(kept.sum()) - fit.rank,
                     "aic": -2 * fit.loglik + 2 * fit.rank}
    return out
