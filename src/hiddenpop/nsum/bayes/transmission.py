"""Transmission-error model (Maltiel et al. 2015, section 2.4; NSUM ``model="transmission"``).

Model::

    y_ik | d_i ~ Binomial(d_i, tau_k N_k / N) for hidden k (tau_k = 1 for known groups)
    tau_k ~ Beta(a_k, b_k)   (default a_k = b_k = 1);  p(N_k) proportional to 1/N_k on [L_k, U_k]
    log d_i ~ Normal(mu, sigma), mu ~ U(3, 8), sigma ~ U(0.25, 2)

Identification: the data identify only the effective size w_k = tau_k N_k. The posterior of tau_k equals its
prior (truncated to w_k/U_k < tau_k < min(1, w_k/L_k)), and N_k = w_k / tau_k inherits the prior's shape: with the
default uniform prior it is strongly right-skewed. Use an informative prior from external data
(:mod:`hiddenpop.nsum.bayes.calibration`). Sampling uses (log w_k, tau_k), see :mod:`.maltiel`.
Reference: Maltiel et al. (2015); Salganik et al. (2011) for estimating tau with the game of contacts.
"""

from __future__ import annotations

from hiddenpop.nsum.bayes.maltiel import MaltielModel


class TransmissionModel(MaltielModel):
    """Random degrees + transmission error on hidden groups."""

    name = "transmission"
    transmission = True
