"""What a SIGKILL under load may lose, and what it may never do.

A daemon runs two sessions, each incremented back to back by its own client (the load that
keeps a session busy, so its images are taken on the `max_delay` path). The daemon is killed
with SIGKILL at a different moment each round, restarted on the same database, and checked:

* every stored execution starts with its `input_echo` at seq 1 (it is written with the row),
  and none is left `running`;
* each session comes back with a counter that some acknowledged or stored execution produced
  (a state that existed, never a blend), at most the highest value stored, and it goes on
  counting from there;
* how much acknowledged work was lost is printed (the loss window, in executions and in
  seconds before the kill), never asserted: the bound is a property of load and disk.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from pathlib import Path

import httpx
from http_daemon import Daemon, new_session, new_template, start_daemon

from store import Store

# Moments (seconds of load before the kill), spread so the kill lands at different points of
# the writer's cycle; fixed, so a failure can be rerun.
KILL_AFTER_S = (0.35, 0.8, 1.3, 0.55, 1.05)
# The counter needs no set-up: a kill can land before any image of a session's first state is
# stored, and the session then comes back as it spawned (n undefined, read as 0).
INCREMENT = "globalThis.n = (globalThis.n ?? 0) + 1"
READ = "globalThis.n ?? 0"


class Incrementer:
    """Back-to-back increments in one session; records (value, monotonic time of the answer)."""

    def __init__(self, api: str, session_id: str) -> None:
        self.session_id = session_id
        self.acked: list[tuple[int, float]] = []
        self._api = api
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self._api, timeout=30) as client:
            while True:
                try:
                    r = client.post("/executions/repl", json={"session_id": self.session_id,
                                                              "input": INCREMENT})
                except httpx.TransportError:
                    return  # the daemon was killed
                if r.status_code != 201:
                    raise AssertionError(f"repl answered {r.status_code}: {r.text}")
                body = r.json()
                assert body["status"] == "ok", body
                self.acked.append((body["result"]["json"], time.monotonic()))

    def join(self) -> None:
        self._thread.join(30)
        assert not self._thread.is_alive(), "the incrementer did not stop after the kill"


def _counter(client: httpx.Client, session_id: str) -> int:
    r = client.post("/executions/repl", json={"session_id": session_id, "input": READ})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "ok", r.text
    value = r.json()["result"]["json"]
    assert isinstance(value, int)
    return value


def _stored_values(db: Path, session_id: str) -> set[int]:
    """The counter values of the session's increments executions stored as `ok`."""
    with Store.open(db) as store:
        rows = store.list_executions(session_id, limit=1_000_000)
    return {row.result["json"] for row in rows
            if row.input == INCREMENT and row.status == "ok" and isinstance(row.result, dict)}


def _check_every_execution(db: Path, session_ids: list[str]) -> int:
    with Store.open(db) as store:
        count = 0
        for sid in session_ids:
            for row in store.list_executions(sid, limit=1_000_000):
                count += 1
                assert row.status != "running", f"{row.id} left running after the restart"
                events = store.list_events(row.id)
                assert events, f"execution {row.id} ({row.status}) has no events"
                assert (events[0].seq, events[0].type) == (1, "input_echo"), \
                    f"execution {row.id} starts with {events[0].type} at seq {events[0].seq}"
                assert [e.seq for e in events] == list(range(1, len(events) + 1)), row.id
    return count


def test_sigkill_under_load_loses_only_a_recent_window(tmp_path: Path) -> None:
    root = tmp_path / "kill"
    db = root / "db.sqlite"
    worktree = root / "wt"
    worktree.mkdir(parents=True)
    daemons: list[Daemon] = [start_daemon(root, db=db)]
    try:
        daemon = daemons[0]
        with httpx.Client(base_url=daemon.api, timeout=30) as client:
            template = new_template(client)
            sessions = [new_session(client, template["id"], worktree)["id"] for _ in range(2)]
        floor = dict.fromkeys(sessions, 0)
        # The increment each restart made, acknowledged before the next round's load: a kill
        # before its image is stored loses it too.
        prior: dict[str, list[tuple[int, float]]] = {}
        losses: list[int] = []
        windows: list[float] = []
        for round_no, delay in enumerate(KILL_AFTER_S):
            with httpx.Client(base_url=daemon.api, timeout=30) as client:
                start = {sid: _counter(client, sid) for sid in sessions}
            load = [Incrementer(daemon.api, sid) for sid in sessions]
            time.sleep(delay)
            killed_at = time.monotonic()
            daemon.signal(signal.SIGKILL)
            daemon.wait()
            for inc in load:
                inc.join()
            daemon = start_daemon(root, db=db)
            daemons.append(daemon)
            with httpx.Client(base_url=daemon.api, timeout=30) as client:
                for inc in load:
                    sid = inc.session_id
                    r = client.get(f"/sessions/{sid}")
                    assert r.status_code == 200 and r.json()["status"] == "ready", r.text
                    restored = _counter(client, sid)
                    stored = _stored_values(db, sid)
                    # 0 is the session as it spawned: a kill before any later image is stored
                    # brings that back, whichever round it is.
                    assert restored in stored | {0, start[sid]}, \
                        f"round {round_no}: restored n={restored}, a value no execution produced"
                    assert restored <= max(stored | {start[sid]}), (round_no, restored)
                    assert restored >= floor[sid], \
                        f"round {round_no}: restored n={restored}, older than the state an earlier " \
                        f"restart restored ({floor[sid]}): images only move forward"
                    floor[sid] = restored
                    after = client.post("/executions/repl", json={"session_id": sid, "input": INCREMENT})
                    assert after.status_code == 201 and after.json()["result"]["json"] == restored + 1
                    acked = dict(prior.get(sid, [])) | dict(inc.acked)
                    prior[sid] = [(restored + 1, time.monotonic())]
                    last_acked = max(acked, default=start[sid])
                    losses.append(max(0, last_acked - restored))
                    first_lost = acked.get(restored + 1)
                    windows.append(killed_at - first_lost if first_lost is not None else 0.0)
        daemon.stop()
    finally:  # a failed round must not leave its daemon running
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
    executions = _check_every_execution(db, sessions)
    print(f"\nSIGKILL under load, {len(KILL_AFTER_S)} rounds x {len(sessions)} busy sessions, "
          f"{executions} executions stored: acknowledged executions lost per session "
          f"median {statistics.median(losses)}, max {max(losses)}; the oldest lost "
          f"acknowledged state was answered {statistics.median(windows) * 1000:.0f} ms (median), "
          f"{max(windows) * 1000:.0f} ms (max) before the kill")
    assert executions > 2 * len(KILL_AFTER_S), "the load ran too few executions to say anything"
