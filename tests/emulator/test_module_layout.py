"""The emulator's modules: each says what it holds, and their run-time imports form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

EMULATOR = Path(__file__).resolve().parents[2] / "emulator"


def _module_name(path: Path) -> str:
    return "emulator" if path.stem == "__init__" else f"emulator.{path.stem}"


def _runtime_imports(tree: ast.Module) -> set[str]:
    """The emulator modules a module imports when it runs (imports under `if TYPE_CHECKING:` left out)."""
    found: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "emulator":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "emulator")
        pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return found


def _import_graph() -> dict[str, set[str]]:
    return {
        _module_name(path): _runtime_imports(ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(EMULATOR.glob("*.py"))
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, as the modules along it, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"emulator.a": {"emulator.b"}, "emulator.b": {"emulator.c"}, "emulator.c": {"emulator.a"}}

    assert _cycle(graph) == ["emulator.a", "emulator.b", "emulator.c", "emulator.a"]


def test_the_emulator_modules_import_one_another_without_a_cycle() -> None:
    graph = _import_graph()

    assert {"emulator.core", "emulator.bus", "emulator.delivery", "emulator.work"} <= set(graph)
    assert _cycle(graph) is None


def test_every_emulator_module_has_a_docstring() -> None:
    missing = [
        path.name for path in sorted(EMULATOR.glob("*.py")) if not ast.get_docstring(ast.parse(path.read_text()))
    ]

    assert missing == []
