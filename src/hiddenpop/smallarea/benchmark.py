"""Deprecated: renamed :mod:`hiddenpop.smallarea.national` (``benchmark`` is now ``calibrate``); this alias is
removed in the next release. (``benchmarks/`` holds the project's timing scripts; this module never timed anything.)
"""

from __future__ import annotations

import warnings

from hiddenpop.smallarea.national import CALIBRATION_METHODS as BENCHMARK_METHODS
from hiddenpop.smallarea.national import calibrate as benchmark
from hiddenpop.smallarea.national import national_consistency

__all__ = ["BENCHMARK_METHODS", "benchmark", "national_consistency"]

warnings.warn("hiddenpop.smallarea.benchmark is deprecated; use hiddenpop.smallarea.national (benchmark -> calibrate)",
              DeprecationWarning, stacklevel=2)
