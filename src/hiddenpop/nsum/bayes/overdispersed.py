"""Overdispersed model of Zheng, Salganik & Gelman (2006) with the known-group scaling.

Model::

    y_ik ~ NegativeBinomial(mean mu_ik = exp(alpha_i + beta_k), variance omega_k mu_ik),  omega_k > 1
    alpha_i ~ Normal(0, sigma_alpha);  beta_k ~ Normal(mu_beta, sigma_beta);  1/omega_k ~ U(0, 1)
    flat priors on sigma_alpha > 0, mu_beta and sigma_beta > 0     (the Stan version in networkscaleup)

alpha_i is the respondent's log gregariousness and beta_k the group's log prevalence, up to a common shift that
the likelihood cannot see. The known groups fix it, draw by draw:

    C = log( sum_{k known} exp(beta_k) / sum_{k known} N_k / N ),
    size_k = N exp(beta_k - C),  degree_i = exp(alpha_i + C).

omega_k - 1 measures how unevenly ties to group k are spread beyond what degree explains (barrier effects);
omega_k = 1 is the Poisson (random mixing) case.
Assumptions: no transmission error; the known groups are reported as accurately as the hidden ones (the scaling
transfers any recall bias of the known groups to the hidden ones).
Reference: Zheng, Salganik & Gelman (2006), "How many people do you know in prison?", JASA 101(474):409-423.
When it fails: with few known groups the scaling constant inherits their reporting errors; with small K the flat
prior on sigma_beta makes it weakly identified (harmless for sizes, which are scaled by C).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hiddenpop.mcmc.nuts import Density, Draws, quantity_row, uniform_interval
from hiddenpop.nsum.bayes.common import BayesData, Priors
from hiddenpop.nsum.bayes.diagnostics import simulate_in_blocks
from hiddenpop.nsum.bayes.maltiel import MaltielModel, logit


def build_overdispersed(known_index: np.ndarray, n_respondents: int, n_groups: int) -> Density:
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax.numpy as jnp
    from jax.scipy.special import gammaln, logsumexp
    from jax.scipy.stats import norm

    known_index = np.asarray(known_index)
    shapes = {
        "alpha": (n_respondents,), "beta": (n_groups,), "log_sigma_alpha": (), "mu_beta": (),
        "log_sigma_beta": (), "inv_omega": (n_groups,),
    }

    def unpack(z: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        sigma_alpha = jnp.exp(z["log_sigma_alpha"])
        sigma_beta = jnp.exp(z["log_sigma_beta"])
        # flat priors on sigma > 0: Jacobian of sigma = exp(log sigma)
        logp = z["log_sigma_alpha"] + z["log_sigma_beta"]
        alpha, beta = z["alpha"], z["beta"]
        logp += jnp.sum(norm.logpdf(alpha, 0.0, sigma_alpha)) + jnp.sum(norm.logpdf(beta, z["mu_beta"], sigma_beta))
        inv_omega, lj = uniform_interval(z["inv_omega"], 0.0, 1.0)
        logp += jnp.sum(lj)
        omega = 1.0 / inv_omega
        mean = jnp.exp(alpha[:, None] + beta[None, :])
        xi = mean / (omega - 1.0)
        y = data["y"]
        loglik = (
            gammaln(y + xi) - gammaln(xi) - gammaln(y + 1.0) - xi * jnp.log(omega)
            + y * (jnp.log1p(-inv_omega))
        )
        scale = logsumexp(beta[known_index]) - jnp.log(jnp.sum(data["known_prob"]))
        out = {
            "size_all": data["population"] * jnp.exp(beta - scale),
            "degree": jnp.exp(alpha + scale),
            "omega": omega,
            "sigma_alpha": sigma_alpha,
            "sigma_beta": sigma_beta,
            "scale": scale,
        }
        return out, logp + jnp.sum(loglik)

    return Density(shapes=shapes, log_density=lambda z, d: unpack(z, d)[1], constrain=lambda z, d: unpack(z, d)[0])


class OverdispersedModel(MaltielModel):
    """Zheng, Salganik & Gelman (2006) negative-binomial model; see the module docstring."""

    name = "overdispersed"
    method_label = "Bayesian NSUM"

    def __init__(self, priors: Priors | None = None, *, likelihood: str = "negative-binomial") -> None:
        self.priors = (priors or Priors()).validate()
        self.likelihood = "negative-binomial"

    def numpyro_model(self, data: BayesData) -> Density:
        return build_overdispersed(data.known_index, data.n_respondents, len(data.groups))

    def initial_values(self, data: BayesData) -> dict[str, np.ndarray]:
        degree = np.maximum(data.killworth_degrees(), 0.5)
        sizes = np.maximum(data.killworth_sizes(), 1.0)
        alpha = np.log(degree)
        beta = np.log(sizes / data.population)
        shift = alpha.mean()
        return {
            "alpha": alpha - shift, "beta": beta + shift, "log_sigma_alpha": np.log(max(alpha.std(), 0.1)),
            "mu_beta": (beta + shift).mean(), "log_sigma_beta": np.log(max(beta.std(), 0.1)),
            "inv_omega": np.full(len(data.groups), logit(0.5)),
        }

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.name, "likelihood": self.likelihood,
            "priors": {"alpha": "Normal(0, sigma_alpha)", "beta": "Normal(mu_beta, sigma_beta)",
                       "inv_omega": "U(0, 1)", "sigma_alpha, mu_beta, sigma_beta": "flat"},
            "scaling": "known groups (Zheng et al. 2006)",
        }

    def fixed_degree(self, data: BayesData) -> tuple[None, list[str]]:
        return None, []

    def add_sizes(self, data: BayesData, draws: Draws) -> None:
        if "size" not in draws.samples:
            draws.samples["size"] = draws.samples["size_all"][..., data.hidden_index]

    def parameter_rows(self, data: BayesData, samples: dict[str, np.ndarray], method: str) -> list[dict[str, Any]]:
        rows = [quantity_row(f"omega[{g}]", method, samples["omega"][..., k], parameter="omega")
                for k, g in enumerate(data.groups)]
        rows.append(quantity_row("sigma_alpha", method, samples["sigma_alpha"], parameter="sigma_alpha"))
        mean_degree = samples["degree"].mean(axis=-1)
        rows.append(quantity_row("mean_degree", method, mean_degree, parameter="mean_degree"))
        return rows

    def parameter_draws(self, data: BayesData, draws: Draws) -> dict[str, np.ndarray]:
        keep = {"size": draws.samples["size"], "omega": draws.samples["omega"],
                "sigma_alpha": draws.samples["sigma_alpha"], "degree": draws.samples["degree"]}
        # sigma_beta and the unscaled (alpha, beta) are not identified separately by design; not gated
        return keep

    def predictive_simulator(self, data: BayesData, draws: Draws, fixed_degree: Any, count: int):
        samples = draws.samples

        def simulate(rng: np.random.Generator) -> np.ndarray:
            total = draws.diverging.size
            pick = rng.choice(total, size=min(count, total), replace=False)
            degree = samples["degree"].reshape(total, -1)[pick][:, :, None]
            prob = (samples["size_all"].reshape(total, -1)[pick] / data.population)[:, None, :]
            omega = samples["omega"].reshape(total, -1)[pick][:, None, :]
            scale = omega - 1.0
            shape = degree * prob / scale

            def block(generator: np.random.Generator, rows: np.ndarray) -> np.ndarray:
                return generator.poisson(generator.gamma(shape[rows], scale[rows]))

            return simulate_in_blocks(rng, len(pick), block)

        return simulate
