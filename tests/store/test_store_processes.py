"""Other processes on the same file: SIGKILLed writers, and a reader beside a writer."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from store import Store
from vocabulary import TERMINAL_EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("store_child.py")

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


class Child:
    """A store_child.py process whose stdout lines arrive on a queue (no blocking reads)."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"child ended before {prefix!r}: {self.stderr()}")
            if line.startswith(prefix):
                return line

    def kill(self) -> list[str]:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        return self.drain()

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return out
            if line is not None:
                out.append(line)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""


def _count(path: Path, sql: str) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_sigkill_at_random_moments_never_leaves_an_inconsistent_file(
    tmp_path: Path, check_consistency
) -> None:
    path = tmp_path / "crash.db"
    Store.open(path).close()
    rng = random.Random(20261125)
    kills = 25
    crashed_total = finished_total = 0
    for round_ in range(kills):
        child = Child("crash-writer", str(path), str(round_))
        child.wait_for("ready")
        time.sleep(rng.uniform(0.0, 0.3))
        lines = child.kill()
        reported = [line.split()[1] for line in lines if line.startswith("finished ")]

        # Consistent as found, before anything repairs it.
        assert check_consistency(path) == [], f"round {round_}"
        with Store.open(path) as store:
            # SIGKILL loses no committed transaction (synchronous=NORMAL only risks power cuts).
            for execution_id in reported:
                assert store.get_execution(execution_id).status in ("ok", "error")
            report = store.reconcile()
        crashed_total += len(report.crashed_executions)
        finished_total += len(reported)
        assert check_consistency(path) == [], f"round {round_} after reconcile"
        assert _count(path, "SELECT count(*) FROM executions WHERE status = 'running'") == 0
        assert _count(path, "SELECT count(*) FROM sessions WHERE status = 'starting'") == 0

    # The kills really landed mid-work, and work really happened between them.
    assert crashed_total >= kills // 3
    assert finished_total > kills


def test_a_reader_beside_a_writer_never_sees_half_an_execution(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = Store.open(path)
    writer = Child("timed-writer", str(path), "3.0", "7")
    try:
        writer.wait_for("ready")
        checked_finished = checked_running = writes = 0
        session_id = None
        while writer.proc.poll() is None:
            if session_id is None:
                sessions = store.list_sessions("ready")
                session_id = sessions[0].id if sessions else None
                continue
            # Row first, then events, without a snapshot: the API's natural read order. A
            # row read as finished must come with all its events. (A row read as running
            # may have finished before its events are read: only a snapshot rules that out.)
            for execution in store.list_executions(session_id, limit=5):
                events = store.list_events(execution.id)
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
                if execution.status == "running":
                    checked_running += 1
                    continue
                assert execution.metrics["events"] == len(events)
                assert events[-1].type in TERMINAL_EVENT_TYPES
                checked_finished += 1
            # And a snapshot: the row and its events as of one instant, even for running ones.
            with store.snapshot():
                latest = store.list_executions(session_id, limit=1)
                if latest:
                    events = store.list_events(latest[0].id)
                    terminal = [e for e in events if e.type in TERMINAL_EVENT_TYPES]
                    assert (latest[0].status != "running") == (len(terminal) == 1)
            # Writes from this process too: they wait their turn instead of failing.
            store.create_template(f"reader-{writes}")
            writes += 1
        done = writer.wait_for("done", timeout=10)
        assert writer.proc.wait(timeout=10) == 0, writer.stderr()
    finally:
        if writer.proc.poll() is None:
            writer.kill()
        store.close()
    assert int(done.split()[1]) > 10
    assert checked_finished > 10 and writes > 10
