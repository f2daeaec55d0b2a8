"""hiddenpop: estimate the size of hidden populations.

Network scale-up surveys, capture-recapture on report logs and lists, small-area estimation, survey design,
sample review and case-file summaries, with honest uncertainty and privacy by design.
"""

from hiddenpop.errors import ConfigError, DataError, HiddenpopError, ModelError, PrivacyError
from hiddenpop.lazy import lazy_exports

__version__ = "0.1.0"

# ``Estimates`` loads pandas; it is read on first use so that ``hiddenpop --help`` does not pay for it.
__getattr__, __dir__, _lazy = lazy_exports(__name__, {"Estimates": "hiddenpop.results"})
__all__ = ["ConfigError", "DataError", "HiddenpopError", "ModelError", "PrivacyError", "__version__", *_lazy]
