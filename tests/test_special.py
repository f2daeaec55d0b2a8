"""hiddenpop.special: SciPy's compiled special functions loaded without ``scipy.special``'s package import.

The reference is SciPy itself: in a fresh process that takes the fast path, each function must be the very object
``scipy.special`` exports (so every result is the same bits), and must give bit-identical results over the whole
range of its arguments, infinities and NaN included. If a SciPy upgrade breaks the fast path, the first test fails
(the module would still work, through the slower fallback, which the last test covers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from hiddenpop import special

#: Arguments over each function's whole domain and beyond: tiny, huge, negative, non-integer, infinite and NaN.
WIDE = [-np.inf, -1e300, -1e8, -170.5, -3.5, -2.0, -1.0, -1e-300, -0.0, 0.0, 5e-324, 1e-300, 1e-8, 0.25, 0.5, 1.0,
        1.5, 2.0, 3.0, 12.9, 13.0, 40.0, 171.6, 1e5, 1e8, 1e15, 1e300, np.inf, np.nan]
PROBABILITIES = [-0.1, 0.0, 5e-324, 1e-300, 1e-12, 1e-6, 0.025, 0.3, 0.5, 0.7, 0.975, 1 - 1e-9, 1 - 2**-53, 1.0, 1.1,
                 np.nan]

#: Arguments of each function (one list per argument; the test evaluates every combination).
ARGUMENTS = {
    "gammaln": [WIDE], "loggamma": [WIDE], "expit": [WIDE], "ndtr": [WIDE], "ndtri": [PROBABILITIES],
    "xlogy": [WIDE, WIDE], "chdtrc": [WIDE, WIDE], "pdtr": [WIDE, WIDE], "pdtrc": [WIDE, WIDE],
    "stdtrit": [WIDE, PROBABILITIES], "betaincc": [WIDE, WIDE, PROBABILITIES],
    "betaincinv": [WIDE, WIDE, PROBABILITIES],
}

#: Run in a fresh process: import hiddenpop.special first (the fast path), then SciPy's package, and compare.
COMPARE = """
import itertools, json, sys, warnings
import numpy as np
from hiddenpop import special
fast = special.FAST_PATH and "scipy.special" not in sys.modules
import scipy.special
arguments = json.loads(sys.argv[1])
report = {"fast": fast, "same_object": [], "different_bits": []}
for name, lists in arguments.items():
    ours, theirs = getattr(special, name), getattr(scipy.special, name)
    report["same_object"].append([name, ours is theirs])
    grid = [np.array(c, dtype=float) for c in zip(*itertools.product(*lists))]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        a, b = ours(*grid), theirs(*grid)
    if not np.array_equal(a.view(np.uint64), b.view(np.uint64)):
        report["different_bits"].append(name)
print(json.dumps(report))
"""


def _fresh(code: str, *args: str) -> dict:
    # SciPy's array-API dispatch (off by default) would wrap scipy.special's functions around the same ufuncs
    env = {key: value for key, value in os.environ.items() if key != "SCIPY_ARRAY_API"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_function_is_covered():
    assert sorted(ARGUMENTS) == sorted(special.NAMES)


def test_fast_path_gives_scipy_special_functions_bit_for_bit():
    encoded = json.dumps({name: [[float(x) for x in values] for values in lists]
                          for name, lists in ARGUMENTS.items()})
    report = _fresh(COMPARE, encoded)
    assert report["fast"], "hiddenpop.special fell back to importing scipy.special (did a SciPy upgrade change it?)"
    assert all(same for _, same in report["same_object"]), report["same_object"]
    assert report["different_bits"] == []


def test_fast_path_leaves_scipy_special_whole():
    """After the fast path, ``import scipy.special`` runs the real package: everything in it works."""
    code = ("import json, sys\nfrom hiddenpop import special\nloaded = 'scipy.special' in sys.modules\n"
            "import numpy as np, scipy.special, scipy.stats\n"
            "print(json.dumps([loaded, float(scipy.special.logsumexp([0.0, 0.0])), float(scipy.stats.norm.ppf(0.975)),"
            " scipy.special._ufuncs is sys.modules['scipy.special._ufuncs'], special.gammaln is scipy.special.gammaln]))")
    loaded, logsumexp, quantile, same_module, same_function = _fresh(code)
    assert loaded is False
    assert logsumexp == np.log(2.0)
    assert quantile == special.ndtri(0.975)
    assert same_module and same_function


def test_after_scipy_special_the_functions_are_its_own():
    """When SciPy's package is already loaded there is nothing to save: the functions are taken from it."""
    code = ("import json, scipy.special\nfrom hiddenpop import special\n"
            "print(json.dumps([special.FAST_PATH, all(getattr(special, n) is getattr(scipy.special, n)"
            " for n in special.NAMES)]))")
    assert _fresh(code) == [False, True]


def test_closed_forms():
    # log Γ(n + 1) = log n!; Φ(0) = 1/2; Φ⁻¹(0.975) the familiar 1.96; P(χ²₂ > x) = exp(-x/2); logistic(0) = 1/2
    assert special.gammaln(6.0) == np.log(120.0)
    assert special.ndtr(0.0) == 0.5
    assert abs(special.ndtri(0.975) - 1.959963984540054) < 1e-15
    assert abs(special.chdtrc(2.0, 3.0) - np.exp(-1.5)) < 1e-16
    assert special.expit(0.0) == 0.5
    assert special.xlogy(0.0, 0.0) == 0.0
    assert abs(special.pdtr(0.0, 2.0) - np.exp(-2.0)) < 1e-16
