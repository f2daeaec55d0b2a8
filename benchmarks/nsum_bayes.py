"""Benchmark: the combined (barrier + transmission) model at Study 2's size.

Simulated survey with the Study 2 shape (3,600 respondents x 19 groups: 11 occupations + 4 child age bands known,
4 hidden groups), barrier effects (rho = 0.02) and transmission tau = 0.5; the model gets a Beta(10, 10) tau
prior. Prints wall time, minimum bulk ESS, ESS per second and the largest R-hat for 4 chains x 1,000 draws
(the default Gibbs sampler after 200 burn-in iterations; the NUTS samplers after 500 warmup, trees capped at depth 4
during warmup),
the fit's CPU time split into sampling and summaries, and the per-iteration cost of the same model with
respondent-level latent probabilities q_ik (the NSUM package's formulation, 3,600 x 19 extra parameters) against
the marginalised beta-binomial.

    .venv/bin/python benchmarks/nsum_bayes.py [--chains 4] [--draws 1000] [--warmup N] [--skip-full] [--fit-only]
        [--sampler gibbs|split|joint]   (compare by alternating runs: CPU time and ESS per CPU-second are printed)
        [--compilation-cache DIR]   (run twice with the same DIR to see a warm start, as the CLI's second run)

Run it on an otherwise idle machine: timings on shared cores are pessimistic.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import replace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up iterations: default 500 for the NUTS samplers (adaptation) and 200 for gibbs "
                        "(plain burn-in: nothing to adapt)")
    parser.add_argument("--likelihood", choices=["poisson", "binomial"], default="poisson")
    parser.add_argument("--target-accept", type=float, default=0.65,
                        help="NUTS target acceptance (0.65: 15 leapfrog steps per draw here instead of 31 at 0.8)")
    parser.add_argument("--max-tree-depth", type=int, default=6,
                        help="cap on the NUTS tree (63 steps; never reached here, but the sampler's per-step "
                        "bookkeeping grows with it)")
    parser.add_argument("--warmup-max-tree-depth", type=int, default=4,
                        help="cap on the tree during warmup only (15 steps; warmup otherwise builds 30-60-step trees "
                        "while the mass matrix is still the identity)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--skip-full", action="store_true", help="only the per-iteration comparison")
    parser.add_argument("--fit-only", action="store_true", help="skip the per-iteration comparison")
    parser.add_argument("--sampler", choices=["gibbs", "split", "joint"], default="gibbs",
                        help="gibbs (the model's default): each log degree and each group's parameters are redrawn "
                        "from their full conditionals in turn, no NUTS; split (the default before): NUTS moves the "
                        "global parameters while each log degree is redrawn from its full conditional between "
                        "transitions; joint: NUTS moves all 3,629 parameters together")
    parser.add_argument("--compilation-cache", metavar="DIR",
                        help="keep compiled samplers in DIR (the CLI keeps them in ~/.cache/hiddenpop/jax); default: "
                        "none, so every run compiles")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = 200 if args.sampler == "gibbs" else 500

    import numpyro

    numpyro.set_host_device_count(args.chains)  # one device per chain, as the CLI (0.52 vs 0.58 ms per chain-step)
    import jax
    import numpy as np

    from hiddenpop.mcmc.nuts import enable_compilation_cache
    from hiddenpop.nsum.bayes import CombinedModel, Priors
    from hiddenpop.nsum.bayes.common import from_ard
    from hiddenpop.nsum.bayes.maltiel import model_arrays
    from hiddenpop.simulate.ard import simulate_national_ard

    if args.compilation_cache:
        print(f"compilation cache: {enable_compilation_cache(args.compilation_cache)}")
    sim = simulate_national_ard(seed=args.seed, barrier_rho=0.02, transmission=0.5)
    data = from_ard(sim.ard)
    print(f"survey: {data.n_respondents} respondents x {len(data.groups)} groups "
          f"({len(data.hidden_groups)} hidden); devices: {jax.local_device_count()} CPU; cores: {os.cpu_count()}")
    model = CombinedModel(Priors(tau=(10.0, 10.0)), likelihood=args.likelihood)
    if args.sampler != "gibbs":
        gibbs_density = model.numpyro_model
        model.numpyro_model = lambda survey: replace(
            gibbs_density(survey), sweep=None, **({"conditional": None} if args.sampler == "joint" else {}))

    if not args.skip_full:
        cpu_before = _cpu_times()
        process_before = _process_cpu()
        start = time.perf_counter()
        sampled: dict[str, float] = {}

        def mark_sampled(*_):
            # called by fit right after sampling: splits the CPU time into sampling and summaries
            sampled["cpu"], sampled["wall"] = _process_cpu(), time.perf_counter()
            return {}

        fit = model.fit(data, chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed,
                        target_accept=args.target_accept, max_tree_depth=args.max_tree_depth,
                        warmup_max_tree_depth=args.warmup_max_tree_depth,
                        sums={"victims": ["child_nonlive", "child_livestream"],
                              "traffickers": ["adult_nonlive", "adult_livestream"]},
                        ratios={"victims_per_trafficker": ("victims", "traffickers")}, quiet=False,
                        post_process=mark_sampled)
        wall = time.perf_counter() - start
        process_cpu = _process_cpu() - process_before
        cpu_after = _cpu_times()
        d = fit.diagnostics
        nuts = "" if args.sampler == "gibbs" else (f", target_accept {args.target_accept}, max_tree_depth "
                                                   f"{args.max_tree_depth} (warmup {args.warmup_max_tree_depth})")
        print(f"combined model ({args.likelihood}, {args.sampler} sampler), {args.chains} chains x {args.draws} draws "
              f"(+{args.warmup} {'burn-in' if args.sampler == 'gibbs' else 'warmup'}){nuts}")
        print(f"  wall time (incl. compile and summaries): {wall:.1f} s; sampling incl. compile: "
              f"{fit.extras['draws'].seconds:.1f} s")
        if cpu_before and cpu_after:
            used = {k: cpu_after[k] - cpu_before[k] for k in cpu_before}
            total = sum(used.values()) or 1
            print(f"  machine during the fit: {100 * used['steal'] / total:.0f}% of CPU time stolen by the hypervisor, "
                  f"{100 * used['idle'] / total:.0f}% idle (compilation and parts of the summaries use one core)")
        print(f"  min bulk ESS {d['min_ess_bulk']:.0f} ({d['min_ess_bulk_parameter']}); min tail ESS "
              f"{d['min_ess_tail']:.0f}; ESS/s (min bulk / wall) {d['min_ess_bulk'] / wall:.1f}")
        print(f"  CPU time of the fit (user + system, all threads, incl. compile and summaries): {process_cpu:.1f} s; "
              f"min bulk ESS per CPU-second {d['min_ess_bulk'] / process_cpu:.1f}; load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"  of which sampling (incl. compile, the draws' transfer and constraining): {sampled['cpu'] - process_before:.1f} s "
              f"CPU, {sampled['wall'] - start:.1f} s wall; gates, tables and predictive checks: "
              f"{process_cpu - (sampled['cpu'] - process_before):.1f} s CPU, {start + wall - sampled['wall']:.1f} s "
              "wall")
        print(f"  max R-hat {d['max_rhat']:.4f} ({d['max_rhat_parameter']}); divergences {d['divergences']}; "
              f"gates passed: {d['passed']}")
        truth = sim.truth.hidden_sizes
        for group in data.hidden_groups:
            row = fit.get(group)
            print(f"  {group}: truth {truth[group]:,.0f}; median {row['estimate']:,.0f} "
                  f"[{row['lower']:,.0f}, {row['upper']:,.0f}]")
        ratio = fit.get("victims_per_trafficker")
        print(f"  victims per trafficker: {ratio['estimate']:.2f} [{ratio['lower']:.2f}, {ratio['upper']:.2f}]")
        # the Gibbs sampler takes no leapfrog steps
        steps_measured = None if args.sampler == "gibbs" else float(fit.extras["draws"].num_steps.mean())
        if steps_measured is not None:
            print(f"  mean leapfrog steps per iteration: {steps_measured:.1f}")

    if args.fit_only:
        return
    # ---- per-iteration cost: marginalised vs respondent-level latent probabilities / rate multipliers
    steps_per_iteration = steps_measured if not args.skip_full else None
    arrays = model_arrays(data, model.priors)
    marginal = model.numpyro_model(data)
    latent = _latent_density(data, marginal, args.likelihood)
    binomial_model = CombinedModel(model.priors, likelihood="binomial")
    rows = [
        (f"marginalised ({args.likelihood})", marginal, arrays),
        (f"respondent-level latents ({args.likelihood})", latent, arrays),
    ]
    if args.likelihood == "poisson":
        rows.append(("marginalised beta-binomial (likelihood=binomial)", binomial_model.numpyro_model(data),
                     model_arrays(data, binomial_model.priors)))
    print("cost per gradient evaluation (value and gradient of the log posterior, 64-bit, one core):")
    for name, density, model_data in rows:
        per_grad = _gradient_seconds(jax, density, model_data)
        line = (f"  {name}: {sum(int(np.prod(s)) for s in density.shapes.values()):,} parameters; "
                f"{per_grad * 1e3:.2f} ms")
        if steps_per_iteration:
            line += (f"; x {steps_per_iteration:.0f} leapfrog steps = {per_grad * steps_per_iteration * 1e3:.0f} ms "
                     "per iteration per chain")
        print(line)
    if steps_per_iteration:
        print("  (the latent formulations are charged the marginalised model's measured steps per iteration: a lower "
              "bound, since 68,400 more parameters need smaller steps)")
    print("(timings on shared CPU cores are pessimistic)", file=sys.stderr)


def _process_cpu() -> float:
    """CPU seconds (user + system) used so far by this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_times() -> dict[str, int] | None:
    """Machine-wide CPU time counters from /proc/stat (Linux), to report how much the hypervisor took: on shared
    virtual machines stolen time, not the code, explains most run-to-run variation."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:9]
    except OSError:
        return None
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, (int(v) for v in fields), strict=True))


def _gradient_seconds(jax, density, arrays, repeats: int = 30) -> float:
    with jax.enable_x64(True):
        device_arrays = {k: jax.numpy.asarray(v) for k, v in arrays.items()}
        grad = jax.jit(jax.value_and_grad(lambda z: density.log_density(z, device_arrays)))
        z0 = {k: jax.numpy.full(s, 0.1) for k, s in density.shapes.items()}
        jax.block_until_ready(grad(z0))
        start = time.perf_counter()
        for _ in range(repeats):
            out = grad(z0)
        jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats


def _latent_density(data, marginal, likelihood):
    """The combined model with a latent per respondent and group instead of the analytic marginal: q_ik (logit
    scale, Beta prior) under the binomial, or a rate multiplier g_ik (log scale, Gamma prior) under the Poisson."""
    import jax.numpy as jnp
    from jax.nn import log_sigmoid, sigmoid
    from jax.scipy.special import betaln, gammaln
    from jax.scipy.stats import beta as beta_dist
    from jax.scipy.stats import norm

    from hiddenpop.mcmc.nuts import Density, uniform_interval

    known_index, hidden_index = data.known_index, data.hidden_index
    n_groups = len(data.groups)
    shapes = {**marginal.shapes, "q_logit": (data.n_respondents, n_groups)}

    def log_density(z, d):
        logp = 0.0
        mu, lj = uniform_interval(z["mu"], d["mu_lo"], d["mu_hi"])
        logp += lj
        sigma, lj = uniform_interval(z["sigma"], d["sigma_lo"], d["sigma_hi"])
        logp += lj
        if likelihood == "poisson":  # centred log degree, as the marginalised model
            log_d = z["log_degree_raw"]
            degree = jnp.exp(log_d)
            logp += jnp.sum(norm.logpdf(log_d, mu, sigma))
        else:
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
        y = d["y"]
        dd = degree[:, None]
        if likelihood == "poisson":
            # g_ik ~ Gamma(shape a_k, rate r_k) on the log scale; y_ik ~ Poisson(d_i g_ik)
            a = mean * r
            u = z["q_logit"]
            logp += jnp.sum(a * jnp.log(r) - gammaln(a) + a * u - r * jnp.exp(u))
            rate = dd * jnp.exp(u)
            return logp + jnp.sum(y * jnp.log(rate) - rate - gammaln(y + 1.0))
        a, b = mean * r, (1.0 - mean) * r
        q = sigmoid(z["q_logit"])
        log_q, log_1q = log_sigmoid(z["q_logit"]), log_sigmoid(-z["q_logit"])
        logp += jnp.sum((a - 1) * log_q + (b - 1) * log_1q - betaln(a, b) + log_q + log_1q)
        loglik = (gammaln(dd + 1.0) - gammaln(y + 1.0) - gammaln(dd - y + 1.0) + y * jnp.log(q)
                  + (dd - y) * jnp.log1p(-q))
        return logp + jnp.sum(loglik)

    return Density(shapes=shapes, log_density=log_density, constrain=lambda z, d: {})


if __name__ == "__main__":
    main()
