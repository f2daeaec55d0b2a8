"""Random-degree model (Maltiel et al. 2015, section 2.2; NSUM ``model="degree"``).

Model::

    y_ik | d_i ~ Binomial(d_i, N_k / N)          (or Poisson(d_i N_k / N) with likelihood="poisson")
    log d_i ~ Normal(mu, sigma),  mu ~ U(3, 8),  sigma ~ U(0.25, 2)
    p(N_k) proportional to 1 / N_k on [L_k, U_k] for hidden k   (default L_k = max(1, max_i y_ik), U_k = N)

Assumptions: every respondent knows members of each group at random given their degree (no barrier effects),
reports every tie (no transmission error) and recalls accurately; the population mixes at random.
Reference: Maltiel, Raftery, McCormick & Baraff (2015), "Estimating population size using the network scale up
method", Annals of Applied Statistics 9(3):1247-1277.
When it fails: with barrier effects the binomial variance is too small, so intervals are too narrow (check the
posterior predictive share of zeros); with under-reporting the sizes are biased down by the factor tau.
The mu ~ U(3, 8) bound (mean degree >= ~20) binds for small-degree data; widen it via ``Priors(mu=...)``.
"""

from __future__ import annotations

from hiddenpop.nsum.bayes.maltiel import MaltielModel


class DegreeModel(MaltielModel):
    """Random log-normal degrees; see the module docstring."""

    name = "degree"
    random_degree = True
