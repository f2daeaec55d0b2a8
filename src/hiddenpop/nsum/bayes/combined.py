"""Combined barrier + transmission model (Maltiel et al. 2015, section 2.5; the Study 2 "full" model).

Model::

    y_ik | d_i ~ BetaBinomial(d_i, pi_k r_k, (1 - pi_k) r_k),  r_k = 1/rho_k - 1
    pi_k = tau_k N_k / N for hidden k, N_k / N for known k;  rho_k ~ U(0, 1)
    tau_k ~ Beta(a_k, b_k);  p(N_k) proportional to 1/N_k on [L_k, U_k];  log d_i ~ Normal(mu, sigma)

The respondent-level probabilities are integrated out (beta-binomial, or negative binomial with
``likelihood="poisson"``) instead of sampling an n x K latent matrix as the NSUM package does; see
:mod:`.maltiel` for why the Beta is placed on the reported probability tau_k q_ik.
Identification: as in the transmission model, tau_k is identified only through its prior; a calibrated prior
(:func:`hiddenpop.nsum.bayes.calibration.tau_prior_from_counts`) is what makes the sizes meaningful.
Reference: Maltiel et al. (2015), Annals of Applied Statistics 9(3):1247-1277; Study 2 Appendix B.
"""

from __future__ import annotations

from hiddenpop.nsum.bayes.maltiel import MaltielModel


class CombinedModel(MaltielModel):
    """Random degrees + barrier effects + transmission error."""

    name = "combined"
    barrier = True
    transmission = True
