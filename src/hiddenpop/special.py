"""SciPy's compiled special functions, without the import cost of ``scipy.special``'s package.

``import scipy.special`` loads SciPy's array-API layer, which imports every NumPy submodule (``numpy.f2py``,
``numpy.testing``, ``numpy.ma``...): about 0.2 s of CPU, more than a small command's whole computation. The
functions the estimators call are NumPy ufuncs compiled in the extension module ``scipy.special._ufuncs``, and
``scipy.special.gammaln`` *is* ``scipy.special._ufuncs.gammaln`` (the same object) whenever SciPy's array-API
dispatch is off, its default. This module loads that extension module alone, so every result is the one
``scipy.special`` gives, bit for bit, for a tenth of the import.

Loading it alone relies on a SciPy internal (the extension module's name and that it initialises without the
package's ``__init__``). If that ever stops working, this module falls back to ``scipy.special`` itself: the
functions are the same, only the import is slower. ``tests/test_special.py`` checks both that the fast path is
taken with the installed SciPy and that every function here is the object ``scipy.special`` exports.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

__all__ = ["FAST_PATH", "betaincc", "betaincinv", "chdtrc", "expit", "gammaln", "loggamma", "ndtr", "ndtri", "pdtr",
           "pdtrc", "stdtrit", "xlogy"]

#: The functions this module provides: each is an attribute of ``scipy.special._ufuncs`` and of ``scipy.special``.
NAMES = ("betaincc", "betaincinv", "chdtrc", "expit", "gammaln", "loggamma", "ndtr", "ndtri", "pdtr", "pdtrc",
         "stdtrit", "xlogy")


def _load_compiled() -> types.ModuleType | None:
    """``scipy.special._ufuncs`` loaded without running ``scipy/special/__init__.py``, or None if it cannot be.

    The extension imports its sibling extensions (``_ufuncs_cxx``, ``_special_ufuncs``...) as submodules of
    ``scipy.special``; a bare package object stands in for ``scipy.special`` in ``sys.modules`` while they load and
    is removed afterwards, so a later ``import scipy.special`` runs the real package, which then finds these
    extension modules already loaded and uses them. This runs once, when hiddenpop's modules are first imported;
    a thread importing ``scipy.special`` during those few milliseconds would see the stand-in."""
    if "scipy.special" in sys.modules:  # already paid for: nothing to save
        return None
    scipy_spec = importlib.util.find_spec("scipy")
    if scipy_spec is None or not scipy_spec.submodule_search_locations:
        return None
    stand_in = types.ModuleType("scipy.special")
    stand_in.__path__ = [os.path.join(location, "special") for location in scipy_spec.submodule_search_locations]
    sys.modules["scipy.special"] = stand_in
    try:
        compiled = importlib.import_module("scipy.special._ufuncs")
    except Exception:  # any failure of the internal route: the package import below gives the same functions
        return None
    finally:
        if sys.modules.get("scipy.special") is stand_in:
            del sys.modules["scipy.special"]
    return compiled if all(hasattr(compiled, name) for name in NAMES) else None


_compiled = _load_compiled()
#: Whether the functions came from the extension module alone (True with the SciPy versions tested).
FAST_PATH = _compiled is not None
if _compiled is None:
    from scipy import special as _compiled  # fallback: the whole package, same functions

betaincc = _compiled.betaincc
betaincinv = _compiled.betaincinv
chdtrc = _compiled.chdtrc
expit = _compiled.expit
gammaln = _compiled.gammaln
loggamma = _compiled.loggamma
ndtr = _compiled.ndtr
ndtri = _compiled.ndtri
pdtr = _compiled.pdtr
pdtrc = _compiled.pdtrc
stdtrit = _compiled.stdtrit
xlogy = _compiled.xlogy
