"""The model-selection procedures of multiple systems estimation and their default p-value thresholds.

Kept in a module of its own (no SciPy) so that the options of ``capture mse`` can be declared without loading the
estimation code.
"""

from __future__ import annotations

__all__ = ["CONCENTRATION_PRIOR", "DEFAULT_THRESHOLD", "HEADLINES", "LATENT_CHAINS", "LATENT_CLASSES", "MODEL_CLASSES",
           "PROCEDURES"]

#: aic: Silverman (2014), the UK 2013 procedure; stepwise: Chan, Silverman & Vincent (2021); bic: minimum BIC over
#: hierarchical models (Silverman, Chan & Vincent 2024).
PROCEDURES = ("aic", "stepwise", "bic")
DEFAULT_THRESHOLD = {"aic": 0.05, "stepwise": 0.02, "bic": None}
#: Every class of model ``capture mse --compare`` fits: the main-effects log-linear model, the three selection
#: procedures, Dirichlet-process latent classes and decomposable-graph model averaging.
MODEL_CLASSES = ("independence", *PROCEDURES, "latent", "graphs")
#: The headline of a comparison: a class, or ``selected`` for the class of the ``select`` procedure.
HEADLINES = ("selected", *MODEL_CLASSES)
#: Truncation of the latent-class model's stick-breaking prior (LCMCR's default K).
LATENT_CLASSES = 10
#: Gamma(shape, rate) prior of the latent-class model's concentration alpha (LCMCR's default a = b = 0.25).
CONCENTRATION_PRIOR = (0.25, 0.25)
#: NUTS chains of the latent-class model (each gets its own CPU device when the interfaces set that up first).
LATENT_CHAINS = 4
