"""`ShardedSupervisor`: the same contract as `Supervisor`, with sessions in worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import SessionNotFound, Store, StoreOpenError
from supervisor.errors import SessionBusy, SupervisorError, ValidationError
from supervisor.shards import RESTART_WAIT_S, ShardedSupervisor, WorkerLost


@pytest.fixture
def sharded(db_path: Path, library_dir: Path, tmp_path: Path) -> Iterator[ShardedSupervisor]:
    sup = ShardedSupervisor.open(db_path, workers=2, library_dir=library_dir, run_root=tmp_path)
    yield sup
    sup.close()


def _sessions(sup: ShardedSupervisor, worktree: Path, n: int, libraries: list[str] | None = None) -> list[str]:
    template = sup.templates.create(f"t-{time.monotonic_ns()}")
    for name in libraries or []:
        sup.templates.add_library(template.id, name)
    return [sup.create_session(template.id, "ws", "abc123", str(worktree)).id for _ in range(n)]


def _no_running_rows(db: Path) -> None:
    with Store.open(db) as store:
        for session in store.list_sessions():
            assert all(e.status != "running" for e in store.list_executions(session.id, limit=1000))


def test_sessions_spread_over_the_workers_and_keep_their_state(sharded: ShardedSupervisor, worktree: Path) -> None:
    ids = _sessions(sharded, worktree, 4)
    owners = {sid: sharded._owner[sid].index for sid in ids}
    assert sorted(owners.values()) == [0, 0, 1, 1]
    assert len(set(sharded.worker_pids)) == 2 and os.getpid() not in sharded.worker_pids
    for n, sid in enumerate(ids):
        assert sharded.repl(sid, f"var mine = {n}").status == "ok"
    for n, sid in enumerate(ids):
        out = sharded.repl(sid, "console.log('x'); mine * 10 + 2")
        assert out.result == {"type": "number", "preview": str(n * 10 + 2), "json": n * 10 + 2}
        events = sharded.list_events(out.id)
        assert [e.type for e in events] == ["input_echo", "console", "value"]
        assert [e.seq for e in events] == [1, 2, 3]
    summary = sharded.runtime_summary()
    assert summary.active_sessions == 4 and sorted(summary.active_session_ids) == sorted(ids)
    assert summary.memory_bytes > 0 and summary.executions_running == 0


def test_errors_cross_the_process_boundary_typed(sharded: ShardedSupervisor, worktree: Path) -> None:
    (sid,) = _sessions(sharded, worktree, 1)
    with pytest.raises(ValidationError) as bad:
        sharded.repl(sid, 42)
    assert bad.value.code == "VALIDATION_ERROR" and bad.value.details == {"field": "input"}
    with pytest.raises(SessionNotFound):
        sharded.repl("00000000-0000-4000-8000-000000000000", "1")
    with pytest.raises(ValidationError):
        sharded.repl("not-a-uuid", "1")
    thrown = sharded.repl(sid, "throw new TypeError('nope')")
    assert thrown.status == "error" and thrown.error is not None and thrown.error["name"] == "TypeError"


def test_busy_and_close_during_a_run(sharded: ShardedSupervisor, worktree: Path) -> None:
    (sid,) = _sessions(sharded, worktree, 1)
    results: list[object] = []
    runner = threading.Thread(target=lambda: results.append(sharded.repl(sid, "for (;;) {}")))
    runner.start()
    deadline = time.monotonic() + 10
    while sharded.runtime_summary().executions_running == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(SessionBusy):
        sharded.repl(sid, "1")
    closed = sharded.close_session(sid)
    runner.join(10)
    assert closed.status == "closed"
    assert results[0].status == "cancelled"
    assert sharded.close_session(sid).status == "closed"  # idempotent, from any worker


def test_libraries_run_file_and_one_shot_runs(sharded: ShardedSupervisor, worktree: Path) -> None:
    (sid,) = _sessions(sharded, worktree, 1, libraries=["greet@1.0.0"])
    assert sharded.repl(sid, "greet('shard')").result["json"] == "hello shard"  # type: ignore[index]
    ran = sharded.run_file(sid, "main.js")
    assert ran.status == "ok" and ran.result is not None and ran.result["json"] == 42
    one = sharded.run(code="6 * 7")
    assert one.status == "ok" and one.result is not None and one.result["json"] == 42
    assert one.session_id is None


def test_a_restart_restores_each_session_in_exactly_one_worker(db_path: Path, worktree: Path) -> None:
    with ShardedSupervisor.open(db_path, workers=2) as sup:
        ids = _sessions(sup, worktree, 5)
        for n, sid in enumerate(ids):
            sup.repl(sid, f"var kept = {n}")
    # Another worker count: the shares change, every session is still restored exactly once.
    with ShardedSupervisor.open(db_path, workers=3) as sup:
        assert sorted(sup.runtime_summary().active_session_ids) == sorted(ids)
        for n, sid in enumerate(ids):
            assert sup.repl(sid, "kept").result["json"] == n  # type: ignore[index]
    _no_running_rows(db_path)


def test_a_killed_worker_is_replaced_and_every_session_restored(db_path: Path, worktree: Path) -> None:
    with ShardedSupervisor.open(db_path, workers=2, image_interval=0.05) as sup:
        ids = _sessions(sup, worktree, 4)
        for n, sid in enumerate(ids):
            sup.repl(sid, f"var kept = {n}")
        sup.flush_images()
        victim_sid = ids[0]
        victim = sup._owner[victim_sid]
        errors: list[BaseException] = []

        def spin() -> None:
            try:
                sup.repl(victim_sid, "for (;;) {}")
            except BaseException as exc:  # inspected below
                errors.append(exc)

        runner = threading.Thread(target=spin)
        runner.start()
        deadline = time.monotonic() + 10
        while sup.runtime_summary().executions_running == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        old_pids = set(sup.worker_pids)
        os.kill(victim.process.pid, signal.SIGKILL)
        runner.join(30)
        assert len(errors) == 1 and isinstance(errors[0], WorkerLost)
        assert errors[0].code == "WORKER_LOST"
        # The next request waits for the fresh workers, which restored every session.
        for n, sid in enumerate(ids):
            assert sup.repl(sid, "kept").result["json"] == n  # type: ignore[index]
        assert not old_pids & set(sup.worker_pids)
        assert sorted(sup.runtime_summary().active_session_ids) == sorted(ids)
    _no_running_rows(db_path)


def test_threads_on_sessions_in_different_workers_lose_no_event(sharded: ShardedSupervisor, worktree: Path) -> None:
    ids = _sessions(sharded, worktree, 4)
    failures: list[str] = []

    def work(sid: str) -> None:
        for i in range(40):
            out = sharded.repl(sid, f"console.log({i}); {i}")
            events = sharded.list_events(out.id)
            if (out.status != "ok" or [e.seq for e in events] != [1, 2, 3]
                    or events[1].payload.get("text") != str(i) or out.result["json"] != i):  # type: ignore[index]
                failures.append(f"{sid} {i}: {out.status} {[e.type for e in events]}")

    threads = [threading.Thread(target=work, args=(sid,)) for sid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    for sid in ids:
        assert len(sharded.list_executions(sid, limit=100)) == 40


def test_an_unusable_database_or_worker_count_fails_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreOpenError):
        ShardedSupervisor.open(bad, workers=1)
    with pytest.raises(ValueError):
        ShardedSupervisor.open(tmp_path / "x.db", workers=0)


def test_a_restart_that_fails_is_reported_to_every_request(db_path: Path, worktree: Path) -> None:
    """The replacement workers cannot open their database: requests get the reason at once
    (not after a wait), and closing still works. The fault is injected by pointing the
    replacements at a path no process can create; the workers and their failure are real."""
    from dataclasses import replace

    sup = ShardedSupervisor.open(db_path, workers=2)
    try:
        (sid,) = _sessions(sup, worktree, 1)
        nowhere = Path("/proc/no-such-dir/vm-system.db")
        sup._configs = [replace(c, boot=replace(c.boot, db_path=nowhere)) for c in sup._configs]
        os.kill(sup.worker_pids[0], signal.SIGKILL)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while sup._failure is None and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(SupervisorError, match="could not be restarted"):
            sup.repl(sid, "1")
        with pytest.raises(SupervisorError, match="could not be restarted"):
            sup.runtime_summary()
        # generous: a request that waited for workers would wait RESTART_WAIT_S (60 s); only
        # proves these answered without that wait
        assert time.monotonic() - started < RESTART_WAIT_S / 3
        assert sup.get_session(sid).status == "ready"  # reads still answer from the database
    finally:
        sup.close()
