"""The capture-recapture analyses as every interface runs them: options declared once, one result.

Each analysis is a spec (its options, with defaults, help and bounds; declared in :mod:`hiddenpop.capture.specs`)
and a function ``analysis(data, spec) -> Estimates``. The command line and the study file build the spec from their own
syntax and call the same function, so they get the same numbers, tables and warnings.

* :func:`closed_analysis` -- the closed family in one comparison table (Rcapture's ``closedp``) with AIC and
  BIC weights, the model-averaged abundance (``tables["model_average"]``, Buckland et al. 1997), and the
  descriptive statistics f_k, u_j, v_j, n_j as ``tables["descriptive"]``.
* :func:`interval_analysis` -- the profile-likelihood interval for one model, beside the Wald and
  log-transformed intervals.
* :func:`mse_analysis` -- multiple systems estimation with a named selection procedure (:func:`mse`).
* :func:`coverage_analysis` -- the sample-coverage estimators, for overlapping lists or capture occasions.
* :func:`read_log` -- a report log read, pseudonymised and cleaned with a spec's reading options;
  :func:`events_analysis` -- its rolling-window estimates; :func:`histories_analysis` -- its capture-history
  counts per window (for ``capture open``, or with primary periods for ``capture robust``).
* :func:`robust_analysis` -- the robust design (primary periods of closed secondary occasions) on a histories
  file.

One module per kind of input, so that a command loads only the models it fits: :mod:`.closed` (capture
histories: the closed family, profile intervals, single source), :mod:`.lists` (overlapping lists: MSE and sample
coverage), :mod:`.logs` (report logs) and :mod:`.histories` (open-population and robust-design files). The names
below load their module on first use.
"""

from __future__ import annotations

from hiddenpop.lazy import lazy_exports

_HERE = "hiddenpop.capture.analyses"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "read_histories": f"{_HERE}.closed",
    "closed_analysis": f"{_HERE}.closed",
    "interval_analysis": f"{_HERE}.closed",
    "single_analysis": f"{_HERE}.closed",
    "fits_latent": f"{_HERE}.lists",
    "mse_analysis": f"{_HERE}.lists",
    "coverage_analysis": f"{_HERE}.lists",
    "cleaning_rules": f"{_HERE}.logs",
    "read_log": f"{_HERE}.logs",
    "events_analysis": f"{_HERE}.logs",
    "histories_analysis": f"{_HERE}.logs",
    "open_analysis": f"{_HERE}.histories",
    "robust_analysis": f"{_HERE}.histories",
})
