"""Descriptive statistics and goodness of fit for closed capture-recapture data (Rcapture ``descriptive``).

* f_k: units caught exactly k times;  u_j: first caught on occasion j;  v_j: last caught on occasion j;
  n_j: caught on occasion j. A u_j sequence that declines faster than n_j hints at trap-shyness or
  heterogeneity; v_j rising towards the end suggests immigration (the population is not closed).
* Deviance goodness-of-fit: D ~ chi2(df) for the Poisson model over the 2^t - 1 cells. With many sparse
  cells (typical for t > 5) the chi-square reference is unreliable; compare models by AIC/BIC instead and
  use the u_j fit table: observed vs fitted first captures, with Pearson residuals (O - E)/sqrt(E).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiddenpop.capture.closed.models import closedp, fit_closed, parse_model
from hiddenpop.capture.core.histories import Histories, all_patterns
from hiddenpop.capture.core.loglinear import closed_design
from hiddenpop.distributions import chi2_sf
from hiddenpop.errors import ModelError
from hiddenpop.results import Estimates


def descriptive(histories: Histories) -> pd.DataFrame:
    """One row per occasion j = 1..t with f_j, u_j, v_j, n_j (Rcapture's ``descriptive`` table)."""
    f = histories.frequencies()
    if histories.is_frequency_only:
        return pd.DataFrame({"k": np.arange(1, len(f) + 1), "f": f})
    t = int(histories.occasions)
    return pd.DataFrame(
        {
            "occasion": list(histories.labels),
            "k": np.arange(1, t + 1),
            "f": f,
            "u": histories.first_captures(),
            "v": histories.last_captures(),
            "n": histories.occasion_totals(),
        }
    )


def first_capture_fit(histories: Histories, model: str) -> pd.DataFrame:
    """Observed and fitted u_j (first captures) for a closed model, with Pearson residuals (t <= 20)."""
    if histories.is_frequency_only:
        raise ModelError("the u_j fit table needs capture histories")
    spec = parse_model(model)
    fit = fit_closed(histories, spec)
    patterns = all_patterns(int(histories.occasions))
    x, names = closed_design(patterns, spec.base, spec.heterogeneity, spec.theta)
    cols = [names.index(nm) for nm in list(fit.coef)[1:]]
    design = np.column_stack([np.ones(len(x)), x[:, cols]])
    mu = np.exp(design @ np.array(list(fit.coef.values())))
    first = patterns.argmax(axis=1)
    expected = np.bincount(first, weights=mu, minlength=patterns.shape[1])
    observed = histories.first_captures().astype(float)
    return pd.DataFrame(
        {
            "occasion": list(histories.labels),
            "u_observed": observed,
            "u_fitted": expected,
            "pearson_residual": (observed - expected) / np.sqrt(expected),
        }
    )


def goodness_of_fit(histories: Histories, models: list[str] | None = None) -> Estimates:
    """Deviance tests for the closed models: deviance, df, p-value (chi-square reference), AIC, BIC."""
    result = closedp(histories, models)
    table = result.table.copy()
    table["p_value"] = [chi2_sf(d, df) if df > 0 else np.nan for d, df in zip(table["deviance"], table["df"], strict=True)]
    notes = list(result.notes)
    sparse = histories.observed / max(float(2**histories.occasions - 1) if histories.occasions < 60 else np.inf, 1.0)
    if sparse < 5:
        notes.append(
            "many expected cell counts are small: the chi-square reference for the deviance is unreliable; "
            "compare models by AIC/BIC"
        )
    result.table = table
    result.notes = notes
    return result
