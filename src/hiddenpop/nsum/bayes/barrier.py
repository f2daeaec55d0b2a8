"""Barrier-effect model (Maltiel et al. 2015, section 2.3; NSUM ``model="barrier"``).

Model::

    y_ik | d_i, q_ik ~ Binomial(d_i, q_ik),   q_ik ~ Beta(m_k r_k, (1 - m_k) r_k),  r_k = 1/rho_k - 1
    => y_ik | d_i ~ BetaBinomial(d_i, m_k r_k, (1 - m_k) r_k)        (q integrated out analytically)
    m_k = N_k / N;  rho_k ~ U(0, 1) for every group;  log d_i ~ Normal(mu, sigma) as in the degree model
    p(N_k) proportional to 1/N_k on [L_k, U_k] for hidden k

With ``likelihood="poisson"``, q_ik ~ Gamma(m_k r_k, r_k) and y_ik | d_i is negative binomial.
E q_ik = m_k and Var q_ik = rho_k m_k (1 - m_k): rho_k is the intra-class correlation of ties, large when some
respondents are far more exposed to group k than others (segregation, occupation, region).
Assumptions: no transmission error; barrier effects independent across groups given the degree.
Reference: Maltiel et al. (2015), Annals of Applied Statistics 9(3):1247-1277.
When it fails: rho_k of a hidden group is estimated from that group's own counts only, so with few non-zero
reports it is weakly identified and the size interval widens (honestly); transmission error still biases sizes
down.
"""

from __future__ import annotations

from hiddenpop.nsum.bayes.maltiel import MaltielModel


class BarrierModel(MaltielModel):
    """Random degrees + barrier effects (beta-binomial)."""

    name = "barrier"
    barrier = True
