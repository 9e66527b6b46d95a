"""A new session from a template with a 70 KiB library: `sup.create_session` (the supervisor
clones the template's base image). Outside the timed part each new session must answer a REPL
about the library's global, and is closed. References: the engine's own clone of a sandbox
holding the library, loading the library afresh (what cloning avoids), the signed image of that
state, and native QuickJS loading the library into a new context."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.checks import outcome_expects
from benchmarks.engines import LIMITS, NATIVE, VM, NativeQuickJS
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
from benchmarks.timing import CheckFailed, Plan, Sampler, Stats
from benchmarks.workloads import Workload
from sandbox import Sandbox

IMAGE_KEY = b"pipeline-bench-key-0123456789abcdef"


def _close_sandboxes(made: list[Sandbox]) -> None:
    for sb in made:
        sb.close()
    made.clear()


def setup(stack: ExitStack, directory: Path, quick: bool) -> Setup:
    library = make_library()
    library_dir = directory / "libraries"
    library_dir.mkdir(parents=True, exist_ok=True)
    (library_dir / f"{LIBRARY_NAME}.js").write_text(library.source, encoding="utf-8")
    sup = open_supervisor(stack, directory, library_dir=library_dir)
    template = sup.templates.create("bench-spawn")
    sup.templates.add_library(template.id, LIBRARY_NAME)
    tree = worktree(directory)
    sees_library = execution_expects(library.expected_check)
    sandbox_sees_library = outcome_expects(library.expected_check)

    def spawn(made: list[str]) -> Any:
        session = sup.create_session(template.id, WORKSPACE, BASE_COMMIT, tree)
        made.append(session.id)
        return session

    def spawned_ok(session: Any) -> None:
        if session.status != "ready":
            raise CheckFailed(f"session {session.id} is {session.status}: {session.last_error}")
        sees_library(sup.repl(session.id, LIBRARY_CHECK))

    sessions: list[str] = []
    stack.callback(close_sessions, sup, sessions)

    base = Sandbox(limits=LIMITS)
    stack.callback(base.close)
    loaded = base.eval(library.source, filename=f"library:{LIBRARY_NAME}")
    if loaded.status != "ok":
        raise CheckFailed(f"the generated library failed: {loaded.error}")
    base.checkpoint("base")

    def clone(made: list[Sandbox]) -> Sandbox:
        sb = base.clone()
        made.append(sb)
        return sb

    def evaluate(made: list[Sandbox]) -> Sandbox:
        sb = Sandbox(limits=LIMITS)
        made.append(sb)
        sb.eval(library.source, filename=f"library:{LIBRARY_NAME}")
        return sb

    def image_ok(data: Any) -> None:
        restored = Sandbox.from_image(data, key=IMAGE_KEY, context="bench")
        try:
            sandbox_sees_library(restored.eval(LIBRARY_CHECK))
        finally:
            restored.close()

    clones: list[Sandbox] = []
    fresh: list[Sandbox] = []
    native = NativeQuickJS()
    found = native.availability()
    # Native QuickJS has no image to clone: a new context loading the library is its spawn.
    load = Workload("library", "load", "void 0", None, Plan(1, 1), fresh_context=True,
                    prelude=library.source, after=LIBRARY_CHECK,
                    after_expected=library.expected_check)
    size = f"{len(library.source) / 1024:.0f} KiB"
    return Setup([
        Measured(VM, f"vm-system: sup.create_session, template with a {size} library",
                 Sampler(spawn, before=lambda: sessions,
                         after=lambda made: close_sessions(sup, made), check=spawned_ok)),
        Measured(VM, "vm-system: sb.clone() of a sandbox holding the library",
                 Sampler(clone, before=lambda: clones, after=_close_sandboxes,
                         check=lambda sb: sandbox_sees_library(sb.eval(LIBRARY_CHECK)))),
        Measured(VM, "vm-system: Sandbox() + eval(library), no cloning",
                 Sampler(evaluate, before=lambda: fresh, after=_close_sandboxes,
                         check=lambda sb: sandbox_sees_library(sb.eval(LIBRARY_CHECK)))),
        Measured(VM, "vm-system: sb.image() of that state (zlib + HMAC)",
                 Sampler(lambda _: base.image(key=IMAGE_KEY, context="bench"), check=image_ok)),
        Measured(NATIVE, f"{NATIVE}: new context + eval(library)",
                 native_spawn(native, load, stack) if found.present else None, found.note,
                 baseline=True, version=found.version),
    ], details=lambda stats: _details(stats, library))


def _details(stats: Mapping[str, Stats], library: Any) -> dict[str, Any]:
    return {"library_bytes": len(library.source.encode()), "library_functions": library.functions,
            "library_rows": library.rows}


def scenario() -> Scenario:
    return Scenario("pipeline-spawn-70k", "pipeline", "a session from a template with a 70 KiB "
                    "library (base image cloned)", "session", setup,
                    Plan(quick_runs=15, full_runs=300, quick_warmup=2, full_warmup=20))
