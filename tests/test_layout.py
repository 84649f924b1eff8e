"""The layout the code promises: a tree that reads as the data flow, without cycles.

Imports are read from the source (every import statement, wherever it stands: one inside a
function is a dependency too), so a cycle hidden behind TYPE_CHECKING or a late import
still fails here.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "alerts", "httpfields")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def imports(path: Path) -> set[str]:
    """The project modules a file imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if is_module(full) else node.module)
    return {name for name in out if name.split(".")[0] in PACKAGES}


GRAPH = {name: imports(path) for name, path in modules().items()}


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH.get(name, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", ["alerts", "httpfields"])
def test_lower_floors_never_import_the_monitor(package: str) -> None:
    offenders = {
        name: sorted(t for t in targets if t.split(".")[0] == "monitor")
        for name, targets in GRAPH.items()
        if name.split(".")[0] == package
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_httpfields_imports_neither_alerts_nor_monitor() -> None:
    assert all(
        t.split(".")[0] == "httpfields"
        for name, targets in GRAPH.items()
        if name.startswith("httpfields")
        for t in targets
    )


def test_each_stage_is_a_package_and_only_the_store_speaks_sql() -> None:
    for stage in ("fetch", "parse", "match", "store"):
        assert (ROOT / "monitor" / stage / "__init__.py").is_file()
    speaks_sql = sorted(
        name
        for name, path in modules().items()
        if "sqlalchemy" in {n.split(".")[0] for n in _all_imports(path)}
    )
    assert all(name.startswith("monitor.store") for name in speaks_sql), speaks_sql


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def _all_imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out
