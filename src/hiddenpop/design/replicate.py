"""Rescaled bootstrap replicate weights (Rao & Wu 1988; Rao, Wu & Yue 1992), as a matrix.

Within each stratum h with n_h primary sampling units (PSUs), a replicate draws m_h = n_h - 1 PSUs with
replacement; r_hc counts how often PSU c was drawn. Every respondent in PSU c gets the factor

    f_hc = (n_h / m_h) * r_hc,        replicate weight = design weight * f_hc.

Averaged over replicates E f = 1, so replicate totals are unbiased for the full-sample total; for a weighted
total T = sum_c z_hc (z = weighted PSU total) the bootstrap variance is exactly

    Var*(T*) = sum_h n_h / (n_h - 1) * sum_c (z_hc - mean_c z_hc)^2,

the usual with-replacement (ultimate cluster) variance estimator (:func:`exact_bootstrap_variance_total`).
Smooth functions of totals (ratios, the network scale-up estimators) are evaluated on every replicate and
summarised by their standard deviation and percentile interval.

Assumptions: PSUs drawn independently within strata (with replacement, or a small sampling fraction); the
first-stage finite-population correction is ignored. Fails when a stratum has a single PSU: no within-stratum
variation can be observed. Such a stratum keeps factor 1 in every replicate (its PSU is treated as certain,
contributing no variance) and a warning says so. (surveybootstrap sets its weights to 0 instead, which moves
the replicate estimates away from the full-sample estimate; we prefer the conservative "certainty" treatment.)

The vectorised form: factors are generated once per stratum as an (R x n_h) multinomial draw and stored per
PSU (n_psu x R); the respondent-level matrix is ``weights[:, None] * psu_factors[psu_index]``. Replicate totals of
many variables are computed through PSU totals (n_psu x m), so 1,000 replicates of a 3,600-row survey cost one
(R x n_psu) @ (n_psu x m) product.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hiddenpop.errors import ConfigError


@dataclass
class ReplicateFactors:
    """Rescaled-bootstrap factors for R replicates.

    Attributes
    ----------
    psu_factors:
        (n_psu, R) multiplicative factors f_hc per PSU and replicate.
    psu_index:
        (n,) index into ``psu_factors`` for each respondent.
    stratum_of_psu:
        (n_psu,) stratum index of each PSU.
    seed, replicates:
        What generated the factors.
    warnings, notes:
        E.g. strata with fewer than 2 PSUs; PSU labels shared by several strata.
    """

    psu_factors: np.ndarray
    psu_index: np.ndarray
    stratum_of_psu: np.ndarray
    seed: int
    replicates: int
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_psu(self) -> int:
        return self.psu_factors.shape[0]

    def matrix(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Respondent-level replicate weights, shape (n, R): weights[i] * f_{psu(i), r}."""
        factors = self.psu_factors[self.psu_index]
        if weights is None:
            return factors
        return np.asarray(weights, dtype=float)[:, None] * factors

    def psu_totals(self, values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Weighted PSU totals z (n_psu, m) of the columns of ``values`` (n, m) or (n,)."""
        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        if weights is not None:
            values = values * np.asarray(weights, dtype=float)[:, None]
        return np.column_stack(
            [np.bincount(self.psu_index, weights=values[:, j], minlength=self.n_psu) for j in range(values.shape[1])]
        )

    def replicate_totals(self, values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Replicate totals (R, m) of sum_i w_i f_{psu(i),r} v_im, computed through PSU totals."""
        return self.psu_factors.T @ self.psu_totals(values, weights)


def _codes(labels: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    if labels is None:
        return np.zeros(n, dtype=np.int64), np.array(["(all)"], dtype=object)
    values = np.asarray(labels)
    if not np.issubdtype(values.dtype, np.number):
        values = values.astype(str)
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), uniques


def rescaled_bootstrap(
    n: int,
    *,
    strata: np.ndarray | None = None,
    psu: np.ndarray | None = None,
    replicates: int,
    seed: int,
) -> ReplicateFactors:
    """Draw rescaled-bootstrap factors (m_h = n_h - 1) for ``n`` respondents.

    ``strata`` and ``psu`` are per-respondent labels; ``psu=None`` treats every respondent as its own PSU and
    ``strata=None`` puts all PSUs in one stratum. A PSU label that occurs in several strata is treated as a
    different PSU in each (PSUs are nested in strata), and a note says so.
    """
    if isinstance(replicates, bool) or int(replicates) != replicates or replicates < 1:
        raise ConfigError("replicates must be a whole number >= 1")
    if seed is None:
        raise ConfigError("the rescaled bootstrap needs an explicit seed")
    replicates = int(replicates)
    rng = np.random.default_rng(seed)
    stratum_code, stratum_labels = _codes(strata, n)
    if psu is None:
        psu_key = np.arange(n)
    else:
        psu_code, _ = _codes(psu, n)
        psu_key = psu_code
    # PSUs nested within strata: the pair (stratum, psu) identifies a PSU.
    pair = stratum_code * (int(psu_key.max()) + 1) + psu_key
    unique_pairs, psu_index = np.unique(pair, return_inverse=True)
    stratum_of_psu = unique_pairs // (int(psu_key.max()) + 1)
    notes: list[str] = []
    if psu is not None and strata is not None:
        per_label = np.bincount(unique_pairs % (int(psu_key.max()) + 1))
        shared = int((per_label > 1).sum())
        if shared:
            notes.append(f"{shared} PSU label(s) occur in more than one stratum; each (stratum, PSU) pair is one PSU")
    factors = np.ones((len(unique_pairs), replicates))
    warnings: list[str] = []
    lonely: list[str] = []
    for h in range(len(stratum_labels)):
        members = np.flatnonzero(stratum_of_psu == h)
        n_h = len(members)
        if n_h == 0:
            continue
        if n_h < 2:
            lonely.append(str(stratum_labels[h]))
            continue
        m_h = n_h - 1
        draws = rng.multinomial(m_h, np.full(n_h, 1.0 / n_h), size=replicates)  # (R, n_h)
        factors[members, :] = (n_h / m_h) * draws.T
    if lonely:
        warnings.append(
            f"{len(lonely)} stratum/strata with fewer than 2 PSUs ({', '.join(lonely[:10])}"
            f"{', ...' if len(lonely) > 10 else ''}): their variance cannot be estimated and is left out "
            "(factor 1, treated as certainty PSUs); collapse them with a neighbouring stratum"
        )
    return ReplicateFactors(
        psu_factors=factors,
        psu_index=psu_index.astype(np.int64),
        stratum_of_psu=stratum_of_psu.astype(np.int64),
        seed=int(seed),
        replicates=replicates,
        warnings=warnings,
        notes=notes,
    )


def rescaled_bootstrap_weights(
    weights: np.ndarray | None,
    *,
    strata: np.ndarray | None = None,
    psu: np.ndarray | None = None,
    replicates: int,
    seed: int,
    n: int | None = None,
) -> np.ndarray:
    """The (n, R) replicate-weight matrix: design weights (ones when ``None``) times rescaled factors."""
    if weights is None and n is None:
        raise ConfigError("give weights or n")
    size = len(weights) if weights is not None else int(n)
    factors = rescaled_bootstrap(size, strata=strata, psu=psu, replicates=replicates, seed=seed)
    return factors.matrix(weights)


def exact_bootstrap_variance_total(
    values: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    strata: np.ndarray | None = None,
    psu: np.ndarray | None = None,
) -> float:
    """Closed-form rescaled-bootstrap variance of the weighted total sum_i w_i v_i (the limit R -> infinity):
    sum_h n_h/(n_h - 1) sum_c (z_hc - zbar_h)^2, strata with one PSU contributing 0."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    factors = rescaled_bootstrap(n, strata=strata, psu=psu, replicates=1, seed=0)
    z = factors.psu_totals(values, weights)[:, 0]
    total = 0.0
    for h in np.unique(factors.stratum_of_psu):
        zh = z[factors.stratum_of_psu == h]
        if len(zh) >= 2:
            total += len(zh) / (len(zh) - 1) * float(np.sum((zh - zh.mean()) ** 2))
    return total
