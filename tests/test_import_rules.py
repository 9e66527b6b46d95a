"""How the adapters may import, read from the source (no module is imported): the adapters hold
no import cycle, the CLI reaches the benchmark only when `vm-system bench` runs, and the
benchmark never imports the CLI back.

Every import counts, a function's lazy one too: a cycle or an upward import through a lazy
import is the same tangle, only found later."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = "supervisor.adapters"
CLI = "supervisor.adapters.cli"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> dict[str, Path]:
    folder = ROOT.joinpath(*package.split("."))
    return {_module_name(p): p for p in sorted(folder.rglob("*.py"))}


def _imports(path: Path, *, top_level_only: bool = False) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the file; `from X import Y` names X.Y too, since Y
    may be a module. With top_level_only, imports inside a function or a class are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _graph(*packages: str) -> dict[str, set[str]]:
    """Module → the modules of these packages it imports."""
    modules = {name: path for package in packages for name, path in _modules(package).items()}
    return {name: {target for _, target in _imports(path) if target in modules and target != name}
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_adapters_hold_no_import_cycle() -> None:
    # With the benchmark: a cycle through it (the CLI runs it, it imports the CLI) counts too.
    graph = _graph(ADAPTERS, "benchmarks")
    assert len([m for m in graph if _within(m, ADAPTERS)]) > 10  # the walk found the adapters
    assert _cycles(graph) == []


def test_the_benchmark_never_imports_the_cli() -> None:
    offending = [f"{path.relative_to(ROOT)}:{line} imports {target}"
                 for path in _modules("benchmarks").values()
                 for line, target in _imports(path) if _within(target, CLI)]
    assert offending == []


def test_the_cli_imports_the_benchmark_only_when_a_command_runs() -> None:
    """`vm-system --help` must not pay for the benchmark: no CLI module imports it at the top."""
    offending = [f"{path.relative_to(ROOT)}:{line} imports {target}"
                 for module, path in _modules(ADAPTERS).items()
                 for line, target in _imports(path, top_level_only=True) if _within(target, "benchmarks")]
    assert offending == []



# The engine's face exports this helper in another part of the same change; until then the CLI
# takes it from its module.
_ENGINE_MODULES_ALLOWED = {"sandbox.log"}


def test_the_adapters_reach_the_engine_and_the_store_through_their_faces() -> None:
    """The store only through the supervisor's face (its records and errors are what the
    supervisor hands out), the engine only through `sandbox` itself, none of its modules."""
    engine_modules = set(_modules("sandbox")) - {"sandbox"} - _ENGINE_MODULES_ALLOWED
    store_modules = set(_modules("store"))
    assert "store" in store_modules and "sandbox.sandbox" in engine_modules  # the walk found them
    offending = [f"{path.relative_to(ROOT)}:{line} imports {target}"
                 for path in _modules(ADAPTERS).values()
                 for line, target in _imports(path) if target in engine_modules | store_modules]
    assert offending == []
