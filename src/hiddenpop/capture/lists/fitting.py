"""One hierarchical log-linear model fitted to overlapping lists on the extended-MLE face.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hiddenpop.capture.core.loglinear import fit_poisson
from hiddenpop.capture.core.terms import Term, canonical_terms, parse_term
from hiddenpop.capture.lists.data import list_data
from hiddenpop.capture.lists.existence import EXISTS, NOT_IDENTIFIABLE, check_extended_mle, split_terms
from hiddenpop.capture.lists.space import design_matrix
from hiddenpop.distributions import normal_sf

__all__ = ['LoglinearFit', 'fit_model']


@dataclass
class LoglinearFit:
    """One fitted hierarchical log-linear model on the extended-MLE face."""

    terms: tuple[Term, ...]
    neg_inf_terms: tuple[Term, ...]
    status: int
    abundance: float = float("nan")
    stderr: float = float("nan")
    dark: float = float("nan")
    intercept: float = float("nan")
    intercept_var: float = float("nan")
    coefficients: np.ndarray = field(default_factory=lambda: np.empty(0))
    vcov: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    fitted: np.ndarray = field(default_factory=lambda: np.empty(0))
    loglik: float = float("nan")
    deviance: float = float("nan")
    df: int = 0
    aic: float = float("nan")
    bic: float = float("nan")
    parameters: int = 0
    converged: bool = False

    @property
    def ok(self) -> bool:
        return self.status == EXISTS and self.converged and np.isfinite(self.abundance)

    def wald_pvalue(self, term: Term) -> float:
        """Two-sided Wald p-value of an interaction (1 when the term sits at −∞: no finite evidence)."""
        if term in self.neg_inf_terms:
            return 1.0
        finite = [t for t in self.terms if t not in self.neg_inf_terms]
        index = 1 + int(self.coefficients.size - 1 - len(finite)) + finite.index(term)
        z = self.coefficients[index] / math.sqrt(self.vcov[index, index])
        return float(2 * normal_sf(abs(z)))


def fit_model(
    data: Any,
    terms: Sequence[Term] | Sequence[str] = (),
    *,
    counts: np.ndarray | None = None,
    check: bool = True,
) -> LoglinearFit:
    """Fit main effects plus ``terms`` (tuples of list indices or names like ``"A:B"``) on the extended-MLE face.

    AIC = −2 log L + 2p and BIC = −2 log L + p log n, with log L the Poisson log-likelihood over the fitted
    cells (incl. the log y! term, as R's glm), p the number of parameters of the hierarchical model
    (intercept, main effects and every interaction, those at −∞ included) and n the number of cases seen.
    Deviance is the Poisson deviance over the fitted cells; df = fitted cells − finite parameters.
    """
    data = list_data(data)
    terms = canonical_terms(parse_term(t, data.names) if isinstance(t, str) else tuple(t) for t in terms)
    counts = data.counts if counts is None else np.asarray(counts, dtype=np.float64)
    finite, neg_inf, kept = split_terms(data, terms, counts)
    status = check_extended_mle(data, terms, counts) if check else EXISTS
    fit = LoglinearFit(terms=terms, neg_inf_terms=neg_inf, status=status)
    if status != EXISTS:
        return fit
    design = design_matrix(data.patterns, finite)[kept]
    y = counts[kept]
    engine = fit_poisson(design[:, 1:], y, n_observed=round(counts.sum()))
    if engine.aliased:
        fit.status = NOT_IDENTIFIABLE
        return fit
    observed = float(counts.sum())
    dark = math.exp(engine.intercept)
    fitted = np.zeros(len(data.patterns))
    fitted[kept] = engine.fitted
    fit.coefficients, fit.vcov, fit.fitted = engine.coef, engine.vcov, fitted
    fit.intercept, fit.intercept_var, fit.dark = engine.intercept, float(engine.vcov[0, 0]), dark
    fit.abundance = observed + dark
    fit.stderr = engine.stderr
    fit.loglik, fit.deviance, fit.df = engine.loglik, engine.deviance, int(engine.df)
    fit.parameters = 1 + data.lists + len(terms)
    fit.aic = -2 * engine.loglik + 2 * fit.parameters
    fit.bic = -2 * engine.loglik + fit.parameters * math.log(observed)
    fit.converged = engine.converged
    return fit
