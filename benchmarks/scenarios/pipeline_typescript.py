"""A TypeScript file through the whole pipeline: `sup.run_file(sid, "shapes.ts")` the first
time its text is seen (stripped by the transpiler, in a clone of its sandbox) and when it was
stripped before (the cache by content). References: the JavaScript it strips to, run the same
way (what TypeScript costs), and native QuickJS evaluating that JavaScript.

The transpiler's packages come from the npm registry (fetched once, in the setup, into the
benchmark's data directory): without a registry this scenario cannot run, and says so."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.engines import NATIVE, VM, NativeQuickJS
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.supervised import BASE_COMMIT, WORKSPACE, open_supervisor
from benchmarks.timing import CheckFailed, Plan, Sampler, Stats, format_seconds
from benchmarks.workloads import Workload

SHAPES_TS = """// Shapes, as a model would write them: interfaces, a union, an enum, a class, generics.
export enum Kind { Circle, Square, Rectangle }

export interface Circle { kind: Kind.Circle; radius: number }
export interface Square { kind: Kind.Square; side: number }
export interface Rectangle { kind: Kind.Rectangle; width: number; height: number }
export type Shape = Circle | Square | Rectangle;

export function area(shape: Shape): number {
  switch (shape.kind) {
    case Kind.Circle: return Math.PI * shape.radius ** 2;
    case Kind.Square: return shape.side * shape.side;
    case Kind.Rectangle: return shape.width * shape.height;
  }
}

class Registry<T extends { kind: Kind }> {
  private readonly items: T[] = [];
  constructor(private readonly label: string) {}
  add(item: T): this { this.items.push(item); return this; }
  total(measure: (item: T) => number): number {
    return this.items.reduce((sum: number, item: T) => sum + measure(item), 0);
  }
  get name(): string { return this.label; }
}

function biggest<T>(items: readonly T[], by: (t: T) => number): T | undefined {
  let best: T | undefined;
  for (const item of items) if (best === undefined || by(item) > by(best)) best = item;
  return best;
}

const shapes: Shape[] = [];
for (let i = 1; i <= 50; i++) {
  shapes.push({ kind: Kind.Square, side: i });
  shapes.push({ kind: Kind.Rectangle, width: i, height: 2 });
}
const registry = new Registry<Shape>("shapes");
for (const s of shapes) registry.add(s);
const top = biggest(shapes, area) as Square;
export const result: number = registry.total(area) + top.side;
"""
EXPECTED = sum(i * i + 2 * i for i in range(1, 51)) + 50

FIRST = "vm-system: sup.run_file(shapes.ts), text not seen before (stripped)"
CACHED = "vm-system: sup.run_file(shapes.ts), stripped before (cached)"
PLAIN = "vm-system: sup.run_file(shapes.mjs), the JavaScript it strips to"


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    tree = directory / "worktree"
    tree.mkdir(parents=True, exist_ok=True)
    sup = open_supervisor(stack, directory)
    template = sup.templates.create("bench-typescript")
    session_id = sup.create_session(template.id, WORKSPACE, BASE_COMMIT, str(tree)).id
    def ok(execution: Any) -> None:
        # The module's namespace holds its other exports too: `result` is the answer.
        if execution.status != "ok":
            raise CheckFailed(f"execution {execution.id} ended {execution.status}: {execution.error}")
        got = (execution.result or {}).get("json") or {}
        if got.get("result") != EXPECTED:
            raise CheckFailed(f"expected result {EXPECTED}, got {got.get('result')!r}")

    (tree / "shapes.ts").write_text(SHAPES_TS, encoding="utf-8")
    first = sup.run_file(session_id, "shapes.ts")  # builds the transpiler's sandbox
    if first.status != "ok":
        raise CheckFailed(f"the TypeScript file failed ({first.status}): {first.error}")
    stripped = next(iter((directory / "vm-system.db.data" / "typescript" / "stripped").glob("*.js")), None)
    if stripped is None:
        raise CheckFailed("nothing was cached for the TypeScript file")
    javascript = stripped.read_text(encoding="utf-8")
    (tree / "shapes.mjs").write_text(javascript, encoding="utf-8")
    counter = itertools.count()

    def unseen() -> None:
        # A new text each sample (a trailing comment): the cache cannot answer it.
        (tree / "fresh.ts").write_text(f"{SHAPES_TS}// {next(counter)}\n", encoding="utf-8")

    native = NativeQuickJS()
    found = native.availability()
    script = javascript.replace("export const result", "const result").replace("export ", "")
    load = Workload("typescript", "stripped", script + "\nresult;", EXPECTED, Plan(1, 1),
                    fresh_context=True)
    rows = [
        Measured(VM, FIRST, Sampler(lambda _: sup.run_file(session_id, "fresh.ts"), before=unseen,
                                    check=ok)),
        Measured(VM, CACHED, Sampler(lambda _: sup.run_file(session_id, "shapes.ts"), check=ok)),
        Measured(VM, PLAIN, Sampler(lambda _: sup.run_file(session_id, "shapes.mjs"), check=ok)),
        Measured(NATIVE, f"{NATIVE}: new context + eval(the stripped JavaScript)",
                 native.sampler(load, stack) if found.present else None, found.note,
                 baseline=True, version=found.version),
    ]

    def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
        return {"source_bytes": len(SHAPES_TS.encode()),
                "strip_cost_s": stats[FIRST].median - stats[CACHED].median,
                "cached_cost_s": stats[CACHED].median - stats[PLAIN].median}

    return Setup(rows, details=details)


def notes(d: Mapping[str, Any]) -> list[str]:
    return [f"pipeline-typescript: {d['source_bytes'] / 1024:.1f} KiB of TypeScript; stripping it "
            f"(first − cached) {format_seconds(d['strip_cost_s'])}; a cached file against its "
            f"JavaScript (cached − plain) {format_seconds(d['cached_cost_s'])}"]


def scenario() -> Scenario:
    return Scenario("pipeline-typescript", "pipeline", "a TypeScript file run-file'd, first "
                    "time (stripped in the transpiler's sandbox) and cached", "execution", setup,
                    Plan(quick_runs=10, full_runs=100, quick_warmup=1, full_warmup=5), notes=notes)
