"""The Go original's behavioural contract, as it applies to the core."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from store import SessionNotFound, TemplateExists, TemplateNotFound
from supervisor import Supervisor
from supervisor.errors import (
    EngineUnsupported,
    InvalidPath,
    InvalidRequest,
    LibraryNotFound,
    ModuleNotAllowed,
    SessionBusy,
    SessionNotReady,
    StartupModeUnsupported,
    SupervisorError,
    ValidationError,
    WorktreeFileNotFound,
)


def _session(sup: Supervisor, worktree: Path, **template_setup: object) -> str:
    template = sup.templates.create(f"t-{len(sup.templates.list())}")
    for path in template_setup.get("startup", []):  # type: ignore[union-attr]
        sup.templates.add_startup_file(template.id, path)
    return sup.create_session(template.id, "ws-1", "abc123", str(worktree)).id


def _events(sup: Supervisor, execution_id: str) -> list[tuple[str, dict]]:
    return [(e.type, e.payload) for e in sup.list_events(execution_id)]


def test_state_carries_across_executions(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    sup.repl(sid, "var counter = 1; function bump() { return ++counter }")
    sup.repl(sid, "bump()")
    assert sup.repl(sid, "counter").result["json"] == 2  # type: ignore[index]


def test_repl_console_and_value(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    execution = sup.repl(sid, "console.log('x'); 20 + 22")
    assert execution.status == "ok" and execution.kind == "repl"
    assert execution.result is not None and execution.result["preview"] == "42"
    events = _events(sup, execution.id)
    assert [t for t, _ in events] == ["input_echo", "console", "value"]
    assert events[0][1] == {"text": "console.log('x'); 20 + 22"}
    assert events[1][1] == {"level": "log", "text": "x"}
    assert [e.seq for e in sup.list_events(execution.id)] == [1, 2, 3]
    assert execution.metrics["events"] == 3


def test_thrown_error_is_an_execution_with_status_error(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    execution = sup.repl(sid, "throw new Error('boom')")
    assert execution.status == "error"
    assert execution.error is not None and execution.error["message"] == "boom"
    assert [t for t, _ in _events(sup, execution.id)] == ["input_echo", "exception"]


def test_run_file_logs_and_returns(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    execution = sup.run_file(sid, "main.js")
    assert execution.kind == "run_file" and execution.path == "main.js"
    assert execution.result is not None and execution.result["preview"] == "42"
    events = _events(sup, execution.id)
    assert events[0] == ("input_echo", {"text": "main.js"})
    assert events[1] == ("console", {"level": "log", "text": "running main"})


def test_run_file_args_and_env_are_frozen_globals(sup: Supervisor, worktree: Path) -> None:
    (worktree / "args.js").write_text("'use strict'; try { args.n = 2 } catch (e) { }\n"
                                      "[args.n, env.MODE, Object.isFrozen(args)]")
    sid = _session(sup, worktree)
    execution = sup.run_file(sid, "args.js", args={"n": 1}, env={"MODE": "test"})
    assert execution.result is not None and execution.result["json"] == [1, "test", True]
    assert execution.args == {"n": 1} and execution.env == {"MODE": "test"}
    second = sup.run_file(sid, "args.js", args={"n": 5})
    assert second.result is not None and second.result["json"] == [5, None, True]


def test_startup_files_run_in_order_and_are_recorded(sup: Supervisor, worktree: Path) -> None:
    (worktree / "a.js").write_text("var order = ['a']")
    (worktree / "b.js").write_text("order.push('b'); console.log('b ran')")
    template = sup.templates.create("ordered")
    sup.templates.add_startup_file(template.id, "b.js", order_index=2)
    sup.templates.add_startup_file(template.id, "a.js", order_index=1)
    session = sup.create_session(template.id, "ws", "abc", str(worktree))
    assert session.status == "ready"
    assert sup.repl(session.id, "order.join(',')").result["json"] == "a,b"  # type: ignore[index]
    startups = [e for e in sup.list_executions(session.id) if e.kind == "startup"]
    assert sorted(e.path for e in startups) == ["a.js", "b.js"]
    assert all(e.status == "ok" for e in startups)


@pytest.mark.parametrize("where", ["startup", "run_file"])
def test_symlink_escapes_are_refused(sup: Supervisor, worktree: Path, tmp_path: Path, where: str) -> None:
    (tmp_path / "outside.js").write_text("'secret'")
    (worktree / "link.js").symlink_to(tmp_path / "outside.js")
    if where == "startup":
        template = sup.templates.create("escaping")
        sup.templates.add_startup_file(template.id, "link.js")
        with pytest.raises(InvalidPath) as info:
            sup.create_session(template.id, "ws", "abc", str(worktree))
        session = sup.get_session(info.value.details["session_id"])
        assert session.status == "crashed" and session.last_error
    else:
        sid = _session(sup, worktree)
        before = len(sup.list_executions(sid))
        with pytest.raises(InvalidPath):
            sup.run_file(sid, "link.js")
        with pytest.raises(InvalidPath):
            sup.run_file(sid, "../outside.js")
        with pytest.raises(WorktreeFileNotFound):
            sup.run_file(sid, "missing.js")
        assert len(sup.list_executions(sid)) == before  # checked before any row exists


def test_missing_library_crashes_the_session_readably(sup: Supervisor, worktree: Path, library_dir: Path) -> None:
    template = sup.templates.create("with-lib")
    sup.templates.add_library(template.id, "greet@1.0.0")
    (library_dir / "greet@1.0.0.js").unlink()
    with pytest.raises(LibraryNotFound) as info:
        sup.create_session(template.id, "ws", "abc", str(worktree))
    session = sup.get_session(info.value.details["session_id"])
    assert session.status == "crashed"
    assert "greet@1.0.0" in (session.last_error or "")
    assert session.id not in sup.runtime_summary().active_session_ids


def test_libraries_are_loaded_before_startup_files(sup: Supervisor, worktree: Path) -> None:
    (worktree / "boot.js").write_text("var greeting = greet('startup')")
    template = sup.templates.create("lib-then-startup")
    sup.templates.add_library(template.id, "greet@1.0.0")
    sup.templates.add_startup_file(template.id, "boot.js")
    sid = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    assert sup.repl(sid, "greeting").result["json"] == "hello startup"  # type: ignore[index]
    other = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    sup.repl(other, "globalThis.greet = null")
    assert sup.repl(sid, "typeof greet").result["json"] == "function"  # type: ignore[index]


def test_a_library_that_throws_is_not_valid(sup: Supervisor, worktree: Path, library_dir: Path) -> None:
    (library_dir / "broken@1.0.0.js").write_text("throw new Error('bad library')")
    template = sup.templates.create("broken-lib")
    sup.templates.add_library(template.id, "broken@1.0.0")
    with pytest.raises(LibraryNotFound, match="bad library"):
        sup.create_session(template.id, "ws", "abc", str(worktree))


def test_an_edited_library_file_makes_a_new_base(sup: Supervisor, worktree: Path, library_dir: Path) -> None:
    (library_dir / "edited@1.0.0.js").write_text("var version = 'first'")
    template = sup.templates.create("edited-lib")
    sup.templates.add_library(template.id, "edited@1.0.0")
    first = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    # Another size and mtime: the file is read again, and the base made anew.
    (library_dir / "edited@1.0.0.js").write_text("var version = 'second one'")
    os.utime(library_dir / "edited@1.0.0.js", ns=(1, 1))
    second = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    assert sup.repl(first, "version").result["json"] == "first"  # type: ignore[index]
    assert sup.repl(second, "version").result["json"] == "second one"  # type: ignore[index]
    # Replaced by a link out of the directory: refused, not served from what was read before.
    outside = worktree / "outside.js"
    outside.write_text("var version = 'outside'")
    (library_dir / "edited@1.0.0.js").unlink()
    (library_dir / "edited@1.0.0.js").symlink_to(outside)
    with pytest.raises(LibraryNotFound):
        sup.create_session(template.id, "ws", "abc", str(worktree))


def test_busy_session_refuses_a_second_execution(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    started = threading.Event()
    result: dict[str, object] = {}

    def slow() -> None:
        result["execution"] = sup.repl(
            sid, "console.log('go'); const t = Date.now(); while (Date.now() - t < 500) {} 'done'")

    original = sup._pipeline.execute

    def spy(spec, host, request, closed=lambda: False, execution_id=None):
        started.set()
        return original(spec, host, request, closed, execution_id=execution_id)

    sup._pipeline.execute = spy  # type: ignore[method-assign]
    thread = threading.Thread(target=slow)
    thread.start()
    assert started.wait(10)
    with pytest.raises(SessionBusy):
        sup.repl(sid, "1")
    thread.join()
    assert result["execution"].status == "ok"  # type: ignore[attr-defined]


def test_close_is_idempotent_and_interrupts_a_running_execution(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.setdefault("e", sup.repl(sid, "for (;;) {}")))
    thread.start()
    import time

    deadline = time.monotonic() + 10
    while not any(e.status == "running" for e in sup.list_executions(sid)) and time.monotonic() < deadline:
        time.sleep(0.01)
    closed = sup.close_session(sid)
    thread.join()
    assert closed.status == "closed" and closed.closed_at is not None
    execution = result["e"]
    assert execution.status == "cancelled"  # type: ignore[attr-defined]
    assert execution.session_state == {"state": "closed"}  # type: ignore[attr-defined]
    again = sup.close_session(sid)
    assert again.status == "closed" and again.closed_at == closed.closed_at
    with pytest.raises(SessionNotReady):
        sup.repl(sid, "1")


def test_limits_stop_scripts_and_the_session_answers_next(sup: Supervisor, worktree: Path) -> None:
    template = sup.templates.create("tight")
    sup.templates.patch_settings(template.id, {"limits": {"wall_ms": 150, "cpu_ms": 100}})
    sid = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    sup.repl(sid, "var kept = 7")
    stopped = sup.repl(sid, "while (true) {}")
    assert stopped.status == "timeout"
    assert [t for t, _ in _events(sup, stopped.id)] == ["input_echo", "limit"]
    assert stopped.session_state == {"state": "kept"}
    assert sup.repl(sid, "kept").result["json"] == 7  # type: ignore[index]
    overflow = sup.repl(sid, "function f() { return f() + 1 } f()")
    assert overflow.status == "limit_exceeded"
    assert overflow.session_state is not None and overflow.session_state["state"] == "rolled_back"
    assert [t for t, _ in _events(sup, overflow.id)] == ["input_echo", "system", "limit"]
    assert sup.repl(sid, "kept").result["json"] == 7  # type: ignore[index]


def test_session_limits_are_captured_at_spawn(sup: Supervisor, worktree: Path) -> None:
    template = sup.templates.create("captured")
    sid = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    sup.templates.patch_settings(template.id, {"limits": {"wall_ms": 50, "cpu_ms": 50}})
    out = sup.repl(sid, "const t = Date.now(); while (Date.now() - t < 200) {} 'still default limits'")
    assert out.status == "ok"


def test_deleting_a_template_leaves_sessions_running(sup: Supervisor, worktree: Path) -> None:
    template = sup.templates.create("doomed")
    sid = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    sup.templates.delete(template.id)
    with pytest.raises(TemplateNotFound):
        sup.templates.get(template.id)
    assert sup.repl(sid, "1 + 1").status == "ok"
    assert sup.get_session(sid).template_id == template.id


def test_one_shot_run(sup: Supervisor, tmp_path: Path) -> None:
    execution = sup.run(code="console.log('once'); 6 * 7")
    assert (execution.kind, execution.session_id, execution.status) == ("run", None, "ok")
    assert execution.result is not None and execution.result["json"] == 42
    assert execution.session_state == {"state": "closed"}
    (tmp_path / "script.js").write_text("'from a file'")
    assert sup.run(path="script.js").result["json"] == "from a file"  # type: ignore[index]
    limited = sup.run(code="for (;;) {}", limits={"wall_ms": 100})
    assert limited.status == "timeout"
    with pytest.raises(ValidationError):
        sup.run(code="1", path="script.js")
    with pytest.raises(ValidationError):
        sup.run(code="1", limits={"wall_ms": -5})
    with pytest.raises(InvalidRequest):
        sup.run(code="1", limits={"wall": 5})
    with pytest.raises(InvalidPath):
        sup.run(path="../../etc/passwd")


def test_one_shot_run_with_a_template_uses_its_libraries_and_limits(sup: Supervisor) -> None:
    template = sup.templates.create("oneshot")
    sup.templates.add_library(template.id, "greet@1.0.0")
    sup.templates.patch_settings(template.id, {"limits": {"wall_ms": 100}})
    assert sup.run(code="greet('run')", template_id=template.id).result["json"] == "hello run"  # type: ignore[index]
    assert sup.run(code="for (;;) {}", template_id=template.id).status == "timeout"


def test_template_validation(sup: Supervisor, worktree: Path) -> None:
    template = sup.templates.create("valid")
    with pytest.raises(TemplateExists):
        sup.templates.create("valid")
    with pytest.raises(EngineUnsupported):
        sup.templates.create("other", engine="goja")
    with pytest.raises(ValidationError):
        sup.templates.create("")
    with pytest.raises(ModuleNotAllowed):
        sup.templates.add_module(template.id, "json")
    with pytest.raises(ModuleNotAllowed):
        sup.templates.add_module(template.id, "left-pad")
    with pytest.raises(ModuleNotAllowed, match="not in the module catalog"):
        sup.templates.add_module(template.id, "path")  # an old catalog's name that granted nothing
    assert sup.templates.add_module(template.id, "fs").name == "fs"
    with pytest.raises(StartupModeUnsupported):
        sup.templates.add_startup_file(template.id, "x.js", mode="module")
    with pytest.raises(InvalidPath):
        sup.templates.add_startup_file(template.id, "../x.js")
    with pytest.raises(InvalidPath):
        sup.templates.add_startup_file(template.id, "/etc/passwd")
    with pytest.raises(ValidationError):
        sup.templates.add_library(template.id, "../../etc/passwd")
    with pytest.raises(LibraryNotFound):
        sup.templates.add_library(template.id, "absent@1.0.0")
    for bad in ({"limits": {"cpu_ms": True}}, {"limits": {"cpu_ms": "5"}}, {"limits": {"nope": 1}},
                {"other": {}}, {"runtime": {"strict": 1}}, "not a dict"):
        with pytest.raises(InvalidRequest):
            sup.templates.patch_settings(template.id, bad)
    for bad in ({"limits": {"mem_mb": 10**6}}, {"limits": {"wall_ms": -1}}, {"limits": {"mem_mb": 2}},
                {"resolver": {"roots": ["/abs"]}}, {"resolver": {"extensions": ["js"]}}):
        with pytest.raises(ValidationError):
            sup.templates.patch_settings(template.id, bad)
    patched = sup.templates.patch_settings(template.id, {"limits": {"cpu_ms": 0}, "runtime": {"strict": False}})
    assert patched.limits["cpu_ms"] == 0 and patched.limits["wall_ms"] == 5000
    assert patched.runtime == {"esm": True, "strict": False, "console": True}


def test_ids_are_checked_before_any_lookup(sup: Supervisor) -> None:
    for call in (lambda: sup.get_session("nope"), lambda: sup.repl("123", "1"),
                 lambda: sup.templates.get("x"), lambda: sup.get_execution("../etc"),
                 lambda: sup.list_events("not-a-uuid")):
        with pytest.raises(ValidationError, match="must be a valid UUID"):
            call()
    with pytest.raises(SessionNotFound):
        sup.get_session("00000000-0000-4000-8000-000000000000")


def test_worktree_must_be_an_existing_absolute_directory(sup: Supervisor, worktree: Path) -> None:
    template = sup.templates.create("wt")
    for bad in ("relative/path", str(worktree / "main.js"), str(worktree / "missing")):
        with pytest.raises(InvalidPath):
            sup.create_session(template.id, "ws", "abc", bad)


def test_failing_startup_file_crashes_the_session(sup: Supervisor, worktree: Path) -> None:
    (worktree / "bad.js").write_text("throw new Error('startup broke')")
    template = sup.templates.create("bad-startup")
    sup.templates.add_startup_file(template.id, "bad.js")
    with pytest.raises(SupervisorError) as info:
        sup.create_session(template.id, "ws", "abc", str(worktree))
    session = sup.get_session(info.value.details["session_id"])
    assert session.status == "crashed" and "startup broke" in (session.last_error or "")
    failed = sup.get_execution(info.value.details["execution_id"])
    assert failed.kind == "startup" and failed.status == "error"
