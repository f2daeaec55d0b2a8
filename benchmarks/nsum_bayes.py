"""Benchmark: the combined (barrier + transmission) model at Study 2's size.

Simulated survey with the Study 2 shape (3,600 respondents x 19 groups: 11 occupations + 4 child age bands known,
4 hidden groups), barrier effects (rho = 0.02) and transmission tau = 0.5; the model gets a Beta(10, 10) tau
prior. Prints wall time, minimum bulk ESS, ESS per second and the largest R-hat for 4 chains x 1,000 draws
(1,000 warmup), and the per-iteration cost of the same model with respondent-level latent probabilities q_ik
(the NSUM package's formulation, 3,600 x 19 extra parameters) against the marginalised beta-binomial.

    .venv/bin/python benchmarks/nsum_bayes.py [--chains 4] [--draws 1000] [--warmup 1000] [--skip-full]

Run it on an otherwise idle machine: timings on shared cores are pessimistic.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--skip-full", action="store_true", help="only the per-iteration comparison")
    args = parser.parse_args()

    import numpyro

    numpyro.set_host_device_count(min(args.chains, os.cpu_count() or 1))
    import jax
    import numpy as np

    from hiddenpop.nsum.bayes import CombinedModel, Priors
    from hiddenpop.nsum.bayes._common import from_ard, sample_nuts
    from hiddenpop.nsum.bayes._maltiel import model_arrays
    from hiddenpop.simulate.ard import simulate_study2_ard

    sim = simulate_study2_ard(seed=args.seed, barrier_rho=0.02, transmission=0.5)
    data = from_ard(sim.ard)
    print(f"survey: {data.n_respondents} respondents x {len(data.groups)} groups "
          f"({len(data.hidden_groups)} hidden); devices: {jax.local_device_count()} CPU; cores: {os.cpu_count()}")
    model = CombinedModel(Priors(tau=(10.0, 10.0)))

    if not args.skip_full:
        start = time.perf_counter()
        fit = model.fit(data, chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed,
                        sums={"victims": ["child_nonlive", "child_livestream"],
                              "traffickers": ["adult_nonlive", "adult_livestream"]},
                        ratios={"victims_per_trafficker": ("victims", "traffickers")}, quiet=False)
        wall = time.perf_counter() - start
        d = fit.diagnostics
        print(f"combined model, {args.chains} chains x {args.draws} draws (+{args.warmup} warmup)")
        print(f"  wall time (incl. compile and summaries): {wall:.1f} s; sampling incl. compile: "
              f"{d['seconds_sampling']:.1f} s")
        print(f"  min bulk ESS {d['min_ess_bulk']:.0f} ({d['min_ess_bulk_parameter']}); min tail ESS "
              f"{d['min_ess_tail']:.0f}; ESS/s (min bulk / wall) {d['min_ess_bulk'] / wall:.1f}")
        print(f"  max R-hat {d['max_rhat']:.4f} ({d['max_rhat_parameter']}); divergences {d['divergences']}; "
              f"gates passed: {d['passed']}")
        truth = sim.truth.hidden_sizes
        for group in data.hidden_groups:
            row = fit.get(group)
            print(f"  {group}: truth {truth[group]:,.0f}; median {row['estimate']:,.0f} "
                  f"[{row['lower']:,.0f}, {row['upper']:,.0f}]")
        ratio = fit.get("victims_per_trafficker")
        print(f"  victims per trafficker: {ratio['estimate']:.2f} [{ratio['lower']:.2f}, {ratio['upper']:.2f}]")

    # ---- per-iteration cost: marginalised vs respondent-level latent probabilities
    arrays = model_arrays(data, model.priors)
    marginal = model.numpyro_model(data)
    latent = _latent_density(data, marginal)
    for name, density, inits in (
        ("marginalised (beta-binomial)", marginal, model.initial_values(data)),
        ("respondent-level latents q_ik", latent, {**model.initial_values(data),
                                                   "q_logit": np.full((data.n_respondents, len(data.groups)), -4.0)}),
    ):
        short = sample_nuts(density, arrays, chains=1, warmup=30, draws=30, seed=1, init_values=inits)
        steps = short.num_steps.sum()
        with jax.enable_x64(True):
            device_arrays = {k: jax.numpy.asarray(v) for k, v in arrays.items()}
            grad = jax.jit(jax.grad(lambda z, dens=density, arr=device_arrays: dens.log_density(z, arr)))
            z0 = {k: jax.numpy.zeros(s) for k, s in density.shapes.items()}
            jax.block_until_ready(grad(z0))
            t0 = time.perf_counter()
            for _ in range(20):
                out = grad(z0)
            jax.block_until_ready(out)
            per_grad = (time.perf_counter() - t0) / 20
        print(f"{name}: {sum(int(np.prod(s)) for s in density.shapes.values()):,} parameters; "
              f"gradient {per_grad * 1e3:.2f} ms; short run (30+30 iterations, incl. compile) "
              f"{short.seconds:.1f} s, mean {steps / 60:.0f} leapfrog steps per iteration "
              f"-> about {per_grad * steps / 60 * 1e3:.1f} ms per iteration after compile")
    print("(timings on shared CPU cores are pessimistic)", file=sys.stderr)


def _latent_density(data, marginal):
    """The combined model with explicit q_ik (logit scale) instead of the beta-binomial marginal."""
    import jax.numpy as jnp
    from jax.nn import log_sigmoid, sigmoid
    from jax.scipy.special import betaln, gammaln
    from jax.scipy.stats import beta as beta_dist
    from jax.scipy.stats import norm

    from hiddenpop.nsum.bayes._common import Density, uniform_interval

    known_index, hidden_index = data.known_index, data.hidden_index
    n_groups = len(data.groups)
    shapes = {**marginal.shapes, "q_logit": (data.n_respondents, n_groups)}

    def log_density(z, d):
        logp = 0.0
        mu, lj = uniform_interval(z["mu"], d["mu_lo"], d["mu_hi"])
        logp += lj
        sigma, lj = uniform_interval(z["sigma"], d["sigma_lo"], d["sigma_hi"])
        logp += lj
        degree = d["ymax"] + jnp.exp(z["log_degree_raw"])
        log_d = jnp.log(degree)
        logp += jnp.sum(norm.logpdf(log_d, mu, sigma) - log_d + z["log_degree_raw"])
        log_hi, log_lo = d["log_size_hi"], d["log_size_lo"]
        log_w = log_hi - jnp.exp(z["log_effective_size_raw"])
        logp += jnp.sum(z["log_effective_size_raw"])
        lower = jnp.exp(log_w - log_hi)
        upper = jnp.minimum(1.0, jnp.exp(log_w - log_lo))
        tau = lower + (upper - lower) * sigmoid(z["tau_raw"])
        logp += jnp.sum(beta_dist.logpdf(tau, d["tau_a"], d["tau_b"]) + jnp.log(upper - lower)
                        + log_sigmoid(z["tau_raw"]) + log_sigmoid(-z["tau_raw"]))
        mean = jnp.zeros(n_groups).at[known_index].set(d["known_prob"]).at[hidden_index].set(
            jnp.exp(log_w) / d["population"])
        rho, lj = uniform_interval(z["rho"], d["rho_lo"], d["rho_hi"])
        logp += jnp.sum(lj)
        r = 1.0 / rho - 1.0
        a, b = mean * r, (1.0 - mean) * r
        q = sigmoid(z["q_logit"])
        log_q, log_1q = log_sigmoid(z["q_logit"]), log_sigmoid(-z["q_logit"])
        logp += jnp.sum((a - 1) * log_q + (b - 1) * log_1q - betaln(a, b) + log_q + log_1q)
        y = d["y"]
        dd = degree[:, None]
        loglik = (gammaln(dd + 1.0) - gammaln(y + 1.0) - gammaln(dd - y + 1.0) + y * jnp.log(q)
                  + (dd - y) * jnp.log1p(-q))
        return logp + jnp.sum(loglik)

    return Density(shapes=shapes, log_density=log_density, constrain=lambda z, d: {})


if __name__ == "__main__":
    main()
