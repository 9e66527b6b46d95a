"""Event-stream followers cost the daemon no thread and bounded memory (issue 17).

A follower used to hold one of the routes' 40 threads while it waited, so 40 followers froze
every route, `/health` included; and each poll read the whole backlog, so slow followers of a
long execution held all of it. These tests run more followers than there are threads, slow
followers of a large backlog, and more followers than the cap allows, against a real daemon.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import (
    TERMINAL_TYPES,
    Background,
    checked_client,
    error_of,
    make_worktree,
    new_session,
    new_template,
    repl,
    sse_events,
    start_daemon,
    wait_for_running,
)

# More than the 40 threads the routes share (anyio's default limiter).
FOLLOWERS = 60
SPIN = "for (;;) {}"
BIG_LIMITS = {"cpu_ms": 60_000, "wall_ms": 120_000, "max_events": 100_000, "max_output_kb": 32 * 1024}


class _Follower:
    """One client reading an execution's event stream to its end, in a thread."""

    def __init__(self, api: str, execution_id: str) -> None:
        self.frames: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self.error: BaseException | None = None

        def follow() -> None:
            try:
                with httpx.Client(base_url=api, timeout=120) as client, \
                        client.stream("GET", f"/executions/{execution_id}/events/stream") as r:
                    assert r.status_code == 200, r.status_code
                    for frame in sse_events(r):
                        self.frames.append(frame)
                        self.connected.set()
            except BaseException as exc:  # handed to the test below
                self.error = exc
                self.connected.set()

        self.thread = threading.Thread(target=follow, daemon=True)
        self.thread.start()


def _latencies(call: Any, n: int) -> list[float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return took


@pytest.mark.timeout(240)
def test_more_followers_than_threads_leave_every_route_answering(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "d")
    try:
        with checked_client(daemon.api, timeout=30) as api:
            template = new_template(api, limits=BIG_LIMITS)
            worktree = make_worktree(tmp_path)
            spinning = new_session(api, template["id"], worktree)
            other = new_session(api, template["id"], worktree)
            call = Background(lambda: httpx.post(f"{daemon.api}/executions/repl", timeout=120,
                                                 json={"session_id": spinning["id"], "input": SPIN}))
            running = wait_for_running(api, spinning["id"])
            followers = [_Follower(daemon.api, running["id"]) for _ in range(FOLLOWERS)]
            # Each has its first frame (input_echo): every one is connected and waiting. With a
            # thread per follower the ones past the 40th would never get theirs.
            for follower in followers:
                assert follower.connected.wait(60), "a follower never got its first event"
                assert follower.error is None, follower.error
            health = _latencies(lambda: api.get("/health").raise_for_status(), 20)
            repls = _latencies(lambda: repl(api, other["id"], "1 + 1"), 20)
            print(f"\n{FOLLOWERS} followers waiting: /health median {statistics.median(health):.1f} ms "
                  f"(max {max(health):.1f}), REPL median {statistics.median(repls):.1f} ms "
                  f"(max {max(repls):.1f})")
            # Closing the session cancels the spinning script: every stream ends with its terminal.
            assert api.post(f"/sessions/{spinning['id']}/close").status_code == 200
            assert call.result().status_code == 201
            for follower in followers:
                follower.thread.join(60)
                assert not follower.thread.is_alive(), "a stream did not end after the terminal event"
                assert follower.error is None, follower.error
                seqs = [int(f["id"]) for f in follower.frames]
                assert seqs == list(range(1, len(seqs) + 1))
                assert follower.frames[0]["event"] == "input_echo"
                assert follower.frames[-1]["event"] in TERMINAL_TYPES
    finally:
        assert daemon.stop() == 0


@pytest.mark.timeout(180)
def test_over_the_cap_a_stream_is_refused_with_503_and_a_freed_slot_is_reused(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "d", "--max-streams", "3")
    try:
        with checked_client(daemon.api, timeout=30) as api, ExitStack() as streams:
            template = new_template(api, limits=BIG_LIMITS)
            session = new_session(api, template["id"], make_worktree(tmp_path))
            call = Background(lambda: httpx.post(f"{daemon.api}/executions/repl", timeout=120,
                                                 json={"session_id": session["id"], "input": SPIN}))
            running = wait_for_running(api, session["id"])
            url = f"/executions/{running['id']}/events/stream"
            first = streams.enter_context(httpx.Client(base_url=daemon.api, timeout=30))
            held = [streams.enter_context(first.stream("GET", url))]
            held += [streams.enter_context(api.stream("GET", url)) for _ in range(2)]
            assert [r.status_code for r in held] == [200, 200, 200]
            refused = api.get(url)
            error = error_of(refused, 503, "TOO_MANY_STREAMS")
            assert error["details"] == {"max_streams": 3}
            assert refused.headers["retry-after"] == "1"
            # A streamed run counts too, and is refused before it starts: no execution row.
            run = api.post("/run", json={"code": "1"}, headers={"accept": "text/event-stream"})
            error_of(run, 503, "TOO_MANY_STREAMS")
            # One client goes away while its stream waits (no event to send): its slot frees.
            first.close()
            deadline = time.monotonic() + 20
            while True:
                with api.stream("GET", url) as again:
                    if again.status_code == 200:
                        break
                    again.read()
                assert time.monotonic() < deadline, "a disconnected follower kept its slot"
                time.sleep(0.1)
            assert api.post(f"/sessions/{session['id']}/close").status_code == 200
            assert call.result().json()["status"] == "cancelled"
    finally:
        assert daemon.stop() == 0


LINES = 8000
LINE = "x" * 1000
SLOW_FOLLOWERS = 40
SLOW_READ_S = 8.0


def _slow_reader(host: str, port: int, path: str, stop: threading.Event, got: list[int]) -> None:
    """A client that reads 2 KB every 0.1 s (~20 KB/s) through a small receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    try:
        while not stop.is_set():
            chunk = sock.recv(2048)
            if not chunk:
                return
            got[0] += len(chunk)
            time.sleep(0.1)
    finally:
        sock.close()


@pytest.mark.timeout(240)
def test_slow_followers_of_a_big_backlog_hold_bounded_memory(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "d")
    try:
        with checked_client(daemon.api, timeout=60) as api:
            template = new_template(api, limits=BIG_LIMITS)
            session = new_session(api, template["id"], make_worktree(tmp_path))
            done = repl(api, session["id"],
                        f"for (let i = 0; i < {LINES}; i++) console.log(i + ' {LINE}'); 'done'")
            assert done["status"] == "ok", done
            assert len(api.get(f"/executions/{done['id']}/events").json()) == LINES + 2
        time.sleep(1.0)
        baseline = daemon.rss_kb()
        host, port = daemon.url.removeprefix("http://").split(":")
        stop = threading.Event()
        received = [[0] for _ in range(SLOW_FOLLOWERS)]
        readers = [threading.Thread(target=_slow_reader, daemon=True,
                                    args=(host, int(port), f"/api/v1/executions/{done['id']}/events/stream",
                                          stop, received[i]))
                   for i in range(SLOW_FOLLOWERS)]
        for reader in readers:
            reader.start()
        peak = baseline
        deadline = time.monotonic() + SLOW_READ_S
        while time.monotonic() < deadline:
            peak = max(peak, daemon.rss_kb())
            time.sleep(0.2)
        stop.set()
        for reader in readers:
            reader.join(10)
        time.sleep(2.0)
        after = daemon.rss_kb()
        read_kb = sum(r[0] for r in received) // 1024
        print(f"\n{SLOW_FOLLOWERS} slow followers of {LINES} x 1 KB events: RSS baseline "
              f"{baseline // 1024} MB, peak {peak // 1024} MB, after {after // 1024} MB; "
              f"they read {read_kb} KB in all")
        assert all(r[0] > 0 for r in received), "every slow follower got some of the stream"
        # Each follower holds a page (64 events, ~64 KB) and a socket buffer: ~40 x 200 KB. The
        # whole backlog per follower (8 MB each, as before) would be over 300 MB.
        assert (peak - baseline) < 120 * 1024, f"RSS grew {(peak - baseline) // 1024} MB"
        assert (after - baseline) < 120 * 1024, f"RSS stayed {(after - baseline) // 1024} MB up"
        with checked_client(daemon.api, timeout=30) as api:
            assert api.get("/health").status_code == 200
    finally:
        assert daemon.stop() == 0
