"""How hiddenpop's own processes ask the kernel for memory (set before NumPy loads).

NumPy advises the kernel to back every large array with transparent huge pages (``madvise``). On a kernel whose
huge-page ``defrag`` setting is ``madvise`` (the 2-core benchmark machine's), each such request compacts memory
before the first touch of the array: a fresh 144 MB array took 1.1 s of CPU to fill there, against 0.13 s with
ordinary pages, and the graph-averaging table, the latent-class and NSUM draws and the report-log codes are arrays
of that size. The command line (and so every benchmark that runs it) therefore starts with huge pages off through
NumPy's documented switch, ``NUMPY_MADVISE_HUGEPAGE``, which NumPy reads once when it is imported. A value already
in the environment (the user's) is kept, and child processes (workers) inherit the setting. Python API users, and
the benchmarks that call the API in their own process, keep NumPy's default unless they set the variable.
"""

from __future__ import annotations

import os
import sys

__all__ = ["HUGE_PAGES_VARIABLE", "prefer_base_pages"]

#: NumPy's switch for the huge-page advice: ``0`` off, ``1`` on.
HUGE_PAGES_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"


def prefer_base_pages() -> bool:
    """Turn NumPy's huge-page advice off for this process and its children unless the environment already says;
    effective only before NumPy is imported. Returns whether NumPy will read the setting (it is not loaded yet)."""
    os.environ.setdefault(HUGE_PAGES_VARIABLE, "0")
    return "numpy" not in sys.modules
