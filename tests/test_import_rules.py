"""How the packages may import, read from the source (no module is imported): no import cycle
anywhere; `sandbox`, `store` and `vocabulary` never import `supervisor`, and `sandbox` and
`store` never each other; outside a package only its face (`from sandbox import ...`) is used;
the CLI reaches the benchmark only when `vm-system bench` runs, and the benchmark never imports
the CLI back.

Every import counts, a function's lazy one too: a cycle or an upward import through a lazy
import is the same tangle, only found later."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
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




def test_the_adapters_reach_the_engine_and_the_store_through_their_faces() -> None:
    """The store only through the supervisor's face (its records and errors are what the
    supervisor hands out), the engine only through `sandbox` itself, none of its modules."""
    engine_modules = set(_modules("sandbox")) - {"sandbox"}
    store_modules = set(_modules("store"))
    assert "store" in store_modules and "sandbox.sandbox" in engine_modules  # the walk found them
    offending = [f"{path.relative_to(ROOT)}:{line} imports {target}"
                 for path in _modules(ADAPTERS).values()
                 for line, target in _face_imports(path) if target in engine_modules | store_modules]
    assert offending == []


PACKAGES = ("sandbox", "store", "vocabulary", "supervisor", "benchmarks")
# What each package may import of the others (its own modules it imports freely).
MAY_IMPORT = {
    "vocabulary": set(),
    "sandbox": {"vocabulary"},
    "store": {"vocabulary"},
    "supervisor": {"vocabulary", "sandbox", "store"},
    "benchmarks": {"vocabulary", "sandbox", "store", "supervisor"},
}


def _package_of(module: str) -> str | None:
    return next((p for p in PACKAGES if _within(module, p)), None)


@cache  # asked once per import of every module walked
def _face_names(package: str) -> frozenset[str]:
    """The names in a package face's `__all__`, read from its source."""
    tree = ast.parse(ROOT.joinpath(package, "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return frozenset(elt.value for elt in node.value.elts  # type: ignore[attr-defined]
                             if isinstance(elt, ast.Constant))
    return frozenset()


def _face_imports(path: Path) -> Iterator[tuple[int, str]]:
    """Like `_imports`, without the `X.Y` of a `from X import Y` whose Y is a name X's face
    exports (`from sandbox import dirty_pages` takes the function, not the module)."""
    for line, target in _imports(path):
        package, _, name = target.rpartition(".")
        if package in PACKAGES and name in _face_names(package):
            continue
        yield line, target


def test_the_face_finder_sees_through_a_face_name() -> None:
    assert "dirty_pages" in _face_names("sandbox") and "Sandbox" in _face_names("sandbox")
    assert {"SupervisorApi", "Supervisor"} <= _face_names("supervisor")


def test_no_import_cycle_anywhere() -> None:
    graph = _graph(*PACKAGES)
    assert len(graph) > 100  # the walk found the packages
    assert _cycles(graph) == []


def test_each_package_imports_only_what_it_may_and_only_through_faces() -> None:
    """`sandbox` and `store` never import `supervisor` or each other, `vocabulary` nothing;
    and outside a package, only its face: `sandbox`, never `sandbox.instance`."""
    offending = []
    for package in PACKAGES:
        for path in _modules(package).values():
            for line, target in _face_imports(path):
                other = _package_of(target)
                if other is None or other == package:
                    continue
                where = f"{path.relative_to(ROOT)}:{line} imports {target}"
                if other == "benchmarks" and _within(_module_name(path), CLI):
                    continue  # `vm-system bench`, lazily (checked above)
                if other not in MAY_IMPORT[package]:
                    offending.append(f"{where} ({package} may not import {other})")
                elif target != other:
                    offending.append(f"{where} (not {other}'s face)")
    assert offending == []


def test_the_rule_catches_an_internal_import(tmp_path: Path) -> None:
    """The walk would flag the imports these rules exist for (checked on a file of its own)."""
    sample = ROOT / "store" / "_import_rule_sample.py"
    sample.write_text("from supervisor import Supervisor\nfrom sandbox.instance import MemoryImage\n"
                      "from sandbox import dirty_pages\n", encoding="utf-8")
    try:
        found = [target for _, target in _face_imports(sample)]
    finally:
        sample.unlink()
    assert "supervisor" in found and "sandbox.instance" in found
    assert "sandbox" in found and "sandbox.dirty_pages" not in found


def test_wasmtime_private_members_are_touched_in_one_module() -> None:
    """`wasmtime._bindings`, `_ffi`, `store._context()` and the raw handles behind wasmtime-py's
    objects change without notice between releases: one module (sandbox/wasm_ffi.py) holds
    every use, so an upgrade is checked in one place."""
    owner = ROOT / "sandbox" / "wasm_ffi.py"
    # (`_instance` is left out: the benchmarks' big-heap scenario reads the Sandbox's own.)
    private_attrs = {"_context", "_bindings", "_ffi", "_memory", "_global", "_table", "_func",
                     "_from_ptr"}
    offending = []
    for package in PACKAGES:
        for path in _modules(package).values():
            if path == owner:
                continue
            for line, target in _imports(path):
                if _within(target, "wasmtime") and any(p.startswith("_") for p in target.split(".")[1:]):
                    offending.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                # self._x is the module's own state; a private attribute of anything else is
                # a wasmtime object's inside.
                if (isinstance(node, ast.Attribute) and node.attr in private_attrs
                        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                    offending.append(f"{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}")
    assert offending == []
    owner_text = owner.read_text(encoding="utf-8")
    assert "_context()" in owner_text and "_bindings" in owner_text  # the owner is where they went
