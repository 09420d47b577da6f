"""The `function` package has floors: a module imports only modules below it, never its callers.

Every import counts, also one inside a function (a lazy import is still a dependency: the
engine's warm-up once imported the steps that import the engine).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "function"


def imports(path: Path, package: str = "function") -> set[str]:
    """The modules of `package` that the module at `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package if node.level else (node.module or "")
            if node.level and node.module:
                base = f"{package}.{node.module}"
            if base == package:  # `from . import x, y`: modules x and y
                found |= {f"{package}.{alias.name}" for alias in node.names}
            elif base.startswith(f"{package}."):
                found.add(base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(f"{package}.")}
    return found


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (the package itself not)."""
    modules = {
        f"{package.name}.{p.relative_to(package).with_suffix('').as_posix().replace('/', '.')}": p
        for p in package.rglob("*.py")
        if p.name != "__init__.py"
    }
    return {name: imports(path, package.name) & set(modules) for name, path in modules.items()}


def test_no_module_of_the_function_package_imports_its_callers():
    dependencies = graph()
    assert {"function.engine", "function.detect", "function.pipeline"} <= set(dependencies)
    assert "function.engine" in dependencies["function.detect"]  # the graph sees imports
    try:
        order = list(TopologicalSorter(dependencies).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert set(order) == set(dependencies)


def test_a_lazy_import_of_a_caller_is_a_cycle(tmp_path):
    package = tmp_path / "function"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text("def warm_up():\n    from . import detect\n")
    (package / "detect.py").write_text("from .engine import warm_up\n")
    with pytest.raises(CycleError):
        TopologicalSorter(graph(package)).prepare()
