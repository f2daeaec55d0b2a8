"""hiddenpop: estimate the size of hidden populations.

Network scale-up surveys, capture-recapture on report logs and lists, small-area estimation, survey design,
sample review and case-file summaries, with honest uncertainty and privacy by design.
"""

from hiddenpop.errors import ConfigError, DataError, HiddenpopError, ModelError, PrivacyError
from hiddenpop.results import Estimates

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "Estimates",
    "HiddenpopError",
    "ModelError",
    "PrivacyError",
    "__version__",
]
