"""A worktree graph of ES modules for the import benchmarks, and the same code as one script.

Module `m00` … `m19`: each imports the two after it (a DAG with shared dependencies, so the
loader meets each module twice but loads it once), exports a function that calls the next one,
and a few more functions of plain work, so that every module has a body worth parsing. `main.mjs` imports
`m00` and exports the total; the bundle is what a bundler would make of the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODULES = 20
MAIN = "main.mjs"


def _body(i: int) -> list[str]:
    return [f"export function helper{i}_{k}(a, b) {{ let s = 0; for (let j = 0; j < {k + 3}; j++) "
            f"s += (a * j + b) % {k + 7}; return s; }}" for k in range(8)]


def _function(i: int) -> list[str]:
    # A chain of calls (no blow-up), the second import used too.
    call = f"{i} + f{i + 1}(x)" if i + 1 < MODULES else f"{i} + x"
    lines = [f"export function f{i}(x) {{ return {call}; }}"]
    if i + 2 < MODULES:
        lines.append(f"export const uses{i} = typeof f{i + 2};")
    return lines


@dataclass(frozen=True)
class ModuleGraph:
    files: dict[str, str]  # worktree path → text
    bundle: str  # the same code as one script; its completion value is the total
    expected: int


def make_graph() -> ModuleGraph:
    files: dict[str, str] = {}
    bundled: list[str] = []
    for i in range(MODULES):
        later = [n for n in (i + 1, i + 2) if n < MODULES]
        imports = [f"import {{ f{n} }} from './m{n:02d}.mjs';" for n in later]
        lines = [*imports, *_body(i), *_function(i)]
        files[f"m{i:02d}.mjs"] = "\n".join(lines) + "\n"
        bundled.extend(line.removeprefix("export ") for line in lines[len(imports):])
    files[MAIN] = "import { f0 } from './m00.mjs';\nexport const total = f0(1);\n"
    expected = sum(range(MODULES)) + 1
    return ModuleGraph(files, "\n".join(bundled) + "\nf0(1);\n", expected)


def write_graph(graph: ModuleGraph, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in graph.files.items():
        (directory / path).write_text(text, encoding="utf-8")
