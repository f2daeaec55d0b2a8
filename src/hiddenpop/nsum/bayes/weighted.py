"""Survey-weighted Bayesian network scale-up: the weighted pseudo-posterior and its design-based adjustment.

Pseudo-posterior (Savitsky & Toth 2016). Respondent i's log-likelihood terms, and the log density of its latent
degree, are multiplied by its normalised weight w~_i = n w_i / sum_j w_j (the weights rescaled to sum to the
sample size n), so the log pseudo-posterior is

    log p(theta) + sum_i w~_i [ log p(y_i | d_i, theta) + log p(log d_i | mu, sigma) ]   (+ Jacobians, unweighted)

(:func:`hiddenpop.nsum.bayes.maltiel.model_arrays` builds the weighted sufficient statistics). Its mode and mean
estimate the population (census) parameters under informative sampling, but its spread is not a valid measure
of uncertainty: the weights are plugged in as if they were frequencies, and clustering is ignored.

Adjustment (Williams & Savitsky 2021). For the global parameters theta (unconstrained scale: log sizes or log
effective sizes, mu, sigma, barrier dispersions rho), the pseudo-posterior covariance Sigma estimates H^-1, the
inverse of the pseudo-posterior precision. The design-based variance of the weighted score is

    J = sum_h n_h / (n_h - 1) sum_c (s_hc - sbar_h)(s_hc - sbar_h)^T,   s_hc = sum_{i in PSU c of stratum h} w~_i g_i,

with g_i the gradient of respondent i's log-likelihood (with its latent-degree density) at the posterior mean
of theta: the with-replacement (ultimate cluster) estimator that the project's rescaled bootstrap reproduces
for totals (:mod:`hiddenpop.design.replicate`). The sandwich V = H^-1 J H^-1 = Sigma J Sigma is the design-based
covariance of the pseudo-posterior mean. Each draw is mapped to

    theta_adj = thetabar + (theta - thetabar) R2^-1 R1,   R1^T R1 = V,  R2^T R2 = Sigma   (draws as rows),

so the adjusted draws keep their mean and have covariance exactly V. R1 and R2 are the symmetric square roots
(from eigendecompositions; any square roots match the covariance, the symmetric ones add no arbitrary rotation).
The adjusted draws are mapped back to sizes, mu, sigma and rho.

Latent degrees. The models with random degrees carry one latent log degree per respondent; its log density is
weighted with the respondent (the weight-exponentiated random-effect density of Savitsky & Williams 2022), so the
respondent's whole contribution p(y_i, d_i | theta)^w~_i is weighted. Its score for the globals is the Fisher
identity's average of the complete-data gradient over the latent's pseudo-posterior draws (up to
``max_latent_draws`` of them, evenly spaced), holding theta at its mean. The degrees themselves are reported as
drawn (not adjusted): they are per-respondent quantities with no design-based replication.

Transmission rates tau_k are identified only by their prior (the data inform tau_k N_k): their score is zero, so
the sandwich would shrink their spread to nothing. They are left out of the adjustment and keep their prior-driven
draws; sizes are N_k = (adjusted effective size) / tau_k.

Assumptions: PSUs drawn independently within strata (with replacement or a small sampling fraction; no
finite-population correction); the weights are (calibrated) inverse inclusion probabilities; the sample is large
enough for the pseudo-posterior to be close to normal in theta (the adjustment is asymptotic).
Fails when: a stratum has a single PSU (its variance cannot be estimated; it contributes nothing, a warning says
so); there are fewer PSU degrees of freedom (PSUs minus strata) than adjusted parameters (J is then singular and
some directions collapse: warned); a few extreme weights dominate (the pseudo-posterior and J rest on those
respondents: the Kish effective sample size is reported).

References: Savitsky, T. D. & Toth, D. (2016), "Bayesian estimation under informative sampling", Electronic
Journal of Statistics 10(1):1677-1708. Williams, M. R. & Savitsky, T. D. (2021), "Uncertainty estimation for
pseudo-Bayesian inference under complex sampling", International Statistical Review 89(1):72-107. Savitsky, T. D.
& Williams, M. R. (2022), "Pseudo Bayesian mixed models under informative sampling", Journal of Official
Statistics 38(3):901-928.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from hiddenpop.design.replicate import rescaled_bootstrap
from hiddenpop.errors import ConfigError
from hiddenpop.mcmc.nuts import Draws
from hiddenpop.nsum.bayes.common import BayesData
from hiddenpop.nsum.bayes.maltiel import (
    MaltielModel,
    build_model,
    model_arrays,
    stack_arrays,
)
from hiddenpop.results import Estimates

__all__ = ["PRIOR_ONLY_PARAMETERS", "SurveyDesign", "ard_design", "design_covariance", "fit_weighted", "respondent_scores",
           "sandwich_adjust", "survey_design"]

#: Unconstrained parameters the data do not inform (their score is zero): left out of the adjustment.
PRIOR_ONLY_PARAMETERS = ("tau_raw",)
#: respondents per compiled batch of the score computation (bounds memory at survey scale)
SCORE_BLOCK = 256


@dataclass(frozen=True)
class SurveyDesign:
    """Normalised weights (summing to n) and the PSU structure of a survey, as the adjustment needs them."""

    weights: np.ndarray
    psu_index: np.ndarray
    stratum_of_psu: np.ndarray
    weighted: bool
    clustered: bool
    stratified: bool
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.weights)

    @property
    def n_psu(self) -> int:
        return len(self.stratum_of_psu)

    @property
    def n_strata(self) -> int:
        return len(np.unique(self.stratum_of_psu))

    @property
    def effective_size(self) -> float:
        """Kish's effective sample size n / deff_w = (sum w)^2 / sum w^2."""
        return float(self.weights.sum() ** 2 / np.sum(self.weights ** 2))

    def describe(self) -> dict[str, Any]:
        return {"weighted": self.weighted, "strata": self.n_strata if self.stratified else None,
                "psu": self.n_psu if self.clustered else None, "respondents": self.n,
                "kish_effective_size": round(self.effective_size, 1)}


#: The models whose likelihood takes survey weights (the Maltiel et al. family), and those that refuse them.
WEIGHTED_MODELS = ("basic", "degree", "barrier", "transmission", "combined")
WITHOUT_WEIGHTS = ("overdispersed", "correlated", "uncorrelated")

def survey_design(n: int, weights: Any = None, *, strata: Any = None, psu: Any = None) -> SurveyDesign:
    """The design of ``n`` respondents: weights (ones when ``None``) rescaled to sum to n, and the (stratum, PSU)
    pairs (each respondent its own PSU without ``psu``, one stratum without ``strata``)."""
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise ConfigError(f"the survey weights must be {n} numbers, one per respondent, got shape {w.shape}")
        bad = ~np.isfinite(w) | (w <= 0)
        if bad.any():
            raise ConfigError(f"survey weight of respondent {int(np.flatnonzero(bad)[0]) + 1} is not a positive "
                              f"number ({int(bad.sum())} such weights); fix or remove them before a weighted fit")
    for name, labels in (("strata", strata), ("psu", psu)):
        if labels is not None and len(labels) != n:
            raise ConfigError(f"the {name} labels must be {n}, one per respondent, got {len(labels)}")
    # the (stratum, PSU) nesting and the single-PSU-stratum warning are the rescaled bootstrap's own
    structure = rescaled_bootstrap(n, strata=strata, psu=psu, replicates=1, seed=0)
    return SurveyDesign(weights=w * (n / w.sum()), psu_index=structure.psu_index,
                        stratum_of_psu=structure.stratum_of_psu, weighted=weights is not None,
                        clustered=psu is not None, stratified=strata is not None,
                        warnings=list(structure.warnings), notes=list(structure.notes))


def ard_design(ard: Any) -> SurveyDesign | None:
    """The design an ARD was read with (its weights, strata and PSU columns), or None when it has none (or when
    ``ard`` is a counts table or :class:`BayesData`, which carry no design)."""
    if isinstance(ard, BayesData | pd.DataFrame | np.ndarray):
        return None
    weights, strata, psu = (getattr(ard, name, None) for name in ("weights", "strata", "psu"))
    if weights is None and strata is None and psu is None:
        return None
    return survey_design(int(ard.n), weights, strata=strata, psu=psu)


def design_covariance(scores: np.ndarray, design: SurveyDesign) -> np.ndarray:
    """J: the with-replacement design covariance of the weighted score total sum_i w~_i g_i, from the per-PSU totals
    within strata (``scores`` holds g_i, n x P). Strata with one PSU contribute nothing."""
    scores = np.asarray(scores, dtype=float)
    weighted = design.weights[:, None] * scores
    totals = np.zeros((design.n_psu, scores.shape[1]))
    np.add.at(totals, design.psu_index, weighted)
    covariance = np.zeros((scores.shape[1], scores.shape[1]))
    for h in np.unique(design.stratum_of_psu):
        members = totals[design.stratum_of_psu == h]
        if len(members) < 2:
            continue
        deviation = members - members.mean(axis=0)
        covariance += len(members) / (len(members) - 1) * deviation.T @ deviation
    return covariance


def _symmetric_root(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def sandwich_adjust(draws: np.ndarray, score_covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Williams & Savitsky's adjustment of draws (S x P, unconstrained): returns the adjusted draws, the
    pseudo-posterior covariance Sigma (= H^-1) and the target V = Sigma J Sigma, which the adjusted draws match."""
    draws = np.asarray(draws, dtype=float)
    mean = draws.mean(axis=0)
    sigma = np.atleast_2d(np.cov(draws, rowvar=False))
    target = sigma @ score_covariance @ sigma
    target = (target + target.T) / 2
    # theta_adj = mean + (theta - mean) R2^-1 R1 with symmetric roots R2 = Sigma^1/2, R1 = V^1/2
    mapping = np.linalg.solve(_symmetric_root(sigma), _symmetric_root(target))
    return mean + (draws - mean) @ mapping, sigma, target


# ---------------------------------------------------------------------------------------------------- scores
@functools.cache
def _compiled(known: tuple[int, ...], hidden: tuple[int, ...], random_degree: bool, barrier: bool,
              transmission: bool, likelihood: str) -> tuple[Any, Any, Any]:
    """The one-respondent model (latent log degree sampled directly under the Poisson likelihood) and, compiled
    once per model configuration: the gradient in the globals, a respondent block's latent-averaged gradients, and
    the map from unconstrained globals to the reported quantities."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    density = build_model(np.array(known, dtype=int), np.array(hidden, dtype=int), 1, random_degree=random_degree,
                          barrier=barrier, transmission=transmission, likelihood=likelihood, centred=True)

    def log_density(globals_, latent_one, arrays):
        z = dict(globals_)
        if random_degree:
            z["log_degree_raw"] = latent_one[None]
        return density.log_density(z, arrays)

    gradient = jax.grad(log_density)

    def one_respondent(mean, arrays, latents):
        per_draw = jax.vmap(lambda value: gradient(mean, value, arrays))(latents)
        return jax.tree_util.tree_map(lambda g: g.mean(axis=0), per_draw)

    def constrain(z, arrays):
        return jax.vmap(lambda one: density.constrain(one, arrays))(z)

    block = jax.vmap(one_respondent, in_axes=(None, 0, 0))
    return jax.jit(gradient), jax.jit(block), jax.jit(constrain)


def _functions(model: MaltielModel, data: BayesData) -> tuple[Any, Any, Any]:
    return _compiled(tuple(int(k) for k in data.known_index), tuple(int(k) for k in data.hidden_index),
                     bool(model.random_degree), bool(model.barrier), bool(model.transmission), model.likelihood)


def _respondent_arrays(model: MaltielModel, data: BayesData, fixed_degree: np.ndarray | None, weight: float,
                       rows: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The model arrays of each respondent in ``rows`` (default all) on its own (unit weight, or zero for the
    prior-only density), with the whole survey's size bounds and a common tail width."""
    priors = replace(model.priors, size_bounds={g: model.priors.bounds_for(g, data) for g in data.hidden_groups})
    # a power of two: surveys of one shape then share compiled score functions (extra levels add nothing)
    width = 1 << max(0, int(data.counts.max()) - 1).bit_length()
    arrays = []
    for i in range(data.n_respondents) if rows is None else rows:
        one = replace(data, counts=data.counts[i:i + 1])
        degree = None if fixed_degree is None else fixed_degree[i:i + 1]
        arrays.append(model_arrays(one, priors, fixed_degree=degree, width=width, weights=np.array([weight])))
    return arrays


def respondent_scores(model: MaltielModel, data: BayesData, draws: Draws, fixed_degree: np.ndarray | None,
                      names: Sequence[str], *, max_latent_draws: int = 200) -> np.ndarray:
    """g_i (n x P): the gradient in the unconstrained globals ``names`` (flattened in that order) of respondent i's
    unweighted log-likelihood and latent-degree log density, at the globals' posterior mean; with random degrees,
    averaged over up to ``max_latent_draws`` of the respondent's degree draws (Fisher's identity)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax
    import jax.numpy as jnp

    n = data.n_respondents
    mean = {name: draws.unconstrained[name].reshape(-1, *draws.unconstrained[name].shape[2:]).mean(axis=0)
            for name in draws.unconstrained}
    gradient, block, _ = _functions(model, data)
    prior_arrays = _respondent_arrays(model, data, fixed_degree, 0.0, rows=[0])[0]
    stacked = stack_arrays(_respondent_arrays(model, data, fixed_degree, 1.0))
    if model.random_degree:
        degree = draws.samples["degree"].reshape(-1, n)
        pick = np.unique(np.linspace(0, len(degree) - 1, min(max_latent_draws, len(degree))).round().astype(int))
        degree = degree[pick].T  # (n, S)
        if model.likelihood == "poisson":
            latent = np.log(degree)
        else:
            latent = np.log(np.maximum(degree - data.counts.max(axis=1)[:, None], 1e-300))
    else:
        latent = np.zeros((n, 1))

    def flat(tree, lead):
        return np.concatenate([np.asarray(tree[name]).reshape(lead, -1) for name in names], axis=1)

    with jax.enable_x64(True):
        # the prior's gradient: a respondent of weight zero contributes only the priors (the same for everyone)
        prior = flat(gradient(mean, jnp.zeros(()), prior_arrays), 1)[0]
        rows = []
        for start in range(0, n, SCORE_BLOCK):
            index = np.arange(start, start + SCORE_BLOCK).clip(max=n - 1)  # padded: one compiled shape
            part = block(mean, {k: v[index] for k, v in stacked.items()}, latent[index])
            rows.append(flat(part, len(index))[: min(SCORE_BLOCK, n - start)])
    return np.vstack(rows) - prior


# ---------------------------------------------------------------------------------------------------- the fit
def _labels(model: MaltielModel, data: BayesData, name: str, size: int) -> list[str]:
    groups = {"log_size_raw": ("size", data.hidden_groups), "log_effective_size_raw":
              ("effective_size", data.hidden_groups), "rho": ("rho", data.groups)}
    if name in groups:
        label, members = groups[name]
        return [f"{label}[{g}]" for g in members]
    return [name] if size == 1 else [f"{name}[{j}]" for j in range(size)]


def adjust_draws(model: MaltielModel, design: SurveyDesign, data: BayesData, draws: Draws,
                 fixed_degree: np.ndarray | None) -> dict[str, Any]:
    """Replace the global parameters' draws in ``draws.samples`` by their design-adjusted values; return the notes,
    warnings and the ``design_adjustment`` table (pseudo-posterior and adjusted sd per unconstrained parameter)."""
    # JAX is loaded only when this runs: importing it costs start-up time
    import jax

    names = [name for name in sorted(draws.unconstrained) if name not in PRIOR_ONLY_PARAMETERS]
    chains, per_chain = draws.diverging.shape
    flat = np.concatenate([draws.unconstrained[name].reshape(chains * per_chain, -1) for name in names], axis=1)
    scores = respondent_scores(model, data, draws, fixed_degree, names)
    adjusted, sigma, target = sandwich_adjust(flat, design_covariance(scores, design))
    offsets = np.cumsum([0] + [int(np.prod(draws.unconstrained[name].shape[2:])) for name in names])
    z = {name: draws.unconstrained[name].reshape(chains * per_chain, *draws.unconstrained[name].shape[2:])
         for name in draws.unconstrained}
    for j, name in enumerate(names):
        z[name] = adjusted[:, offsets[j]:offsets[j + 1]].reshape(z[name].shape)
    arrays = _respondent_arrays(model, data, fixed_degree, 1.0, rows=[0])[0]
    if model.random_degree:
        z["log_degree_raw"] = np.zeros((chains * per_chain, 1))
    with jax.enable_x64(True):
        constrained = _functions(model, data)[2](z, arrays)
    for key, values in constrained.items():
        if key != "degree":  # the respondents' degrees keep their pseudo-posterior draws
            draws.samples[key] = np.asarray(values).reshape(chains, per_chain, *np.shape(values)[1:])
    labels = [label for j, name in enumerate(names) for label in _labels(model, data, name, offsets[j + 1] - offsets[j])]
    before, after = np.sqrt(np.diag(sigma)), np.sqrt(np.diag(target))
    table = pd.DataFrame({"parameter": labels, "pseudo_posterior_sd": before, "adjusted_sd": after,
                          "sd_ratio": after / before})
    warnings = list(design.warnings)
    freedom = design.n_psu - design.n_strata
    if freedom < len(labels):
        warnings.append(f"the design has {freedom} degrees of freedom (PSUs minus strata) for {len(labels)} adjusted "
                        "parameters: the score covariance J is singular and some adjusted directions collapse; the "
                        "adjusted intervals are unreliable (use a model with fewer parameters or more PSUs)")
    notes = [
        "survey-weighted pseudo-posterior (weights normalised to sum to the sample size) with the Williams & Savitsky "
        "(2021) design adjustment: the draws of the sizes" + (", mu, sigma" if model.random_degree else "")
        + (", rho" if model.barrier else "") + " are rescaled so their covariance is the design-based sandwich "
        "H^-1 J H^-1 (unconstrained scale); respondents' degrees are reported unadjusted"
        + ("; the transmission rates keep their prior-driven draws" if model.transmission else ""),
        f"Kish effective sample size of the weights: {design.effective_size:.1f} of {design.n}",
        *design.notes,
    ]
    return {"notes": notes, "warnings": warnings, "tables": {"design_adjustment": table},
            "settings": {"design": {**design.describe(), "adjusted": True}}}


def fit_weighted(model: MaltielModel, data: Any, design: SurveyDesign, *, adjust: bool = True,
                 **options: Any) -> Estimates:
    """Fit ``model`` to ``data`` with the survey weights of ``design`` (the pseudo-posterior) and, with ``adjust``,
    the design-based adjustment of the global parameters' draws. ``options`` are those of ``model.fit``."""
    if getattr(model, "name", None) in WITHOUT_WEIGHTS:
        raise ConfigError(f"survey weights apply to the {', '.join(WEIGHTED_MODELS)} models; the {model.name} model "
                          "does not take them (set unweighted = true, or choose another model)")
    if isinstance(data, BayesData):
        respondents = data.n_respondents
    elif isinstance(data, pd.DataFrame | np.ndarray):
        respondents = len(data)
    else:
        respondents = int(data.n)  # an ARD
    if design.n != respondents:
        raise ConfigError(f"the survey design has {design.n} respondents, the counts {respondents}")

    def post_process(fitted: BayesData, draws: Draws, fixed_degree: np.ndarray | None) -> dict[str, Any]:
        if not adjust:
            return {"notes": ["survey-weighted pseudo-posterior (weights normalised to sum to the sample size), not "
                              "adjusted for the design: its intervals ignore clustering and the weights' variance"],
                    "settings": {"design": {**design.describe(), "adjusted": False}}}
        return adjust_draws(model, design, fitted, draws, fixed_degree)

    return model.fit(data, weights=design.weights, post_process=post_process,
                     keep_globals=adjust, **options)
