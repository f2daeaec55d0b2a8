"""The analyses of overlapping lists: multiple systems estimation and sample coverage.

See :mod:`hiddenpop.capture.analyses`. The comparison of model classes and the stratified fits (which load the
latent-class model and its NUTS sampler) and the sampler's device set-up are named through their packages' lazy
exports, so a plain selection (``capture mse --select aic``) never imports them."""

from __future__ import annotations

from typing import Any

from hiddenpop import mcmc
from hiddenpop.capture import lists
from hiddenpop.capture.lists.coverage import coverage_mth, sample_coverage
from hiddenpop.capture.lists.models import mse
from hiddenpop.capture.lists.procedures import LATENT_CHAINS
from hiddenpop.capture.specs import CoverageSpec, MSESpec
from hiddenpop.errors import ConfigError
from hiddenpop.results import Estimates
from hiddenpop.specs import to_dict

__all__ = ["coverage_analysis", "fits_latent", "mse_analysis"]


def fits_latent(spec: MSESpec) -> bool:
    """Whether ``spec`` fits the latent-class model (by NUTS, with JAX)."""
    headline = spec.select if spec.headline == "selected" else spec.headline
    return (spec.compare and "latent" in spec.classes) or (spec.stratum is not None and headline == "latent")


def mse_analysis(data: Any, spec: MSESpec, quiet: bool = True) -> Estimates:
    """Multiple systems estimate of ``data`` (a path, a DataFrame or list data) with ``spec``'s procedure, or
    with ``spec.compare`` every model class side by side (:func:`hiddenpop.capture.lists.compare.compare_classes`)."""
    headline = spec.select if spec.headline == "selected" else spec.headline
    if fits_latent(spec):
        mcmc.host_devices(LATENT_CHAINS)
    if spec.stratum is not None:
        if spec.compare:
            raise ConfigError("--compare and --stratum cannot be combined; compare the classes on each stratum's "
                              "rows, or stratify one class (--headline)")
        result = lists.stratified(data, spec.stratum, model=headline, count_column=spec.count_column,
                            bootstrap=spec.bootstrap, seed=spec.seed, level=spec.level,
                            latent_classes=spec.latent_classes, draws=spec.draws,
                            start_at_mode=spec.latent_start_at_mode, quiet=quiet)
        result.settings = {**to_dict(spec), **result.settings}
        return result
    if spec.compare:
        result = lists.compare_classes(
            data, headline=headline, classes=spec.classes,
            count_column=spec.count_column, bootstrap=spec.bootstrap, seed=spec.seed, level=spec.level,
            latent_classes=spec.latent_classes, draws=spec.draws, delta=spec.delta,
            start_at_mode=spec.latent_start_at_mode, quiet=quiet)
        result.settings = {**to_dict(spec), **result.settings}
        return result
    result = mse(data, spec.select, p_threshold=spec.p_threshold, max_order=spec.max_order,
                 bootstrap=spec.bootstrap, seed=spec.seed, level=spec.level, top_models=spec.top_models,
                 count_column=spec.count_column)
    result.settings = {**to_dict(spec), **result.settings}
    return result


def coverage_analysis(data: Any, spec: CoverageSpec) -> Estimates:
    """Sample-coverage estimators of ``data`` for overlapping lists or for capture occasions (``spec.kind``)."""
    estimator = sample_coverage if spec.kind == "lists" else coverage_mth
    result = estimator(data, count_column=spec.count_column, bootstrap=spec.bootstrap, seed=spec.seed,
                       level=spec.level)
    result.settings = {**to_dict(spec), **result.settings}
    return result
