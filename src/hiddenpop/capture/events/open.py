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
from hiddenpop.capture.core.loglinear import alias_directions, non_aliased
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
    drop_unidentified: bool = False,
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
    drop_unidentified:
        When the included histories leave parameters unidentified (a design column with no support among them,
        or one that is a combination of others), drop those parameters and report every quantity that depends
        on them as not identifiable (NaN, ``identifiable`` False, the reason in ``reason``) instead of refusing.

    Returns
    -------
    Estimates with quantities ``capture_probability`` (per period), ``survival`` (per interval),
    ``abundance`` (per period), ``arrivals`` (per interval) and ``total_ever_present``; columns ``period``,
    ``at_boundary``, ``identifiable`` and ``reason`` (why a quantity is not identifiable, else empty);
    ``diagnostics`` holds deviance, df, aic, the gammas fixed at the boundary, the parameters dropped as
    unidentified and the trap-effect fits.
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
    names = parameter_names(periods, capture)
    if capture == "up":
        # parameter indices (0 = intercept, gamma_k at index k): gamma_2..gamma_{I-2}, gamma_{I+1}..gamma_{2I-2}
        checked = list(range(2, periods - 1)) + list(range(periods + 1, 2 * periods - 1))
    else:
        checked = list(range(1, n_gamma + 1))

    fixed: list[int] = []
    coef = np.zeros(n_params)
    while True:
        free = [k for k in range(n_params) if k not in fixed]
        estimated = _estimated_columns(full_design, kept, free, names, drop_unidentified)
        fit = _poisson_glm(full_design[kept][:, estimated], counts[kept],
                           start=None if not fixed else coef[estimated])
        coef = np.zeros(n_params)
        coef[estimated] = fit.coef
        cov = np.zeros((n_params, n_params))
        cov[np.ix_(estimated, estimated)] = fit.cov
        negatives = [k for k in checked if k in estimated and coef[k] < 0]
        if not constrain_negative or not negatives:
            break
        fixed.append(min(negatives))
    aliased = [k for k in free if k not in estimated]

    warnings: list[str] = []
    if not fit.converged:
        warnings.append("the Poisson fit did not converge; treat the estimates with caution")
    if not constrain_negative:
        negatives = [k for k in checked if k in estimated and coef[k] < 0]
        if negatives:
            warnings.append(
                f"{len(negatives)} gamma parameter(s) are negative (survival > 1 or negative arrivals); "
                "use constrain_negative=True to fix them at the boundary"
            )

    derived = demography_jacobian(coef, full_design, capture)
    varies = np.zeros(n_params, dtype=bool)
    varies[estimated] = True  # a parameter fixed at the boundary or dropped as aliased does not vary

    def jacobian(name: str) -> tuple[np.ndarray, np.ndarray]:
        value, grads = derived[name]
        return value, grads * varies[:, None]

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

    seen = identifiability(coef, histories, capture, kept, counts, fixed, names, labels)

    z = two_sided_z(level)
    # the table is built column by column, in the order Estimates keeps (core columns first), so that
    # neither pandas' row-dict parsing nor a reordering copy is paid on every fit
    columns: dict[str, list] = {name: [] for name in ("quantity", "estimate", "se", "lower", "upper", "period",
                                                      "identifiable", "reason")}

    def add(quantity: str, period: str, estimate: float, se: float, index: int) -> None:
        identifiable = bool(seen.identifiable[quantity][index])
        if not identifiable:
            estimate, se = np.nan, np.nan
        for name, value in (("quantity", quantity), ("estimate", estimate), ("se", se), ("period", period),
                            ("lower", estimate - z * se), ("upper", estimate + z * se),
                            ("identifiable", identifiable), ("reason", seen.reasons[quantity][index])):
            columns[name].append(value)

    for i in range(periods):
        add("capture_probability", str(i + 1), pstar[i], pstar_se[i], i)
    boundary = []
    for i in range(periods - 1):
        add("survival", f"{i + 1}->{i + 2}", phi[i], phi_se[i], i)
    for i in range(periods):
        add("abundance", str(i + 1), abundance[i], abundance_se[i], i)
    for i in range(periods - 1):
        add("arrivals", f"{i + 1}->{i + 2}", arrivals[i], arrivals_se[i], i)
    add("total_ever_present", "all", total, total_se, 0)
    quantities = np.array(columns["quantity"])
    estimates = np.array(columns["estimate"], dtype=np.float64)
    at_boundary = ((quantities == "survival") & np.isclose(estimates, 1.0)) | (
        (quantities == "arrivals") & np.isclose(estimates, 0.0)
    )
    table = pd.DataFrame(
        {"quantity": columns["quantity"], "method": METHOD, "estimate": estimates, "se": columns["se"],
         "lower": columns["lower"], "upper": columns["upper"], "level": level, "period": columns["period"],
         "at_boundary": at_boundary, "identifiable": np.array(columns["identifiable"], dtype=bool),
         "reason": columns["reason"]}
    )
    for k in fixed:
        name = f"gamma{k}"
        boundary.append(name)
    if fixed:
        warnings.append(
            f"{len(fixed)} gamma parameter(s) fixed at 0 (boundary: survival 1 or no arrivals): {', '.join(boundary)}; "
            "their standard errors are conditional on the boundary"
        )
    if aliased:
        warnings.append(
            f"{len(aliased)} parameter(s) not identified by the included histories were dropped "
            f"({', '.join(names[k] for k in aliased)}); every quantity that depends on them is reported as not "
            "identifiable (no estimate; the notes and the column 'reason' say why)"
        )
    n_cells = int(kept.sum())
    df = n_cells - fit.rank
    aic = -2 * fit.loglik + 2 * fit.rank
    trap = _trap_fits(full_design, counts, kept, fixed + aliased, histories, capture)
    estimable_cells = seen.estimable_cells
    dropped = np.isin(np.arange(n_params), aliased)
    loglinear = pd.DataFrame({"parameter": names, "estimate": np.where(dropped, np.nan, coef),
                              "se": np.where(dropped, np.nan, np.sqrt(np.diag(cov))),
                              "fixed_at_boundary": [k in fixed for k in range(n_params)], "aliased": dropped})
    fitted = pd.DataFrame({"history": labels, "observed": counts, "fitted": np.where(estimable_cells, mu_hat, np.nan),
                           "kept": kept})
    notes = []
    if (~kept).any():
        if estimable_cells[~kept].all():
            notes.append(f"{int((~kept).sum())} histories excluded from the fit (treated as missing); abundances "
                         f"add observed minus fitted over them ({correction:.3f})")
        else:
            blind = [lab for lab, ok, k in zip(labels, estimable_cells, kept, strict=True) if not ok and not k]
            notes.append(f"{int((~kept).sum())} histories excluded from the fit (treated as missing); abundances "
                         "would add observed minus fitted over them, but the fitted counts of "
                         f"{_listing(blind)} are not identified by the included histories")
    notes.extend(seen.notes)
    return Estimates(
        table=table,
        settings={"capture": capture, "constrain_negative": constrain_negative, "periods": periods,
                  "excluded_histories": [lab for lab, k in zip(labels, kept, strict=True) if not k],
                  "drop_unidentified": drop_unidentified, "level": level},
        warnings=warnings,
        notes=notes,
        diagnostics={"deviance": fit.deviance, "df": df, "aic": aic, "observed": observed,
                     "boundary_parameters": boundary, "aliased_parameters": [names[k] for k in aliased],
                     "converged": fit.converged, "trap_effect": trap},
        tables={"loglinear_parameters": loglinear, "fitted": fitted},
    )


def parameter_names(periods: int, capture: str) -> list[str]:
    """Names of the design columns of :func:`full_open_design`: intercept, gamma1..gamma{2I-2}, the betas."""
    names = ["intercept"] + [f"gamma{k}" for k in range(1, 2 * periods - 1)]
    return names + ([f"beta{k}" for k in range(2, periods)] if capture == "up" else ["beta"])


def parameter_meaning(name: str, periods: int) -> str:
    """What a parameter of the open model carries, in words (for the reasons of non-identifiability)."""
    if name.startswith("gamma"):
        k = int(name[5:])
        if k < periods:
            return f"{name} (arrivals: not seen up to period {k})"
        return f"{name} (departures: not seen from period {2 * periods - k} on)"
    if name == "beta":
        return "beta (the common capture probability)"
    if name.startswith("beta"):
        return f"{name} (capture probability of period {name[4:]})"
    return "the intercept"


def _listing(labels: list[str], limit: int = 8) -> str:
    shown = ", ".join(labels[:limit])
    return shown if len(labels) <= limit else f"{shown} and {len(labels) - limit} more"


def _estimated_columns(design: np.ndarray, kept: np.ndarray, free: list[int], names: list[str],
                       drop_unidentified: bool) -> list[int]:
    """The free columns the included histories identify: aliased ones (no support among the included cells, or a
    combination of earlier columns) are left out with ``drop_unidentified``, else refused with the reason."""
    block = design[kept][:, free]
    rank = int(np.linalg.matrix_rank(block))
    if rank == len(free):
        return list(free)
    keep = non_aliased(block)
    if rank != int(keep.sum()):
        raise ModelError(f"open-population design is numerically ill-conditioned (rank {rank} by SVD, "
                         f"{int(keep.sum())} by QR); too many histories excluded or too few periods")
    if not drop_unidentified:
        lost = [names[k] for k, ok in zip(free, keep, strict=True) if not ok]
        raise ModelError(
            f"open-population design is not of full rank ({rank} < {len(free)} parameters): the included "
            f"histories do not identify {', '.join(lost)}; too many histories excluded or too few periods. "
            "Use drop_unidentified=True (command line: --drop-unidentified) to report only what they identify"
        )
    return [k for k, ok in zip(free, keep, strict=True) if ok]


@dataclass
class Identifiability:
    """Which reported quantities the included histories identify (``identifiable[quantity]``, one bool per row in
    table order), why not (``reasons``), which history cells have identified fitted counts, and notes."""

    identifiable: dict[str, np.ndarray]
    reasons: dict[str, list[str]]
    estimable_cells: np.ndarray
    notes: list[str]


def reported_quantities(theta: np.ndarray, histories: np.ndarray, capture: str, kept: np.ndarray,
                        counts: np.ndarray, ends: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """The quantities of the results table at log-linear parameters ``theta`` (full design order), including the
    observed-minus-fitted correction over excluded histories, and the fitted ``cells``; ``ends`` sets p*_1 and
    p*_I under ``"up"``.

    ``theta`` may carry two extra entries (``"up"`` only): coefficients of the w_1 and w_I columns, which the
    model leaves out because they are aliased with the intercept and gamma_1 / gamma_I; p*_1 and p*_I are then
    their inverse logits. Used to find what the data identify (:func:`identifiability`).
    """
    return _quantities(theta, full_open_design(histories, capture), histories, capture, kept, counts, ends)[0]


def _quantities(theta, design, histories, capture, kept, counts, ends=None):
    """:func:`reported_quantities` with the design given, and the same quantities without the add-back."""
    eta_extra = 0.0
    if theta.size == design.shape[1] + 2:
        first, last = theta[-2], theta[-1]
        ends = (1 / (1 + np.exp(-first)), 1 / (1 + np.exp(-last)))
        eta_extra = first * histories[:, 0] + last * histories[:, -1]
        theta = theta[:-2]
    values = demography(theta, design, capture, ends)
    mu = np.exp(design @ theta + eta_extra)
    phi = values["phi"]
    if capture == "up":
        total = float(counts.sum()) + values["total"] - values["fitted_sum"]
    else:
        total = values["total"]
    out = []
    for add_back in (float((counts[~kept] - mu[~kept]).sum()), 0.0):
        abundance = values["abundance"] + add_back
        out.append({"capture_probability": values["pstar"], "survival": phi, "abundance": abundance,
                    "arrivals": abundance[1:] - phi * abundance[:-1], "total_ever_present": total, "cells": mu})
    return out[0], out[1]


IDENTIFIABILITY_STEPS = (0.5, -1.0)
IDENTIFIABILITY_TOLERANCE = 1e-7
#: Besides the fitted point, the null directions are also tried from this many points moved along all of them at
#: once (fixed pseudo-random weights): a quantity that depends on two unseen parameters only jointly, or that is
#: flat in one of them only where another sits at 0 (as 1 - exp(-gamma) does), is caught there.
IDENTIFIABILITY_POINTS = 1


def identifiability(coef: np.ndarray, histories: np.ndarray, capture: str, kept: np.ndarray, counts: np.ndarray,
                    fixed: Sequence[int], names: list[str], labels: list[str]) -> Identifiability:
    """What the included histories identify, found from the model itself rather than listed by hand.

    The fitted counts of the included cells depend on the parameters only through the design restricted to those
    cells. Its null space (one direction per aliased column, :func:`alias_directions`; parameters fixed at the
    boundary do not move) is what the data cannot see. Under ``"up"`` the design is first widened by the w_1 and
    w_I columns (p*_1 and p*_I), which are aliased with the intercept and gamma_1 / gamma_I: that is why Rcapture
    reports p*_1, p*_I, phi_{I-1}, N_1, N_I, B_1 and B_{I-1} as not identifiable, and the same check finds them.
    A reported quantity is identifiable when moving the parameters along every null direction leaves it unchanged
    (relative :data:`IDENTIFIABILITY_TOLERANCE`), from the fitted point and from :data:`IDENTIFIABILITY_POINTS`
    other points of the same null space; each direction that changes it gives a reason.
    """
    design = full_open_design(histories, capture)
    columns = [k for k in range(design.shape[1]) if k not in fixed]
    wide, wide_names = design, list(names)
    theta = np.asarray(coef, dtype=float)
    if capture == "up":
        wide = np.column_stack([design, histories[:, 0], histories[:, -1]]).astype(float)
        wide_names += ["p*_1", "p*_last"]
        theta = np.concatenate([theta, [0.0, 0.0]])
        columns += [design.shape[1], design.shape[1] + 1]
    block = wide[kept][:, columns]
    keep = non_aliased(block)
    directions = np.zeros((int((~keep).sum()), wide.shape[1]))
    if directions.size:
        directions[:, columns] = alias_directions(block, keep)
        directions /= np.abs(directions).max(axis=1, keepdims=True)
    periods = histories.shape[1]
    why = []  # per null direction: what it moves, and why the data cannot see it
    for j in np.asarray(columns)[~keep]:
        name = wide_names[j]
        if name in ("p*_1", "p*_last"):
            first = name == "p*_1"
            why.append(f"depends on the capture probability of period {1 if first else periods}, which unconstrained "
                       "capture probabilities cannot tell apart from the "
                       + ("arrivals before period 2" if first else f"departures after period {periods - 1}"))
        elif not wide[kept][:, j].any():
            carriers = [lab for lab, x, k in zip(labels, wide[:, j], kept, strict=True) if x and not k]
            why.append(f"depends on {parameter_meaning(name, periods)}, which no included history informs"
                       + (f" (its histories, {_listing(carriers)}, are excluded)" if carriers else ""))
        else:
            why.append(f"depends on {parameter_meaning(name, periods)}, which the included histories cannot "
                       "separate from the other parameters (aliased)")

    origins = [theta] + [theta + np.random.default_rng(point).normal(0.0, 0.5, len(directions)) @ directions
                         for point in range(1, IDENTIFIABILITY_POINTS + 1)] if len(directions) else [theta]
    base = _quantities(theta, design, histories, capture, kept, counts)[0]
    sizes = {name: np.size(value) for name, value in base.items()}
    offsets = np.cumsum([0, *sizes.values()])

    def flat(values: dict) -> np.ndarray:
        return np.concatenate([np.atleast_1d(values[name]) for name in sizes])

    # changes are measured against each value plus the scale of its kind, so that a value at 0 (no arrivals at the
    # boundary) is not called unidentified for rounding; fitted cell counts are compared relatively
    sizes_now = np.abs(np.concatenate([base["abundance"], np.atleast_1d(base["total_ever_present"])]))
    size_scale = float(sizes_now[np.isfinite(sizes_now)].max(initial=0.0))
    kind_scale = {"capture_probability": 1.0, "survival": 1.0, "abundance": size_scale, "arrivals": size_scale,
                  "total_ever_present": size_scale, "cells": 0.0}
    scale = np.concatenate([np.full(n, kind_scale[name]) for name, n in sizes.items()])
    moves = np.zeros((2, len(directions), offsets[-1]), dtype=bool)  # [with the add-back, before it]
    for origin in origins:
        start = [flat(values) for values in _quantities(origin, design, histories, capture, kept, counts)]
        for d, direction in enumerate(directions):
            for step in IDENTIFIABILITY_STEPS:
                moved = _quantities(origin + step * direction, design, histories, capture, kept, counts)
                for version in range(2):
                    now = flat(moved[version])
                    with np.errstate(invalid="ignore"):
                        differs = np.abs(now - start[version]) > IDENTIFIABILITY_TOLERANCE * (
                            np.abs(start[version]) + scale)
                    moves[version, d] |= differs | (np.isnan(now) != np.isnan(start[version]))
    changed = {name: moves[0][:, lo:hi] for name, lo, hi in zip(sizes, offsets[:-1], offsets[1:], strict=True)}
    in_model = {name: moves[1][:, lo:hi] for name, lo, hi in zip(sizes, offsets[:-1], offsets[1:], strict=True)}
    estimable_cells = ~changed["cells"].any(axis=0)
    blind = [lab for lab, ok, k in zip(labels, estimable_cells, kept, strict=True) if not ok and not k]
    add_back = (f"adds back observed minus fitted over the excluded histories, and the fitted counts of "
                f"{_listing(blind)} are not identified")

    def reason(name: str, i: int) -> str:
        parts = [why[d] for d in np.flatnonzero(in_model[name][:, i])]
        if (changed[name][:, i] & ~in_model[name][:, i]).any():
            parts.append(add_back)
        return "; ".join(parts)

    quantities = [name for name in changed if name != "cells"]
    identifiable = {name: ~changed[name].any(axis=0) for name in quantities}
    reasons = {name: [reason(name, i) for i in range(changed[name].shape[1])] for name in quantities}
    notes = []
    for d, text in enumerate(why):
        hit = sum(int(changed[name][d].sum()) for name in quantities)
        indirect = any((changed[name][d] & ~in_model[name][d]).any() for name in quantities)
        if hit:
            notes.append(f"{hit} reported quantities have no estimate"
                         + (" (some through the fitted counts of excluded histories)" if indirect else "")
                         + f": each {text}")
    return Identifiability(identifiable, reasons, estimable_cells, notes)


#: p*_1 and p*_I under "up": not identifiable; with the w_1 and w_I coefficients at 0 (logit 0.5) the gammas are
#: those of the fit, and the identifiable quantities do not depend on this choice (see :func:`identifiability`).
P_UNIDENTIFIED = 0.5


def demography(theta: np.ndarray, design: np.ndarray, capture: str,
               ends: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """The demographic quantities of the module docstring at log-linear parameters ``theta``.

    ``design`` is the full design over all histories (intercept, the 2(I-1) gamma columns, the capture
    columns). Returns ``pstar`` (I), ``phi`` (I-1), ``abundance`` (I), ``total`` (1; for "up" the fitted
    observable total plus the never-seen units, for "ep" N_1 plus the arrivals) and ``fitted_sum`` (1).
    ``ends`` gives p*_1 and p*_I under "up" (default :data:`P_UNIDENTIFIED` for both).
    """
    return {name: value for name, (value, _grad) in demography_jacobian(theta, design, capture, ends).items()}


def demography_jacobian(
    theta: np.ndarray, design: np.ndarray, capture: str, ends: tuple[float, float] | None = None
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
    u = theta[0]
    if capture == "up":
        beta = theta[n_gamma + 1 :]
        inner = 1 / (1 + np.exp(-beta))
        first, last = (P_UNIDENTIFIED, P_UNIDENTIFIED) if ends is None else ends
        pstar = np.concatenate([[first], inner, [last]])
        d_pstar = np.zeros((n, periods))
        d_pstar[n_gamma + 1 + np.arange(periods - 2), np.arange(1, periods - 1)] = inner * (1 - inner)
    else:
        shared = 1 / (1 + np.exp(-theta[n_gamma + 1]))
        pstar = np.repeat(shared, periods)
        d_pstar = np.zeros((n, periods))
        d_pstar[n_gamma + 1] = shared * (1 - shared)
    phi, d_phi, abundance, d_abundance = cormack_demography(theta, periods, pstar, d_pstar)

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


def cormack_demography(theta: np.ndarray, periods: int, pstar: np.ndarray,
                       d_pstar: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Survival phi_i (I - 1) and period sizes N_i (I) of the module docstring, each with its Jacobian (one row per
    parameter), from u = ``theta[0]``, gamma_k = ``theta[k]`` (k = 1..2I-2) and the capture probabilities
    ``pstar`` with their Jacobian ``d_pstar`` (parameters x periods). The robust design gives every p*_i from the
    closed model within period i; the open model from its betas.

    Forward accumulation of exact derivatives through the formulas: every intermediate (products U_i, V_i,
    their partial sums, phi, N_i) is carried with its gradient, using d e^g = e^g dg and the product and quotient
    rules.
    """
    n = theta.size
    eye = np.eye(n)
    u = theta[0]
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

    return phi, d_phi, abundance, d_abundance


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
