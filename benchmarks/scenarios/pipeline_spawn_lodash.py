"""A new session from a template listing lodash from the package store (`libs add
lodash@4.17.21`: its 73 KiB `lodash.min.js` evaluated once, in the base image): `sup.create_
session`, against a template with the generated 70 KiB library file of pipeline-spawn-70k,
measured in the same run, and native QuickJS loading lodash into a new context.

lodash comes from the npm registry (fetched once, in the setup): without a registry this
scenario cannot run, and says so."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.engines import NATIVE, VM, NativeQuickJS
from benchmarks.harness import Measured, Scenario, Setup
from benchmarks.library import LIBRARY_CHECK, LIBRARY_NAME, make_library, native_spawn
from benchmarks.supervised import (
    BASE_COMMIT,
    WORKSPACE,
    close_sessions,
    execution_expects,
    open_supervisor,
    worktree,
)
from benchmarks.timing import CheckFailed, Plan, Sampler, Stats, format_seconds
from benchmarks.workloads import Workload

LODASH = "lodash@4.17.21"
CHECK = "_.chunk([1, 2, 3, 4], 2).length"
STORE = f"vm-system: sup.create_session, template with {LODASH} (package store)"
FILE = "vm-system: sup.create_session, template with a 70 KiB library file (pipeline-spawn-70k)"


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    library = make_library()
    library_dir = directory / "libraries"
    library_dir.mkdir(parents=True, exist_ok=True)
    (library_dir / f"{LIBRARY_NAME}.js").write_text(library.source, encoding="utf-8")
    sup = open_supervisor(stack, directory, library_dir=library_dir)
    [lodash] = sup.packages.add(LODASH)
    script = lodash.tree.read("lodash.min.js").decode("utf-8")
    with_lodash = sup.templates.create("bench-spawn-lodash")
    sup.templates.add_library(with_lodash.id, LODASH)
    with_file = sup.templates.create("bench-spawn-file")
    sup.templates.add_library(with_file.id, LIBRARY_NAME)
    tree = worktree(directory)
    sees_lodash = execution_expects(2)
    sees_file = execution_expects(library.expected_check)

    def spawner(template_id: str) -> Any:
        def spawn(made: list[str]) -> Any:
            session = sup.create_session(template_id, WORKSPACE, BASE_COMMIT, tree)
            made.append(session.id)
            return session
        return spawn

    def spawned(code: str, check: Any) -> Any:
        def ok(session: Any) -> None:
            if session.status != "ready":
                raise CheckFailed(f"session {session.id} is {session.status}: {session.last_error}")
            check(sup.repl(session.id, code))
        return ok

    sessions: list[str] = []
    stack.callback(close_sessions, sup, sessions)
    native = NativeQuickJS()
    found = native.availability()
    load = Workload("lodash", "load", "void 0", None, Plan(1, 1), fresh_context=True,
                    prelude=script, after=CHECK, after_expected=2)
    rows = [
        Measured(VM, STORE, Sampler(spawner(with_lodash.id), before=lambda: sessions,
                                    after=lambda made: close_sessions(sup, made),
                                    check=spawned(CHECK, sees_lodash))),
        Measured(VM, FILE, Sampler(spawner(with_file.id), before=lambda: sessions,
                                   after=lambda made: close_sessions(sup, made),
                                   check=spawned(LIBRARY_CHECK, sees_file))),
        Measured(NATIVE, f"{NATIVE}: new context + eval(lodash.min.js)",
                 native_spawn(native, load, stack) if found.present else None, found.note,
                 baseline=True, version=found.version),
    ]

    def details(stats: Mapping[str, Stats]) -> dict[str, Any]:
        return {"lodash_bytes": len(script.encode()), "file_bytes": len(library.source.encode()),
                "store_vs_file_s": stats[STORE].median - stats[FILE].median}

    return Setup(rows, details=details)


def notes(d: Mapping[str, Any]) -> list[str]:
    return [f"pipeline-spawn-lodash: lodash.min.js {d['lodash_bytes'] / 1024:.0f} KiB against a "
            f"{d['file_bytes'] / 1024:.0f} KiB file; a session with lodash from the store costs "
            f"{format_seconds(d['store_vs_file_s'])} more than one with the file"]


def scenario() -> Scenario:
    return Scenario("pipeline-spawn-lodash", "pipeline", "a session from a template with lodash "
                    "from the package store (base image cloned)", "session", setup,
                    Plan(quick_runs=15, full_runs=300, quick_warmup=2, full_warmup=20), notes=notes)
