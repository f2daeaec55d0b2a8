"""Privacy by design: keyed pseudonymisation of identifiers (:mod:`~hiddenpop.privacy.keys`), small-cell
suppression of published tables (:mod:`~hiddenpop.privacy.suppression`) and the leak scanner
(:mod:`~hiddenpop.privacy.scanner`)."""

from hiddenpop.privacy.keys import (
    KEY_ENV,
    MIN_KEY_BYTES,
    PSEUDONYM_HEX_CHARS,
    RECOMMENDED_KEY_BYTES,
    Pseudonymiser,
    canonical_ip,
    generate_key,
    load_key,
    pseudonymise,
)
from hiddenpop.privacy.suppression import (
    DEFAULT_SUPPRESSION_THRESHOLD,
    suppress_linked_cells,
    suppress_small_cells,
)

__all__ = ["DEFAULT_SUPPRESSION_THRESHOLD", "KEY_ENV", "MIN_KEY_BYTES", "PSEUDONYM_HEX_CHARS",
           "RECOMMENDED_KEY_BYTES", "Pseudonymiser", "canonical_ip", "generate_key", "load_key", "pseudonymise",
           "suppress_linked_cells", "suppress_small_cells"]
