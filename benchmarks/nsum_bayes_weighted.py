"""Survey-weighted Bayesian NSUM: coverage under informative sampling, and the cost of the design adjustment.

    python benchmarks/nsum_bayes_weighted.py coverage --model degree --replicates 100
    python benchmarks/nsum_bayes_weighted.py timing

``coverage``: surveys from :func:`hiddenpop.simulate.informative.informative_sample` (2 strata x 20 areas x 10
people; areas drawn with probability proportional to 0.5 + their hidden-tie intensity), each fitted unweighted and
weighted in one batched NUTS call, then the weighted fits adjusted (Williams & Savitsky 2021). Prints the 95%
interval coverage of the true hidden size, the mean log error of the posterior median and the mean interval width
on the log scale for the three, the worst R-hat, and the times. The suite runs the basic model with 100 replicates
(tests/nsum/bayes/test_weighted.py); this script also runs the random-degree models.

``timing``: the adjustment alone (scores of every respondent over 200 latent-degree draws, J, the sandwich, the
draws mapped back) for the combined model at Study 2's size (3,600 respondents x 19 groups), on synthetic draws
around the starting values: its cost does not depend on the draws' quality.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

KNOWN = {"k1": 200_000.0, "k2": 100_000.0, "k3": 50_000.0}
POPULATION = 1e7
HIDDEN = 50_000.0


def coverage(model_name: str, replicates: int, seed: int, chains: int, draws: int) -> None:
    import numpy as np

    from hiddenpop.mcmc.nuts import quantity_row, sample_nuts
    from hiddenpop.nsum.bayes import MODELS, prepare_data
    from hiddenpop.nsum.bayes.maltiel import LATENT_PARAMETERS, model_arrays, stack_arrays
    from hiddenpop.nsum.bayes.weighted import adjust_draws, survey_design
    from hiddenpop.simulate.informative import informative_sample

    start = time.perf_counter()
    samples = [informative_sample(KNOWN, HIDDEN, POPULATION, seed=seed + r) for r in range(replicates)]
    datasets = [prepare_data(s.counts, KNOWN, POPULATION, groups=s.groups) for s in samples]
    designs = [survey_design(d.n_respondents, s.weights, strata=s.strata, psu=s.psu)
               for s, d in zip(samples, datasets, strict=True)]
    model = MODELS[model_name](likelihood="poisson")
    if model_name != "basic":
        # one compiled density for every replicate: the parameterisation "auto" picks for the first survey
        choice = "centred" if model.centred(datasets[0]) else "noncentred"
        model = MODELS[model_name](likelihood="poisson", parameterisation=choice)
    arrays, inits = [], []
    for weighted in (False, True):
        for data, design in zip(datasets, designs, strict=True):
            fixed, _ = model.fixed_degree(data)
            arrays.append(model_arrays(data, model.priors, fixed_degree=fixed,
                                       weights=design.weights if weighted else None))
            inits.append(model.initial_values(data))
    density = model.numpyro_model(datasets[0])
    init = {k: np.stack([np.asarray(i[k], dtype=float) for i in inits]) for k in inits[0]}
    fits = sample_nuts(density, stack_arrays(arrays), chains=chains, warmup=300, draws=draws, seed=3, batched=True,
                       init_values=init, keep=tuple(n for n in density.shapes if n not in LATENT_PARAMETERS),
                       max_tree_depth=6)
    sampled = time.perf_counter()
    results = {name: {"covered": [], "log_error": [], "log_width": []}
               for name in ("unweighted", "weighted", "adjusted")}
    rhats = []

    def record(name, fit):
        row = quantity_row("hidden", "sim", fit.samples["size"][..., 0])
        results[name]["covered"].append(row["lower"] <= HIDDEN <= row["upper"])
        results[name]["log_error"].append(np.log(row["estimate"] / HIDDEN))
        results[name]["log_width"].append(np.log(row["upper"] / row["lower"]))
        rhats.append(row["rhat"])

    ratios = []
    for r, (data, design) in enumerate(zip(datasets, designs, strict=True)):
        record("unweighted", fits[r])
        fit = fits[replicates + r]
        record("weighted", fit)
        extra = adjust_draws(model, design, data, fit, model.fixed_degree(data)[0])
        ratios.append(extra["tables"]["design_adjustment"].set_index("parameter")["sd_ratio"])
        record("adjusted", fit)
    adjusted = time.perf_counter()
    print(f"model {model_name}, {replicates} surveys of {datasets[0].n_respondents} respondents, {chains} chains x "
          f"{draws} draws, seed {seed}")
    for name, values in results.items():
        print(f"  {name:10s} coverage {np.mean(values['covered']):.2f}  mean log error "
              f"{np.mean(values['log_error']):+.3f}  mean log width {np.mean(values['log_width']):.3f}")
    ratio = np.mean(ratios, axis=0) if len(ratios) else []
    print("  mean sd ratio (adjusted / pseudo-posterior):",
          ", ".join(f"{k} {v:.2f}" for k, v in zip(ratios[0].index, ratio, strict=True)))
    print(f"  max R-hat {max(rhats):.4f}; sampling {sampled - start:.0f} s, adjustment {adjusted - sampled:.0f} s "
          f"({(adjusted - sampled) / replicates:.2f} s per survey)")


def timing() -> None:
    import numpy as np

    from hiddenpop.mcmc.nuts import Draws
    from hiddenpop.nsum.bayes import CombinedModel, Priors
    from hiddenpop.nsum.bayes.common import from_ard
    from hiddenpop.nsum.bayes.weighted import adjust_draws, ard_design
    from hiddenpop.simulate.ard import simulate_national_ard

    sim = simulate_national_ard(seed=1, barrier_rho=0.02, transmission=0.5)
    data = from_ard(sim.ard)
    design = ard_design(sim.ard)
    model = CombinedModel(Priors(tau=(10.0, 10.0)))
    rng = np.random.default_rng(0)
    chains, per_chain = 4, 1000
    start = model.initial_values(data)
    unconstrained = {k: np.asarray(v, dtype=float) + 0.01 * rng.normal(size=(chains, per_chain, *np.shape(v)))
                     for k, v in start.items() if k != "log_degree_raw"}
    degree = np.maximum(data.killworth_degrees(), 1.0) * rng.lognormal(0, 0.1, (chains, per_chain, data.n_respondents))
    draws = Draws(samples={"degree": degree}, diverging=np.zeros((chains, per_chain), bool),
                  energy=np.zeros((chains, per_chain)), num_steps=np.ones((chains, per_chain)), seconds=0.0,
                  unconstrained=unconstrained)
    for attempt in ("first (compiles)", "second"):
        began = time.perf_counter()
        extra = adjust_draws(model, design, data, draws, None)
        print(f"combined model, {data.n_respondents} respondents x {len(data.groups)} groups, {design.n_psu} PSUs in "
              f"{design.n_strata} strata, {chains * per_chain} draws, {len(extra['tables']['design_adjustment'])} "
              f"adjusted parameters: {attempt} adjustment {time.perf_counter() - began:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cov = sub.add_parser("coverage")
    cov.add_argument("--model", default="degree", choices=["basic", "degree", "barrier"])
    cov.add_argument("--replicates", type=int, default=100)
    cov.add_argument("--seed", type=int, default=100)
    cov.add_argument("--chains", type=int, default=4)
    cov.add_argument("--draws", type=int, default=1000)
    sub.add_parser("timing")
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    import numpyro

    numpyro.set_host_device_count(min(os.cpu_count() or 1, 4))
    if args.what == "coverage":
        coverage(args.model, args.replicates, args.seed, args.chains, args.draws)
    else:
        timing()


if __name__ == "__main__":
    main()
