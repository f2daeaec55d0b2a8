"""Capture-recapture and multiple systems estimation.

Closed models (this package's core): :class:`Histories` (the input contract), :func:`closedp` (the 12
Rcapture closed models in one comparison table), :func:`fit_closed` / :func:`fit_custom` (one model),
:func:`profile_ci` / :func:`profile_ci_design` (profile-likelihood intervals), closed forms
(:func:`chapman`, :func:`lincoln_petersen`, :func:`chao1987`, :func:`closedp_bc`), the shared Poisson
log-linear engine :func:`fit_poisson`, multiple systems estimation (:func:`mse`, :func:`select_model`,
:func:`check_extended_mle`) and sample coverage (:func:`sample_coverage`, :func:`coverage_mth`). Submodules are imported lazily so ``import hiddenpop`` stays fast.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

_EXPORTS = {
    "Histories": "hiddenpop.capture.histories",
    "all_patterns": "hiddenpop.capture.histories",
    "fit_poisson": "hiddenpop.capture.loglinear",
    "closed_design": "hiddenpop.capture.loglinear",
    "interaction_design": "hiddenpop.capture.loglinear",
    "closedp": "hiddenpop.capture.closed",
    "fit_closed": "hiddenpop.capture.closed",
    "fit_custom": "hiddenpop.capture.closed",
    "STANDARD_MODELS": "hiddenpop.capture.closed",
    "profile_ci": "hiddenpop.capture.profile",
    "profile_ci_design": "hiddenpop.capture.profile",
    "chapman": "hiddenpop.capture.closedforms",
    "lincoln_petersen": "hiddenpop.capture.closedforms",
    "chao1987": "hiddenpop.capture.closedforms",
    "chao_bias_corrected": "hiddenpop.capture.closedforms",
    "closedp_bc": "hiddenpop.capture.closedforms",
    "two_occasion": "hiddenpop.capture.closedforms",
    "log_transformed_ci": "hiddenpop.capture.closedforms",
    "descriptive": "hiddenpop.capture.descriptive",
    "goodness_of_fit": "hiddenpop.capture.descriptive",
    "first_capture_fit": "hiddenpop.capture.descriptive",
    "fit_mt_family": "hiddenpop.capture.sufficient",
    "read_events": "hiddenpop.capture.events",
    "CleaningRules": "hiddenpop.capture.cleaning",
    "plan_windows": "hiddenpop.capture.occasions",
    "window_pattern_counts": "hiddenpop.capture.occasions",
    "rolling_series": "hiddenpop.capture.rolling",
    "report_series": "hiddenpop.capture.rolling",
    "open_population": "hiddenpop.capture.open",
    "mse": "hiddenpop.capture.mse",
    "select_model": "hiddenpop.capture.mse",
    "check_extended_mle": "hiddenpop.capture.mse",
    "sample_coverage": "hiddenpop.capture.coverage",
    "coverage_mth": "hiddenpop.capture.coverage",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(_EXPORTS[name])
        if module.__name__ == "hiddenpop.capture.mse":
            # 'mse' names both the submodule and its main function, and importing the submodule binds the
            # package attribute to the module; so the export is the module made callable as the function:
            # capture.mse(data, select="aic") runs the estimator, capture.mse.NO_MLE etc. keep working
            if not isinstance(module, _CallableModule):
                module.__class__ = _CallableModule
            if name == "mse":
                return module
        return getattr(module, name)
    raise AttributeError(f"module 'hiddenpop.capture' has no attribute {name!r}")


class _CallableModule(ModuleType):
    """A module whose call runs its function of the same name (see ``__getattr__``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__dict__[self.__name__.rsplit(".", 1)[-1]](*args, **kwargs)
