"""The `function` package has floors: a module imports only modules below it, never its callers.

Every import counts, also one inside a function (a lazy import is still a dependency: the
engine's warm-up once imported the steps that import the engine). A package (function.layout,
function.backfill) is a module too: its __init__.py, which its submodules may import.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "function"


def imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The `modules` that the module `name` at `path` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the module's own package (`..`: its parent)
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base += f".{node.module}" if node.module else ""
            for alias in node.names:  # `from . import x`: module x if it is one, else the package
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return (found & modules) - {name}


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package (a subpackage by its __init__.py) -> the modules it imports."""
    paths = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        paths[".".join(parts[:-1] if path.name == "__init__.py" else parts)] = path
    return {name: imports(path, name, set(paths)) for name, path in paths.items()}


def test_no_module_of_the_function_package_imports_its_callers():
    dependencies = graph()
    assert {"function.engine", "function.detect", "function.pipeline"} <= set(dependencies)
    assert "function.engine" in dependencies["function.detect"]  # the graph sees imports
    assert {"function.backfill.task", "function.storage"} <= dependencies["function.backfill"]
    assert "function.backfill" in dependencies["function.backfill.__main__"]  # `from . import`
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


def test_a_submodule_importing_its_package_that_imports_it_is_a_cycle(tmp_path):
    package = tmp_path / "function"
    job = package / "job"
    job.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (job / "__init__.py").write_text("from .progress import Progress\nclass Task: ...\n")
    (job / "progress.py").write_text("from . import Task\nclass Progress: ...\n")
    assert graph(package)["function.job.progress"] == {"function.job"}
    with pytest.raises(CycleError):
        TopologicalSorter(graph(package)).prepare()
