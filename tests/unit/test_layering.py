"""The folders are the architecture: who may import whom, and no import cycles.

Read from the source with `ast` (nothing is imported), counting imports inside functions too;
imports under `if TYPE_CHECKING:` are left out (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("libs", "services")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The project module `name` refers to (a module, or the package of an imported name)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base
                yield from (f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.orelse)
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        yield from walk([child])

    yield from walk(ast.parse(path.read_text()).body)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_owner(name) for name in _imported(module, path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


GRAPH = _graph()


def _allowed(source: str, target: str) -> bool:
    if source.startswith("libs.pipeline"):
        return not target.startswith(("libs.events", "services"))
    if source.startswith("libs.events"):
        return not target.startswith(("libs.pipeline", "services"))
    if source.startswith("libs.artifacts"):  # bytes under keys: knows no model, event or service
        return not target.startswith(("libs.pipeline", "libs.events", "services"))
    if source.startswith("libs"):
        return not target.startswith("services")
    # A service uses its own package, libs, and the composition root; only the CLI, which runs
    # every service in one process for `ktrdr up`, imports the others.
    if target == "libs" or target.startswith("libs."):  # `from libs import metrics` names both
        return True
    service, other = source.split(".")[1], target.split(".")[1]
    return other in (service, "bootstrap") or service == "cli"


def test_the_scan_sees_the_whole_tree() -> None:
    assert "libs.pipeline.pipeline" in GRAPH and "services.bootstrap" in GRAPH
    assert "libs.events.catalog" in GRAPH["libs.events.codec"]


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("libs.pipeline.pipeline", "libs.events.catalog", False),
        ("libs.events.store.sql", "services.bootstrap", False),
        ("services.api.app", "services.trainer.service", False),
        ("services.api.app", "services.bootstrap", True),
        ("services.cli.embedded", "services.trainer.service", True),
    ],
)
def test_the_rules_themselves(source: str, target: str, allowed: bool) -> None:
    assert _allowed(source, target) is allowed


def test_imports_follow_the_layers() -> None:
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in GRAPH.items()
        for target in targets
        if not _allowed(source, target)
    )
    assert wrong == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []
