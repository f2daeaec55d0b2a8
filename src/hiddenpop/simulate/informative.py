"""A survey of aggregated relational data drawn with informative sampling: areas where people know more members of
the hidden group are more likely to be selected, so the unweighted scale-up overestimates the hidden size.

Population model (a superpopulation of areas and people):

* area c has a hidden-tie intensity u_c ~ Gamma(shape ``area_shape``, mean 1);
* person i in area c has degree d_i ~ LogNormal(``degree_mu``, ``degree_sigma``) and a personal intensity
  e_i ~ Gamma(shape ``person_shape``, mean 1);
* known group k: y_ik ~ Poisson(d_i N_k / N); hidden group: y_iH ~ Poisson(d_i (N_H / N) u_c e_i).

Averaged over the population E[y_iH] / E[d_i] = N_H / N, so N_H is the truth every design-consistent scale-up
estimator targets. Design: ``n_strata`` strata (equal shares of the population's areas), in each ``psu_per_stratum``
areas drawn with replacement with probability proportional to (``floor`` + u_c), then ``per_psu`` people by simple
random sampling. The design weight of a respondent is proportional to 1 / (floor + u_c): the inclusion
probability depends on the ties to the hidden group (informative sampling), and people in one area share u_c
(clustering). Every weight is divided by the same constant, which a normalised-weight analysis does not see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InformativeSample:
    counts: np.ndarray
    groups: tuple[str, ...]
    weights: np.ndarray
    strata: np.ndarray
    psu: np.ndarray
    truth: float


def informative_sample(
    known: Mapping[str, float],
    hidden_size: float,
    population: float,
    *,
    seed: int,
    n_strata: int = 2,
    psu_per_stratum: int = 20,
    per_psu: int = 10,
    degree_mu: float = 5.0,
    degree_sigma: float = 0.5,
    area_shape: float = 2.0,
    person_shape: float = 4.0,
    floor: float = 0.5,
) -> InformativeSample:
    """One survey (counts with the known groups first and the hidden group ``"hidden"`` last) with its design
    weights, stratum and PSU labels (PSU labels unique across strata) and the true hidden size."""
    rng = np.random.default_rng(seed)
    n_psu = n_strata * psu_per_stratum
    # with-replacement PPS of areas: the selected areas' intensities follow the size-biased law
    # (floor + u) Gamma(u) / (floor + 1), drawn as a mixture: Gamma(shape) w.p. floor / (floor + 1), else Gamma(shape + 1)
    size_biased = rng.random(n_psu) >= floor / (floor + 1.0)
    u = rng.gamma(area_shape + size_biased, 1.0 / area_shape)
    psu = np.repeat(np.arange(n_psu), per_psu)
    strata = psu // psu_per_stratum
    n = len(psu)
    degree = rng.lognormal(degree_mu, degree_sigma, n)
    personal = rng.gamma(person_shape, 1.0 / person_shape, n)
    prob = np.array([*known.values(), hidden_size]) / population
    rate = degree[:, None] * prob[None, :]
    rate[:, -1] *= u[psu] * personal
    counts = rng.poisson(rate).astype(float)
    weights = 1.0 / (floor + u[psu])
    return InformativeSample(counts=counts, groups=(*known, "hidden"), weights=weights, strata=strata, psu=psu,
                             truth=float(hidden_size))
