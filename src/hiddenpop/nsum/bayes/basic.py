"""Basic (fixed-degree) model: y_ik ~ Binomial(d_i, N_k / N) with d_i fixed at an estimate.

Model::

    y_ik ~ Binomial(d_i, N_k / N)   (or Poisson(d_i N_k / N) with likelihood="poisson"), d_i fixed
    p(N_k) proportional to 1 / N_k on [L_k, U_k] for hidden k

The degrees are the Killworth known-population estimates d_i = N sum_{k known} y_ik / sum_{k known} N_k unless
``degrees=`` supplies them. The binomial needs d_i >= max_k y_ik; as the NSUM package's starting values do
(``killworth.start``), a degree below the largest report of the respondent is raised to that report + 1 and a
zero degree is set to 1; how many were raised is reported in ``notes``.
Assumptions: those of the random-degree model, and degrees known without error, so the posterior of N_k
ignores degree uncertainty and is narrower than it should be; it is close to the Killworth MLE with its
binomial standard error. Reference: Killworth et al. (1998), Evaluation Review 22(2):289-308.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hiddenpop.errors import ConfigError
from hiddenpop.nsum.bayes.common import BayesData, Priors
from hiddenpop.nsum.bayes.maltiel import MaltielModel


class BasicModel(MaltielModel):
    """Fixed degrees; only the hidden sizes are sampled."""

    name = "basic"
    random_degree = False

    def __init__(self, priors: Priors | None = None, *, likelihood: str = "poisson",
                 degrees: Any = None, parameterisation: str = "auto") -> None:
        # parameterisation is accepted for a uniform constructor; fixed degrees have nothing to parameterise
        super().__init__(priors, likelihood=likelihood, parameterisation=parameterisation)
        self.degrees = None if degrees is None else np.asarray(degrees, dtype=float)

    def fixed_degree(self, data: BayesData) -> tuple[np.ndarray, list[str]]:
        notes: list[str] = []
        if self.degrees is not None:
            if self.degrees.shape != (data.n_respondents,) or not np.all(np.isfinite(self.degrees)):
                raise ConfigError(f"degrees must be {data.n_respondents} finite values, one per respondent")
            degree = self.degrees.copy()
        else:
            degree = data.killworth_degrees()
            notes.append("degrees fixed at the Killworth known-population estimates")
        if self.likelihood == "binomial":
            floor = data.counts.max(axis=1)
            raised = degree < floor
            degree = np.where(raised, floor + 1.0, degree)
            zero = degree <= 0
            degree = np.where(zero, 1.0, degree)
            if raised.any() or zero.any():
                notes.append(
                    f"{int(raised.sum())} degrees below the respondent's largest report were raised to it + 1 and "
                    f"{int(zero.sum())} zero degrees set to 1 (binomial support; NSUM package convention)"
                )
        elif np.any(degree <= 0):
            zero = degree <= 0
            degree = np.where(zero, 1e-6, degree)
            notes.append(f"{int(zero.sum())} zero degrees set to 1e-6 so the Poisson rate is defined")
        return degree, notes
