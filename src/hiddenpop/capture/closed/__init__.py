"""Closed-population models as Rcapture fits them: the M0, Mt, Mh, Mth and Mb families in one comparison table,
custom log-linear models, profile-likelihood intervals, closed forms and descriptive statistics. Imports only
:mod:`hiddenpop.capture.core` among the capture rooms."""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "STANDARD_MODELS": "hiddenpop.capture.closed.models",
    "closedp": "hiddenpop.capture.closed.models",
    "fit_closed": "hiddenpop.capture.closed.models",
    "fit_custom": "hiddenpop.capture.closed.models",
    "parse_model": "hiddenpop.capture.closed.models",
    "profile_ci": "hiddenpop.capture.closed.profile",
    "profile_ci_design": "hiddenpop.capture.closed.profile",
    "chapman": "hiddenpop.capture.closed.forms",
    "lincoln_petersen": "hiddenpop.capture.closed.forms",
    "chao1987": "hiddenpop.capture.closed.forms",
    "chao_bias_corrected": "hiddenpop.capture.closed.forms",
    "closedp_bc": "hiddenpop.capture.closed.forms",
    "two_occasion": "hiddenpop.capture.closed.forms",
    "descriptive": "hiddenpop.capture.closed.descriptive_stats",
    "goodness_of_fit": "hiddenpop.capture.closed.descriptive_stats",
    "first_capture_fit": "hiddenpop.capture.closed.descriptive_stats",
    "fit_mt_family": "hiddenpop.capture.closed.sufficient",
})
