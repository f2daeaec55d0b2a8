"""Lazy re-exports for package ``__init__`` modules.

A family's package names its public functions without importing the modules that define them, so that importing
the package (and running ``hiddenpop --help``) costs nothing until a function is used::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"closedp": "hiddenpop.capture.closed.models"})
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["deprecated_aliases", "lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]],
                                                                    list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``: each name in ``exports`` is read from its module on
    first use. A name that is also a submodule of ``package`` must not be exported this way (the import system
    binds the submodule to the package and the function would be shadowed)."""
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__, names


def deprecated_aliases(module: str, renamed: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that still answers to old names for one release, with a DeprecationWarning
    naming the new one (``renamed`` maps old name -> new name in the same module)."""

    def __getattr__(name: str) -> Any:
        if name in renamed:
            warnings.warn(f"{module}.{name} is deprecated and will be removed in the next release; use "
                          f"{module}.{renamed[name]}", DeprecationWarning, stacklevel=2)
            return getattr(sys.modules[module], renamed[name])
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
