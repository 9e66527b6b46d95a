"""Events reach the store while the script runs, even the last one before a long silence:
a follower (`exec events --follow`, a streamed `POST /run`) sees a console line as it happens,
not when the next event or the end of the execution comes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sandbox import Event
from store import Store
from supervisor import Supervisor
from supervisor.event_recorder import FLUSH_SECONDS, EventRecorder, StaleBatchFlusher

# Generous: only a bound for a hang; the flusher writes a batch after ~50 ms.
SEEN_WITHIN_S = 20.0


def _running_execution(sup: Supervisor, session_id: str) -> str:
    deadline = time.monotonic() + SEEN_WITHIN_S
    while time.monotonic() < deadline:
        running = [e for e in sup.list_executions(session_id, 5) if e.status == "running"]
        if running:
            return running[0].id
        time.sleep(0.01)
    raise AssertionError("the execution never showed up as running")


@pytest.mark.parametrize("lines", [1, 3])
def test_lines_before_a_silence_are_stored_while_it_runs(sup: Supervisor, worktree: Path, lines: int) -> None:
    template = sup.templates.create("quiet-after-printing")
    sup.templates.patch_settings(template.id, {"limits": {"wall_ms": 60_000, "cpu_ms": 60_000}})
    session = sup.create_session(template.id, "w", "c", str(worktree))
    code = "".join(f"console.log('line {i}');" for i in range(lines)) + " while (true) {}"
    done: list[object] = []
    runner = threading.Thread(target=lambda: done.append(sup.repl(session.id, code)))
    runner.start()
    try:
        execution_id = _running_execution(sup, session.id)
        deadline = time.monotonic() + SEEN_WITHIN_S
        consoles: list[str] = []
        while time.monotonic() < deadline and len(consoles) < lines:
            consoles = [e.payload["text"] for e in sup.list_events(execution_id) if e.type == "console"]
            time.sleep(0.01)
        # Causality, not a duration: the lines were readable while the script still spun.
        assert sup.get_execution(execution_id).status == "running"
        assert consoles == [f"line {i}" for i in range(lines)]
    finally:
        sup.close_session(session.id)
        runner.join(60)
    assert done and done[0].status == "cancelled"
    events = sup.list_events(execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "each event exactly once"


def test_a_recorder_closed_by_the_flusher_is_not_written_again(tmp_path: Path) -> None:
    """After `forget`, the finishing transaction owns `pending`: the flusher must not write it."""
    with Store.open(tmp_path / "s.db") as store:
        execution = store.create_execution("run")
        recorder = EventRecorder(store, execution.id)
        flusher = StaleBatchFlusher(interval=0.001)
        flusher.watch(recorder)
        flusher.forget(recorder)
        recorder.add(Event("console", {"level": "log", "text": "after"}, time.time()))
        recorder.add(Event("console", {"level": "log", "text": "late"}, time.time()))
        recorder.flush_if_stale(time.monotonic() + 10 * FLUSH_SECONDS)
        stored = [e.payload.get("text") for e in store.list_events(execution.id)]
        assert "late" not in stored
        assert [e.payload["text"] for e in recorder.pending if e.type == "console"][-1] == "late"
