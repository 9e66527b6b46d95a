"""An ES module importing a 20-module worktree graph (benchmarks/module_graph.py) through the
whole pipeline: `sup.run_file(sid, "main.mjs")` in a new session (every module resolved, read,
parsed and evaluated), and again in a session that imported it already (the modules come from
its cache: only the entry runs). References: the same code bundled into one script, through the
same pipeline (what the module system costs), and native QuickJS evaluating the bundle in a new
context."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.engines import NATIVE, VM, NativeQuickJS
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.module_graph import MAIN, MODULES, make_graph, write_graph
from benchmarks.supervised import BASE_COMMIT, WORKSPACE, execution_expects, open_supervisor
from benchmarks.timing import Plan, Sampler, Stats, format_seconds
from benchmarks.workloads import Workload

FIRST = f"vm-system: sup.run_file(main.mjs), {MODULES} modules, a new session"
CACHED = f"vm-system: sup.run_file(main.mjs), {MODULES} modules already imported"
BUNDLED = "vm-system: sup.run_file(bundle.js), the same code in one script, a new session"
BUNDLE = "bundle.js"


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    graph = make_graph()
    tree = directory / "worktree"
    write_graph(graph, tree)
    (tree / BUNDLE).write_text(graph.bundle, encoding="utf-8")
    sup = open_supervisor(stack, directory)
    template = sup.templates.create("bench-imports")
    imported = execution_expects({"total": graph.expected})
    bundled = execution_expects(graph.expected)

    def new_session() -> str:
        return sup.create_session(template.id, WORKSPACE, BASE_COMMIT, str(tree)).id

    def close(session_id: str) -> None:
        sup.close_session(session_id)

    warm = new_session()
    imported(sup.run_file(warm, MAIN))
    native = NativeQuickJS()
    found = native.availability()
    load = Workload("graph", "bundle", graph.bundle, graph.expected, Plan(1, 1), fresh_context=True)
    rows = [
        Measured(VM, FIRST, Sampler(lambda sid: sup.run_file(sid, MAIN), before=new_session,
                                    after=close, check=imported)),
        Measured(VM, CACHED, Sampler(lambda _: sup.run_file(warm, MAIN), check=imported)),
        Measured(VM, BUNDLED, Sampler(lambda sid: sup.run_file(sid, BUNDLE), before=new_session,
                                      after=close, check=bundled)),
        Measured(NATIVE, f"{NATIVE}: new context + eval(bundle)",
                 native.sampler(load, stack) if found.present else None, found.note,
                 baseline=True, version=found.version),
    ]

    def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
        return {"modules": MODULES, "source_bytes": sum(len(t.encode()) for t in graph.files.values()),
                "module_system_cost_s": stats[FIRST].median - stats[BUNDLED].median}

    return Setup(rows, details=details)


def notes(d: Mapping[str, Any]) -> list[str]:
    return [f"pipeline-imports: {d['modules']} modules, {d['source_bytes'] / 1024:.0f} KiB; what "
            f"the module system costs on a first import (first − bundled): "
            f"{format_seconds(d['module_system_cost_s'])}"]


def scenario() -> Scenario:
    return Scenario("pipeline-imports", "pipeline", f"an ES module importing a {MODULES}-module "
                    "worktree graph, first time and cached", "execution", setup,
                    Plan(quick_runs=10, full_runs=100, quick_warmup=1, full_warmup=5), notes=notes)
