"""The layout docs/architecture.md describes, checked: no import cycles, no family importing an interface, capture
rooms importing only downwards, no module importing another module's private names, and a test folder for every
package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
FAMILIES = ("data", "nsum", "capture", "smallarea", "design", "review", "cases", "compare", "simulate", "datasets")
INTERFACES = ("hiddenpop.cli", "hiddenpop.study")
ROOMS = ("core", "closed", "lists", "events")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(imported module, imported names, at module level?) for every import of a hiddenpop module."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hiddenpop"):
            found.append((node.module, [a.name for a in node.names], id(node) in top))
        elif isinstance(node, ast.Import):
            found.extend((a.name, [], id(node) in top) for a in node.names if a.name.startswith("hiddenpop"))
    return found


def _target(module: str, names: list[str]) -> list[str]:
    """The modules an import statement loads (``from pkg import submodule`` counts as the submodule)."""
    targets = [f"{module}.{name}" for name in names if f"{module}.{name}" in MODULES]
    return targets or [module]


GRAPH = {name: {t for module, names, _ in _imports(path) for t in _target(module, names) if t != name}
         for name, path in MODULES.items()}


def test_no_import_cycles():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in GRAPH.get(node, ()):
            if other not in MODULES:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in MODULES:
        if name not in index:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("family", FAMILIES)
def test_families_import_no_interface(family):
    offenders = [(name, target) for name, targets in GRAPH.items() if name.startswith(f"hiddenpop.{family}")
                 for target in targets if target.startswith(INTERFACES)]
    assert offenders == []


def test_capture_rooms_import_only_downwards():
    offenders = []
    for name, targets in GRAPH.items():
        parts = name.split(".")
        if len(parts) < 4 or parts[1] != "capture" or parts[2] not in ROOMS:
            continue
        for target in targets:
            other = target.split(".")
            if other[:2] == ["hiddenpop", "capture"] and len(other) > 2:
                if other[2] not in ROOMS or ROOMS.index(other[2]) > ROOMS.index(parts[2]):
                    offenders.append((name, target))
    assert offenders == []


def test_no_module_imports_another_modules_private_names():
    offenders = [(name, module, imported) for name, path in MODULES.items()
                 for module, names, _ in _imports(path) for imported in names
                 if imported.startswith("_") and not imported.startswith("__") and module != name]
    assert offenders == []


def test_every_package_has_a_test_folder():
    packages = {p.parent.relative_to(SRC / "hiddenpop") for p in (SRC / "hiddenpop").rglob("__init__.py")}
    interfaces = {Path("cli")}  # the command line is tested through the families' test folders
    missing = [str(p) for p in packages - interfaces - {Path(".")} if not (TESTS / p).is_dir()]
    assert missing == []


def test_no_function_shadows_its_module_and_no_private_module_holds_a_public_api():
    """``hiddenpop.nsum.degree`` once named both a function and its module: importing the module replaced the
    function. No package may export a name that is also one of its submodules, and no module file is private."""
    import importlib
    import pkgutil

    import hiddenpop

    clashes, private = [], []
    for info in pkgutil.walk_packages(hiddenpop.__path__, "hiddenpop."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_") and leaf != "__main__":
            private.append(info.name)
        if info.ispkg:
            package = importlib.import_module(info.name)
            names = set(getattr(package, "__all__", []))
            submodules = {m.name for m in pkgutil.iter_modules(package.__path__)}
            clashes += [f"{info.name}.{n}" for n in names & submodules
                        if not isinstance(getattr(package, n, None), type(package))]
    assert not clashes, f"exported names that are also submodules: {clashes}"
    assert not private, f"private modules: {private}"


#: Libraries worth importing inside a function: each costs start-up time a command or a notebook that does not use
#: it should not pay (the command line's own library, Typer, is one: a family reading a spec never loads it). A
#: dotted name is one subpackage: ``scipy.optimize`` (about 0.1 s), ``scipy.stats`` (about 0.4 s), ``scipy.special``
#: (about 0.2 s: its array-API layer imports every NumPy submodule; its compiled functions come from
#: ``hiddenpop.special`` without it) and ``scipy.fft`` (which imports ``scipy.special``) are heavy where
#: ``scipy.linalg`` is not.
HEAVY = {"jax", "jaxlib", "numpyro", "arviz", "lightgbm", "mapie", "sklearn", "dask", "distributed", "duckdb",
         "plotly", "matplotlib", "docx", "selenium", "pyreadstat", "openpyxl", "pyarrow", "jinja2", "typer",
         "scipy.fft", "scipy.optimize", "scipy.special", "scipy.stats"}


def _is_heavy(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:depth]) in HEAVY for depth in range(1, len(parts) + 1))


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
    return found


TOP_LEVEL = {name: _top_level_imports(path) for name, path in MODULES.items()}


def _loads_heavy(module: str, seen: set[str]) -> bool:
    """Whether importing ``module`` loads a heavy library (directly or through hiddenpop modules it imports)."""
    if module in seen:
        return False
    seen.add(module)
    return _is_heavy(module) or any(_loads_heavy(m, seen) for m in TOP_LEVEL.get(module, ()))


def test_function_level_imports_are_only_for_heavy_libraries_and_say_so():
    """An import inside a function hides a dependency; it is allowed only to keep a heavy library off the path
    of code that does not use it, and a comment on it (or on the import block it opens) says so."""
    offenders = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                               for a in node.names]
                else:
                    continue
                heavy = any(_loads_heavy(t, set()) for t in targets)
                start = node.lineno - 1
                while start > 0 and lines[start - 1].strip().startswith(("import ", "from ")):
                    start -= 1  # the comment may head a block of imports
                said = any("#" in line for line in lines[start - 1 if start else 0:node.end_lineno])
                if not (heavy and said):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
