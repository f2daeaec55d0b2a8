"""The declared visibility model in the Bayesian analysis: Beta tau priors inside the model, other factors
dividing the posterior draws (one draw per posterior draw, shared by the groups a declaration covers)."""

from __future__ import annotations

import numpy as np
import pytest

from hiddenpop.errors import ConfigError
from hiddenpop.nsum.adjust import Adjustments, Beta, Declared, Fixed
from hiddenpop.nsum.bayes import MODELS
from hiddenpop.nsum.bayes.analyses import _tau_priors, visibility
from hiddenpop.nsum.specs import BayesSpec


def test_a_beta_transmission_rate_becomes_the_models_tau_prior():
    combined = BayesSpec(model="combined")
    assert _tau_priors(combined, Adjustments(transmission_rate="beta(17, 3)"), ["a", "b"]) == (17.0, 3.0)
    per_group = Adjustments(declared=[Declared("transmission_rate", Beta(17, 3), ("a",)),
                                      Declared("transmission_rate", Beta(2, 2), None)])
    assert _tau_priors(combined, per_group, ["a", "b"]) == {"a": (17.0, 3.0), "b": (2.0, 2.0)}
    assert _tau_priors(BayesSpec(model="barrier"), Adjustments(transmission_rate="beta(17, 3)"), ["a"]) is None
    with pytest.raises(ConfigError, match="declare it as beta"):
        _tau_priors(combined, Adjustments(transmission_rate=0.5), ["a"])


def test_the_deprecated_tau_prior_is_the_same_declaration():
    spec = BayesSpec(model="combined", tau_prior=(17.0, 3.0))
    (declared,) = visibility(spec).declared
    assert declared.factor == "transmission_rate" and declared.distribution == Beta(17.0, 3.0)


def _sizes(chains: int = 2, draws: int = 500, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log([1000.0, 400.0]), 0.1, size=(chains, draws, 2))


def test_factors_outside_the_model_divide_each_posterior_draw():
    sizes = _sizes()
    model = MODELS["barrier"]()
    notes: list[str] = []
    constant = model.adjusted_sizes(sizes, ["a", "b"], Adjustments(degree_ratio=0.5), seed=3, notes=notes)
    np.testing.assert_allclose(constant["a"], sizes[..., 0] / 0.5, rtol=1e-12)
    np.testing.assert_allclose(constant["b"], sizes[..., 1] / 0.5, rtol=1e-12)
    assert notes
    shared = model.adjusted_sizes(sizes, ["a", "b"], Adjustments(transmission_rate=Beta(17, 3)), seed=3, notes=[])
    np.testing.assert_allclose(shared["a"] / shared["b"], sizes[..., 0] / sizes[..., 1], rtol=1e-12)
    tau = sizes[..., 0] / shared["a"]
    assert tau.mean() == pytest.approx(0.85, abs=4 * Beta(17, 3).sd / np.sqrt(tau.size))
    assert tau.std() == pytest.approx(Beta(17, 3).sd, rel=0.1)


def test_a_model_with_its_own_transmission_rate_is_not_divided_by_it_again():
    sizes = _sizes()
    model = MODELS["combined"]()
    same = model.adjusted_sizes(sizes, ["a", "b"], Adjustments(transmission_rate=Beta(17, 3)), seed=3, notes=[])
    np.testing.assert_array_equal(same["a"], sizes[..., 0])
    delta = model.adjusted_sizes(sizes, ["a", "b"], Adjustments(transmission_rate=Beta(17, 3), degree_ratio=Fixed(2.0)),
                                 seed=3, notes=[])
    np.testing.assert_allclose(delta["b"], sizes[..., 1] / 2.0, rtol=1e-12)
