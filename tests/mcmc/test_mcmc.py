"""The shared NUTS sampler and its convergence diagnostics: R-hat and ESS against ArviZ (the reference), draws
kept in replicate and chain order, progress reporting that changes no draw."""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop.errors import ConfigError


# ---------------------------------------------------------------- vectorised R-hat / ESS against ArviZ
def _ar1(rng, chains, draws, phi, shift=0.0):
    x = np.zeros((chains, draws))
    noise = rng.normal(size=(chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x + shift * np.arange(chains)[:, None]


@pytest.mark.parametrize(("chains", "draws"), [(4, 1000), (2, 101), (1, 60), (4, 7)])
def test_vectorised_rhat_and_ess_equal_arviz(chains, draws):
    import arviz as az

    from hiddenpop.mcmc.diagnostics import rhat_ess_many

    rng = np.random.default_rng(11)
    params = [
        rng.normal(size=(chains, draws)),
        _ar1(rng, chains, draws, 0.9),  # strong autocorrelation
        _ar1(rng, chains, draws, -0.5),  # antithetic
        _ar1(rng, chains, draws, 0.5, shift=1.0),  # chains disagree
        np.exp(rng.normal(size=(chains, draws)) * 2),  # heavy right tail
        rng.poisson(0.3, size=(chains, draws)).astype(float),  # many ties
        np.full((chains, draws), 2.5),  # constant
    ]
    values = np.stack(params)
    rhat, bulk, tail = rhat_ess_many(values)
    for j, x in enumerate(params):
        expected = (az.rhat(x, method="rank"), az.ess(x, method="bulk"), az.ess(x, method="tail"))
        for got, want in zip((rhat[j], bulk[j], tail[j]), expected, strict=True):
            if np.isnan(want):
                assert np.isnan(got), (j, got, want)
            else:
                assert got == pytest.approx(float(want), rel=1e-9), (j, got, want)


@pytest.mark.parametrize("kind", ["continuous", "ties", "constant"])
def test_average_ranks_equal_scipy(kind):
    from scipy import stats

    from hiddenpop.mcmc.diagnostics import average_ranks

    rng = np.random.default_rng(4)
    values = {
        "continuous": rng.normal(size=(30, 400)),
        "ties": rng.poisson(1.5, size=(30, 400)).astype(float),
        "constant": np.full((3, 50), 7.0),
    }[kind]
    assert np.array_equal(average_ranks(values), stats.rankdata(values, method="average", axis=1))


def test_rhat_ess_over_thousands_of_parameters_split_across_threads_equal_one_block():
    from hiddenpop.mcmc import diagnostics

    rng = np.random.default_rng(8)
    values = np.stack([_ar1(rng, 4, 200, phi) for phi in rng.uniform(-0.5, 0.95, size=4 * diagnostics.PARALLEL_BLOCK)])
    values[5] = 3.0  # a constant parameter in the first block
    threaded = diagnostics.rhat_ess_many(values)
    single = diagnostics._rhat_ess_block(values)
    for got, want in zip(threaded, single, strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.isnan(threaded[0][5]) and np.all(np.isfinite(threaded[1][10:]))




def _normal_density():
    from hiddenpop.mcmc.nuts import Density

    return Density(shapes={"x": ()}, log_density=lambda z, d: -0.5 * (z["x"] - d["m"]) ** 2,
                   constrain=lambda z, d: {"x": z["x"]})


@pytest.mark.parametrize(("replicates", "chains"), [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (3, 1), (3, 2)])
def test_sample_nuts_keeps_replicates_and_chains_in_order(replicates, chains):
    """Chains are laid out over devices (pmap), vectorised within a device (vmap) or neither, depending on the
    chain count and the devices; every layout must hand back each replicate's chains in order, with the right
    shapes. Replicate r targets N(10 r, 1), so any mix-up moves a chain's mean by 10."""
    from hiddenpop.mcmc.nuts import sample_nuts

    batched = replicates > 1
    data = {"m": 10.0 * np.arange(replicates)} if batched else {"m": np.float64(0.0)}
    out = sample_nuts(_normal_density(), data, chains=chains, warmup=150, draws=300, seed=4, batched=batched,
                      warmup_max_tree_depth=3)
    fits = out if batched else [out]
    assert len(fits) == replicates
    for r, fit in enumerate(fits):
        assert fit.samples["x"].shape == (chains, 300)
        assert fit.diverging.shape == fit.num_steps.shape == (chains, 300)
        np.testing.assert_allclose(fit.samples["x"].mean(axis=1), 10.0 * r, atol=0.4)
        assert fit.settings["warmup_max_tree_depth"] == 3 and fit.settings["max_tree_depth"] == 10


def test_sample_nuts_unravels_every_parameter_to_its_own_place():
    """NUTS runs on one flat vector; each named parameter (scalars, vectors, matrices, names out of order) must come
    back with its own shape and its own target: element j of the flat vector targets N(10 j, 1)."""
    import jax.numpy as jnp

    from hiddenpop.mcmc.nuts import Density, sample_nuts

    shapes = {"zeta": (3,), "alpha": (), "mid": (2, 2)}
    order = ["alpha", "mid", "zeta"]  # the flat layout is sorted by name
    size = 1 + 4 + 3
    target = 10.0 * np.arange(size)

    def log_density(z, d):
        flat = jnp.concatenate([jnp.reshape(z[name], (-1,)) for name in order])
        return -0.5 * jnp.sum((flat - d["m"]) ** 2)

    density = Density(shapes=shapes, log_density=log_density, constrain=lambda z, d: dict(z))
    fit = sample_nuts(density, {"m": target}, chains=2, warmup=150, draws=300, seed=2, warmup_max_tree_depth=3)
    start = 0
    for name in order:
        count = int(np.prod(shapes[name]))
        assert fit.samples[name].shape == (2, 300, *shapes[name])
        means = fit.samples[name].reshape(2, 300, -1).mean(axis=(0, 1))
        np.testing.assert_allclose(means, target[start:start + count], atol=0.4)
        start += count


@pytest.mark.parametrize(("replicates", "chains"), [(1, 1), (1, 3), (2, 2)])
def test_progress_bar_changes_no_draw(monkeypatch, replicates, chains):
    """With a progress bar the sampler runs in short calls (the bar advances between them), without one in a few
    long calls. The bar must reach the total, and the chains must not notice the cuts: same draws as quiet."""
    from hiddenpop.mcmc import nuts as common

    advanced: list[int] = []
    monkeypatch.setattr(common.ProgressBar, "advance", lambda self, steps, phase: advanced.append(steps))
    batched = replicates > 1
    data = {"m": 10.0 * np.arange(replicates)} if batched else {"m": np.float64(0.0)}
    kwargs = dict(chains=chains, warmup=100, draws=200, seed=3, batched=batched, warmup_max_tree_depth=3)
    loud = common.sample_nuts(_normal_density(), data, quiet=False, **kwargs)
    assert sum(advanced) == 300 and len(advanced) > 3
    quiet = common.sample_nuts(_normal_density(), data, quiet=True, **kwargs)
    for a, b in zip(loud if batched else [loud], quiet if batched else [quiet], strict=True):
        np.testing.assert_array_equal(a.samples["x"], b.samples["x"])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_sample_nuts_rejects_bad_tree_depths(bad):
    from hiddenpop.mcmc.nuts import sample_nuts

    for option in ("max_tree_depth", "warmup_max_tree_depth"):
        with pytest.raises(ConfigError, match=option):
            sample_nuts(_normal_density(), {"m": np.float64(0.0)}, chains=1, warmup=5, draws=5, **{option: bad})


def test_ess_from_leading_lags_equals_full_fft(monkeypatch):
    """ESS reads autocovariances of the first lags directly and falls back to FFTs only where Geyer's sequence has
    not stopped; forcing the FFT for every parameter must give the same numbers."""
    from hiddenpop.mcmc import diagnostics

    rng = np.random.default_rng(8)
    values = np.stack([_ar1(rng, 4, 500, phi) for phi in (0.0, 0.3, 0.8, 0.97, -0.4)] * 3)
    default = diagnostics._ess(values)
    monkeypatch.setattr(diagnostics, "HEAD_LAGS", 2)  # no sequence can stop within two lags: all by FFT
    np.testing.assert_allclose(default, diagnostics._ess(values), rtol=1e-10)
    assert np.all(np.isfinite(default))




def test_rhat_ess_do_not_depend_on_how_parameters_are_blocked(monkeypatch):
    """Parameters are rank-normalised and autocorrelated in small blocks, while the FFT fallback runs in fixed
    batches: every block size must give the same bits (FFT output can change in the last bit with its batch)."""
    from hiddenpop.mcmc import diagnostics

    rng = np.random.default_rng(21)
    values = np.stack([_ar1(rng, 4, 300, phi) for phi in rng.uniform(0.9, 0.99, size=600)])
    values[3] = 1.0  # constant: not counted in the FFT batches
    values[400:420] = np.round(values[400:420])  # ties
    want = diagnostics._rhat_ess_block(values)
    for block in (1, 7, 600):
        monkeypatch.setattr(diagnostics, "BLOCK", block)
        for got, expected in zip(diagnostics._rhat_ess_block(values), want, strict=True):
            np.testing.assert_array_equal(got, expected)
