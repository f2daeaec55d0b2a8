"""Network scale-up (NSUM): degrees, design-based estimators, generalized adjustments and diagnostics.

    from hiddenpop.data import read_ard
    from hiddenpop import nsum

    ard = read_ard("survey.csv", known="known.csv", population=10e6, hidden=["clients"],
                   weights="w", strata="region", psu="cluster", topcode=30)
    result = nsum.estimate(ard, method=["mle", "pimle"], bootstrap=1000, seed=1)
    check = nsum.consistency(ard)

The Bayesian models live in :mod:`hiddenpop.nsum.bayes`.
"""

from hiddenpop.nsum import bayes
from hiddenpop.nsum.adjust import Adjustments
from hiddenpop.nsum.degree import Degree, degree, degree_summary
from hiddenpop.nsum.diagnostics import consistency
from hiddenpop.nsum.estimators import METHODS, Prevalence, estimate

__all__ = [
    "METHODS",
    "Adjustments",
    "Degree",
    "Prevalence",
    "bayes",
    "consistency",
    "degree",
    "degree_summary",
    "estimate",
]
