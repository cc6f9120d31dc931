"""The shape of the package (docs/ARCHITECTURE.md): no import circle, and imports only go down the layers.

Every module of src/transcend is parsed, and every import counts, also those inside functions (the
light entry points import heavy modules late, but a late import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "transcend"

LAYERS = [
    {"errors", "files"},
    {"transcript", "card"},
    {"sampling", "model", "experts"},
    {"data", "inference"},
    {"training", "export", "uci"},
    {"tournaments"},
    {"reproduce"},
    {"cli"},
]
"""The package's parts, lowest first: a part imports only from itself and from lower layers
(``transcend`` itself, for ``__version__``, from anywhere)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports, anywhere in it (``from .x import y`` may name module x.y)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imported_modules(path, modules) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def part(module: str) -> str:
    """The top-level part of the package a module belongs to (``transcend.uci.engine`` -> ``uci``)."""
    return module.split(".")[1] if "." in module else ""


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "transcend.uci.engine" in graph["transcend.uci.main"]  # imported late, inside main()
    assert "transcend.inference.torch_backend" in graph["transcend.export"]  # inside verify()


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert len(graph) > 40
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    packages = {}
    for module, targets in graph.items():
        packages.setdefault(part(module), set()).update(part(t) for t in targets if part(t) != part(module))
    assert find_cycle(packages) is None, " -> ".join(find_cycle(packages))


def test_a_circle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_go_down_the_layers():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    graph = import_graph()
    assert {part(m) for m in graph} - {""} == set(rank), "a new part of the package needs a layer here"
    wrong = [f"{module} -> {target}" for module, targets in graph.items() for target in targets
             if part(target) and part(target) != part(module) and rank[part(target)] >= rank[part(module)]]
    assert not wrong, wrong


def test_the_inference_core_knows_nothing_of_uci():
    graph = import_graph()
    for module, targets in graph.items():
        if part(module) == "inference":
            assert not {part(t) for t in targets} & {"uci", "cli", "tournaments", "export", "training"}, module
