"""The layout of the package holds (docs/architecture.md): no import cycle, lazy imports
included; the core never imports a database driver; a store imports only the few core modules
that describe jobs; the CLI and the dashboard go through ``onward.admin``, never a store."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "onward"

#: What a store may import from the rest of Onward (ARCHITECTURE.md, rule 1). ``retry`` holds
#: the one backoff helper every waiting loop uses, reconnects included.
STORE_MAY_IMPORT = {"onward.records", "onward.lifecycle", "onward.serialization", "onward.errors", "onward.retry"}
#: Third-party packages only integrations (and the PostgreSQL store, for the drivers) may import.
DRIVERS = ("psycopg", "psycopg_pool", "django", "django_tasks", "prometheus_client", "opentelemetry", "sqlalchemy")
#: Third-party packages of the user interfaces.
INTERFACE_ONLY = ("starlette", "jinja2", "uvicorn", "click", "rich")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _type_checking_lines(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(n.lineno for n in ast.walk(sub) if hasattr(n, "lineno"))
    return skip


@functools.cache
def _imports(module: str) -> tuple[str, ...]:
    return tuple(_scan(module))


def _scan(module: str) -> Iterator[str]:
    """Every module ``module`` imports at run time (at load or lazily), as written."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                full = f"{prefix}.{alias.name}"
                yield full if full in MODULES else prefix


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@functools.cache
def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {_resolve(name) for name in _imports(module) if name.startswith("onward")}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _third_party(module: str) -> set[str]:
    return {name.split(".")[0] for name in _imports(module) if not name.startswith("onward")}


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == []


def _is(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_integrations_and_the_postgresql_store_import_drivers(module: str) -> None:
    if _is(module, "onward.contrib", "onward.stores.postgres"):
        return
    assert _third_party(module) & set(DRIVERS) == set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_interfaces_import_their_frameworks(module: str) -> None:
    if _is(module, "onward.cli", "onward.dashboard", "onward.demo", "onward.contrib"):
        return
    assert _third_party(module) & set(INTERFACE_ONLY) == set()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is(m, "onward.stores") and m != "onward.stores"))
def test_a_store_imports_only_what_describes_jobs(module: str) -> None:
    outside = {t for t in _graph()[module] if not _is(t, "onward.stores")}
    assert outside <= STORE_MAY_IMPORT, f"{module} imports {sorted(outside - STORE_MAY_IMPORT)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is(m, "onward.cli", "onward.dashboard")))
def test_the_cli_and_the_dashboard_never_reach_a_store(module: str) -> None:
    assert {t for t in _graph()[module] if _is(t, "onward.stores")} == set()


def test_every_module_is_small() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert long == {}
