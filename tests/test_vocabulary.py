"""The vocabulary is the one place its words are written: it depends on nothing but the standard
library (so `sandbox` and `store` may use it), and no other module writes its names or its
tables out again."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import get_args

import pytest

import vocabulary
from sandbox import Limits
from supervisor.settings import Ceilings, LimitsPatch

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vocabulary"
# Every package that takes its words from the vocabulary.
USERS = ("sandbox", "store", "supervisor", "benchmarks")

# The closed sets of words, each of which must be written out in the vocabulary only.
WORD_SETS: dict[str, frozenset[str]] = {
    "LIMIT_NAMES": frozenset(vocabulary.LIMIT_NAMES),
    "SESSION_STATUSES": vocabulary.SESSION_STATUSES,
    "EXECUTION_KINDS": vocabulary.EXECUTION_KINDS,
    "EXECUTION_STATUSES": vocabulary.EXECUTION_STATUSES,
    "FINISHED_STATUSES": vocabulary.FINISHED_STATUSES,
    "EVENT_TYPES": vocabulary.EVENT_TYPES,
    "TERMINAL_EVENT_TYPES": vocabulary.TERMINAL_EVENT_TYPES,
    "OutcomeErrorKind": frozenset(get_args(vocabulary.OutcomeErrorKind)),
}


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                roots.add("vocabulary")  # relative: inside the package
            elif node.module:
                roots.add(node.module.split(".")[0])
    return roots


def test_the_vocabulary_imports_only_the_standard_library() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert sources, "the vocabulary package has no modules"
    for path in sources:
        roots = _imported_roots(ast.parse(path.read_text(encoding="utf-8")))
        foreign = {r for r in roots if r != "vocabulary" and r not in sys.stdlib_module_names}
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_importing_the_vocabulary_loads_nothing_else() -> None:
    # A fresh interpreter: whatever the suite imported already must not hide a dependency.
    probe = ("import sys; before = set(sys.modules); import vocabulary; "
             "print('\\n'.join(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=True)
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    foreign = {n for n in loaded if n != "vocabulary" and n not in sys.stdlib_module_names}
    assert "vocabulary" in loaded
    assert not foreign, f"importing vocabulary loads {sorted(foreign)}"


def _top_level_bindings(tree: ast.Module) -> list[tuple[int, str]]:
    """Names bound at module level or in a class body (constants and tables, not locals)."""
    bodies: list[list[ast.stmt]] = [tree.body]
    bodies += [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    found = []
    for body in bodies:
        for stmt in body:
            targets: list[ast.expr] = []
            if isinstance(stmt, ast.Assign):
                targets = list(stmt.targets)
            elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
                targets = [stmt.target]
            for target in targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        found.append((stmt.lineno, node.id))
    return found


def _exported(tree: ast.Module) -> set[str]:
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets)
                and isinstance(stmt.value, ast.List | ast.Tuple)):
            return {e.value for e in stmt.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def _strings(nodes: list[ast.expr]) -> frozenset[str] | None:
    """The strings of a literal made of string constants only, else None."""
    if not nodes or not all(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in nodes):
        return None
    return frozenset(n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _written_again(tree: ast.Module) -> list[tuple[int, str]]:
    """The vocabulary's word sets and limit tables spelled out in this module's source."""
    limit_names = WORD_SETS["LIMIT_NAMES"]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            words = _strings(list(node.elts))
            for name, wanted in WORD_SETS.items():
                if words == wanted:
                    found.append((node.lineno, f"the words of {name}"))
        elif isinstance(node, ast.Dict):
            keys = _strings([k for k in node.keys if k is not None])
            if keys is not None and limit_names <= keys:
                found.append((node.lineno, "a table of every limit"))
        elif isinstance(node, ast.Call):
            given = {k.arg for k in node.keywords if k.arg is not None}
            if limit_names <= given and all(isinstance(k.value, ast.Constant) for k in node.keywords):
                found.append((node.lineno, "every limit given as literal arguments"))
        elif isinstance(node, ast.ClassDef):
            defaults = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)
                        and isinstance(s.target, ast.Name) and s.value is not None
                        and not (isinstance(s.value, ast.Constant) and s.value.value is None)
                        and not isinstance(s.value, ast.Subscript)}
            if limit_names <= defaults:
                found.append((node.lineno, f"class {node.name} writes a default for every limit"))
    return found


def problems_in(source: str) -> list[str]:
    """Every way `source` redefines what the vocabulary defines."""
    tree = ast.parse(source)
    names = set(vocabulary.__all__)
    out = [f"line {line}: defines {name}" for line, name in _top_level_bindings(tree) if name in names]
    out += [f"__all__ re-exports {name} (import it from vocabulary)" for name in sorted(_exported(tree) & names)]
    out += [f"line {line}: {what}" for line, what in _written_again(tree)]
    return out


def test_no_module_redefines_the_vocabulary() -> None:
    offenders = []
    for package in USERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            offenders += [f"{path.relative_to(ROOT)}: {p}" for p in problems_in(path.read_text(encoding="utf-8"))]
    assert not offenders, "take these from the vocabulary instead:\n" + "\n".join(offenders)


# Second copies of every limit, spelled from the vocabulary's names so they stay complete.
_EVERY = list(vocabulary.LIMIT_NAMES)


@pytest.mark.parametrize("source", [
    'TERMINAL_EVENT_TYPES = frozenset({"value", "exception", "limit"})',
    'class Client:\n    DEFAULT_LIMITS: dict = {}',
    '__all__ = ["EVENT_TYPES"]',
    'STATUSES = ("starting", "ready", "crashed", "closed")',
    'Status = Literal["ok", "error", "timeout", "limit_exceeded", "cancelled", "crashed"]',
    'TERMINAL = {"limit", "value", "exception"}',
    "LIMITS = {" + ", ".join(f'"{n}": {i}' for i, n in enumerate(_EVERY, 1)) + "}",
    "LIMITS = Limits(" + ", ".join(f"{n}={i}" for i, n in enumerate(_EVERY, 1)) + ")",
    "class Ceilings:\n" + "".join(f"    {n}: int = {i}\n" for i, n in enumerate(_EVERY, 1)),
])
def test_the_check_catches_a_second_copy(source: str) -> None:
    assert problems_in(source), f"not caught: {source!r}"


@pytest.mark.parametrize("source", [
    "from vocabulary import TERMINAL_EVENT_TYPES, DEFAULT_LIMITS",
    "class Limits:\n" + "".join(f'    {n}: int = DEFAULT_LIMITS["{n}"]\n' for n in _EVERY),
    "class Patch:\n" + "".join(f"    {n}: int | None = None\n" for n in _EVERY),
    'Limits(cpu_ms=10_000, wall_ms=20_000, mem_mb=256)',
])
def test_the_check_lets_uses_through(source: str) -> None:
    assert not problems_in(source)


def test_every_limit_type_has_exactly_the_vocabularys_limits() -> None:
    names = list(vocabulary.LIMIT_NAMES)
    assert [f.name for f in fields(Limits)] == names
    assert list(Ceilings.model_fields) == names
    assert list(LimitsPatch.model_fields) == names
    assert list(vocabulary.DEFAULT_LIMITS) == names
    assert list(vocabulary.DEFAULT_CEILINGS) == names
    assert Limits() == Limits(**dict(vocabulary.DEFAULT_LIMITS.items()))
    assert Ceilings().model_dump() == dict(vocabulary.DEFAULT_CEILINGS.items())


def test_the_vocabularys_tables_cover_their_words() -> None:
    assert set(vocabulary.STATUS_OF_KIND) == WORD_SETS["OutcomeErrorKind"]
    assert set(vocabulary.STATUS_OF_KIND.values()) <= vocabulary.FINISHED_STATUSES
    assert set(vocabulary.TERMINAL_FOR_STATUS) == vocabulary.FINISHED_STATUSES
    for terminal in vocabulary.TERMINAL_FOR_STATUS.values():
        assert terminal <= vocabulary.TERMINAL_EVENT_TYPES
    assert vocabulary.TERMINAL_EVENT_TYPES <= vocabulary.EVENT_TYPES
    assert vocabulary.FINISHED_STATUSES | {"running"} == vocabulary.EXECUTION_STATUSES
