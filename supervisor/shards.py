"""`ShardedSupervisor`: the `Supervisor` API over worker processes, one share of sessions each.

Why: a supervisor in one process cannot use a second core for trivial executions. Most of an
execution's time is Python (recording, the store), and every call into the guest hands the GIL
back and forth, so threads add contention, not throughput. Here each worker process is a whole
`Supervisor` (sandboxes, pipeline, image writer, its own store connection) for the sessions it
owns; the router (this class) answers reads from the database itself and forwards the rest to
the owner over a pipe, holding no GIL while it waits.

* Ownership: a new session goes to the worker with the fewest; at start-up worker i restores the
  ready sessions whose id falls in share i (`Shard.owns`), and says which.
* Start-up runs the reconcile once, in the router, before any worker opens the database.
* A worker that dies (killed, or the engine aborting the process) is handled like a daemon
  restart: the other workers close gracefully (their sessions' state persisted), the database is
  reconciled, and a fresh set of workers restores every ready session from its latest image.
  Requests in flight on the dead worker fail with WORKER_LOST (503, retryable); requests
  arriving meanwhile wait.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar, Unpack

import structlog

import store as store_mod
from store import Store
from supervisor.api import RuntimeSummary, SupervisorApi
from supervisor.boot import BootConfig, OpenOptions, Shard, data_dir, open_database, reconcile
from supervisor.errors import SupervisorError
from supervisor.ids import check_uuid
from supervisor.libraries import LibrarySources
from supervisor.packages import PackageLibrary, open_package_library
from supervisor.process_memory import rss_bytes
from supervisor.reads import StoreReads
from supervisor.settings import Ceilings
from supervisor.shard_worker import WorkerConfig
from supervisor.templates import Templates
from supervisor.worker_requests import (
    Close,
    CloseSession,
    CreateSession,
    Drain,
    FlushImages,
    Repl,
    Run,
    RunFile,
    Summarize,
    WorkerRequest,
)

log = structlog.get_logger("supervisor.shards")

WORKER_START_S = 60.0
# Requests one worker serves at once (besides control requests); more wait for a connection.
# Each session runs one execution at a time, so this bounds concurrent sessions' executions.
CONNECTIONS = 32
RESTART_WAIT_S = 60.0
CLOSE_JOIN_S = 30.0

T = TypeVar("T")


class WorkerLost(SupervisorError):
    """The worker process that owned the session stopped while the request was in flight.

    Retryable: a fresh set of workers restores the session within about a second."""

    code = "WORKER_LOST"
    public = True


class _NotDelivered(Exception):
    """The worker was gone before the request reached it: safe to send again elsewhere."""


class _Worker:
    """One worker process and its connections. `call` may be used from any thread."""

    def __init__(self, config: WorkerConfig, on_lost: Callable[[_Worker], None]) -> None:
        self.index = config.shard.index
        pairs = [socket.socketpair() for _ in range(1 + CONNECTIONS)]
        fds = [theirs.fileno() for _, theirs in pairs]
        # A fresh interpreter, never a fork of this process and its threads.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.shard_worker", *map(str, fds)],
            pass_fds=fds, stdin=subprocess.DEVNULL, env=_worker_env())
        conns = []
        for ours, theirs in pairs:
            theirs.close()
            conns.append(Connection(ours.detach()))
        self._on_lost = on_lost
        self._lost_lock = threading.Lock()
        self.lost = False
        self.closing = False
        control, *lent = conns
        control.send(config)
        if not control.poll(WORKER_START_S):
            self.process.kill()
            raise SupervisorError(f"shard worker {self.index} did not start within {WORKER_START_S:.0f} s")
        try:
            ok, payload = control.recv()
        except (EOFError, OSError) as exc:
            raise SupervisorError(f"shard worker {self.index} died while starting "
                                  f"(exit code {self.process.wait()})") from exc
        if not ok:
            self.process.wait(CLOSE_JOIN_S)
            raise payload
        self.session_ids: list[str] = payload
        self._control = control
        self._control_lock = threading.Lock()
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        for conn in lent:
            self._free.put(conn)
        self._all = conns
        threading.Thread(target=self._watch, name=f"shard-{self.index}-watch", daemon=True).start()

    def call(self, request: WorkerRequest[T]) -> T:
        """Run `request` in the worker on a lent connection (waiting for one if all are busy)."""
        if self.lost:
            raise _NotDelivered()
        conn = self._free.get()
        try:
            ok, payload = self._exchange(conn, request)
        finally:
            self._free.put(conn)
        if ok:
            return payload
        raise payload

    def control(self, request: WorkerRequest[T]) -> T:
        """Like `call`, on the connection kept for control requests: a close of a session, or
        of the worker, never waits for a connection held by a long execution."""
        if self.lost:
            raise _NotDelivered()
        with self._control_lock:
            ok, payload = self._exchange(self._control, request)
        if ok:
            return payload
        raise payload

    def _exchange(self, conn: Connection, request: WorkerRequest[Any]) -> tuple[bool, Any]:
        try:
            # The caller's log context (request id, ...) travels with the request, so the
            # worker's log lines carry the same ids.
            conn.send((request, structlog.contextvars.get_contextvars()))
        except (EOFError, OSError) as exc:
            self._mark_lost()
            raise _NotDelivered() from exc
        try:
            return conn.recv()
        except (EOFError, OSError) as exc:
            self._mark_lost()
            raise _lost_error() from exc

    def _watch(self) -> None:
        self.process.wait()
        self._mark_lost()

    def _mark_lost(self) -> None:
        with self._lost_lock:
            first = not self.lost
            self.lost = True
        if first and not self.closing:
            self._on_lost(self)

    def close(self, grace: float) -> None:
        self.closing = True
        with contextlib.suppress(WorkerLost, _NotDelivered):  # a worker gone already is closed
            self.control(Close(grace))
        self.stop()
        for conn in self._all:
            conn.close()

    def stop(self) -> None:
        """Wait for the process to exit (it was asked to), killing it if it does not."""
        try:
            self.process.wait(CLOSE_JOIN_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _lost_error() -> WorkerLost:
    return WorkerLost("the worker process running this request stopped unexpectedly; "
                      "its sessions are being restored from their last images")


def _worker_env() -> dict[str, str]:
    """The parent's environment, with the directory this package was imported from first on
    the path: the worker imports the same code even when it is not installed."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


class ShardedSupervisor(StoreReads):
    """The `Supervisor` API, served by `workers` processes (see the module docstring)."""

    def __init__(self, store: Store, configs: list[WorkerConfig], ceilings: Ceilings,
                 library_dir: Path | None, packages: PackageLibrary) -> None:
        self.store = store
        self.ceilings = ceilings
        self.templates = Templates(store, ceilings, LibrarySources(packages, library_dir))
        # The package store is the router's: adding and removing packages runs no JavaScript.
        self.packages = packages
        self._configs = configs
        self._workers: list[_Worker] = []
        self._owner: dict[str, _Worker] = {}
        self._state = threading.Lock()
        self._ready = threading.Event()
        self._restarting = False
        self._closed = False
        # Why the last restart failed: every request then says so at once (the daemon needs
        # a restart) instead of waiting for workers that will not come.
        self._failure: str | None = None
        self._round_robin = itertools.count()

    @classmethod
    def open(cls, db_path: str | Path, *, workers: int, log_format: str | None = None,
             log_level: str = "info", **options: Unpack[OpenOptions]) -> ShardedSupervisor:
        """Reconcile the database, then start `workers` processes, each restoring its share
        of the ready sessions. The workers log to this process's stderr (structlog, `log_format`
        as `configure_logging` takes it, lines below `log_level` dropped)."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError("workers must be a positive integer")
        config = BootConfig.of(db_path, **options).resolved()
        store, key = open_database(config)
        # The workers are handed the key: none of them reads or creates the key file.
        configs = [WorkerConfig(replace(config, image_key=key), Shard(i, workers), log_format, log_level)
                   for i in range(workers)]
        sup = cls(store, configs, config.ceilings, config.library_dir,
                  open_package_library(store, data_dir(config.db_path), config.npm_registry))
        try:
            reconcile(store)
            sup._start_workers()
        except BaseException:
            sup._stop_workers(0.0)
            store.close()
            raise
        return sup

    # ----- workers ----------------------------------------------------------------------------

    def _start_workers(self) -> None:
        workers: list[_Worker] = []
        try:
            for config in self._configs:
                workers.append(_Worker(config, self._lost))
        finally:
            with self._state:
                self._workers = workers
        owner = {sid: w for w in workers for sid in w.session_ids}
        with self._state:
            self._owner = owner
            self._restarting = False
        self._ready.set()
        log.info("shard_workers_ready", workers=len(workers), sessions=len(owner))

    def _stop_workers(self, grace: float) -> None:
        with self._state:
            workers = list(self._workers)
        # In parallel: each may wait `grace` for its running executions. A lost worker's close
        # only releases its connections.
        threads = [threading.Thread(target=w.close, args=(grace,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _lost(self, worker: _Worker) -> None:
        with self._state:
            if self._closed or self._restarting or worker not in self._workers:
                return
            self._restarting = True
            self._ready.clear()
        log.error("shard_worker_lost", shard=worker.index, exit_code=worker.process.poll())
        threading.Thread(target=self._restart, name="shard-restart", daemon=True).start()

    def _restart(self) -> None:
        """Like a daemon restart: persist what lives, reconcile, restore everything."""
        self._stop_workers(0.0)
        if self._closed:
            return
        try:
            reconcile(self.store)
            self._start_workers()
        except BaseException as exc:  # logged; requests fail with the reason
            self._failure = f"{type(exc).__name__}: {exc}"
            log.error("shard_restart_failed", error=self._failure)
            with self._state:
                self._restarting = False
            self._ready.set()

    def _wait_ready(self) -> None:
        if self._closed:
            raise SupervisorError("the supervisor is closed")
        if not self._ready.wait(RESTART_WAIT_S):
            raise SupervisorError("the session workers are restarting; try again")
        if self._failure is not None:
            raise SupervisorError(f"the session workers could not be restarted ({self._failure}); "
                                  "the daemon needs a restart")

    def _send(self, pick: Callable[[], _Worker], request: WorkerRequest[T], *,
              control: bool = False) -> T:
        """Send to the worker `pick` chooses; a request that never reached a dead worker is sent
        again once the fresh workers are ready."""
        deadline = time.monotonic() + RESTART_WAIT_S
        while True:
            worker = pick()
            try:
                if control:
                    return worker.control(request)
                return worker.call(request)
            except _NotDelivered:
                self._await_replacement(worker, deadline)

    def _await_replacement(self, lost: _Worker, deadline: float) -> None:
        """Wait until the restart that `lost`'s death set off has begun (or is over)."""
        while self._ready.is_set() and lost in self._workers and not self._closed:
            if time.monotonic() > deadline:
                raise SupervisorError("the session workers are restarting; try again")
            time.sleep(0.005)

    def _owner_of(self, session_id: str) -> _Worker:
        self._wait_ready()
        with self._state:
            worker = self._owner.get(session_id)
            # A session no worker holds is answered by any of them from the database
            # (not found, not ready, already closed), exactly as a single supervisor would.
            return worker if worker is not None else self._workers[0]

    def _least_loaded(self) -> _Worker:
        self._wait_ready()
        with self._state:
            counts = {id(w): 0 for w in self._workers}
            for w in self._owner.values():
                if id(w) in counts:
                    counts[id(w)] += 1
            return min(self._workers, key=lambda w: counts[id(w)])

    def _any(self) -> _Worker:
        self._wait_ready()
        with self._state:
            return self._workers[next(self._round_robin) % len(self._workers)]

    # ----- sessions ---------------------------------------------------------------------------

    def create_session(self, template_id: str, workspace_id: Any, base_commit_oid: Any,
                       worktree_path: Any) -> store_mod.Session:
        chosen: list[_Worker] = []

        def pick() -> _Worker:
            chosen[:] = [self._least_loaded()]
            return chosen[0]

        session = self._send(pick, CreateSession(template_id, workspace_id, base_commit_oid,
                                                 worktree_path))
        with self._state:
            if session.status == "ready" and chosen[0] in self._workers:
                self._owner[session.id] = chosen[0]
        return session

    def _forget(self, session_id: Any) -> None:
        if isinstance(session_id, str):
            with self._state:
                self._owner.pop(session_id, None)

    def close_session(self, session_id: str) -> store_mod.Session:
        session_id = check_uuid(session_id, "session_id")
        closed = self._send(lambda: self._owner_of(session_id), CloseSession(session_id),
                            control=True)
        self._forget(session_id)
        return closed

    # ----- executions -------------------------------------------------------------------------

    def repl(self, session_id: str, input: Any, execution_id: str | None = None) -> store_mod.Execution:
        session_id = check_uuid(session_id, "session_id")
        return self._send(lambda: self._owner_of(session_id), Repl(session_id, input, execution_id))

    def run_file(self, session_id: str, path: Any, args: Any = None, env: Any = None) -> store_mod.Execution:
        session_id = check_uuid(session_id, "session_id")
        return self._send(lambda: self._owner_of(session_id), RunFile(session_id, path, args, env))

    def run(self, *, code: Any = None, path: Any = None, template_id: str | None = None,
            limits: Any = None, execution_id: str | None = None) -> store_mod.Execution:
        return self._send(self._any, Run(code=code, path=path, template_id=template_id,
                                         limits=limits, execution_id=execution_id))

    # ----- ops --------------------------------------------------------------------------------

    def _each(self, request: WorkerRequest[T]) -> list[T]:
        deadline = time.monotonic() + RESTART_WAIT_S
        while True:
            self._wait_ready()
            with self._state:
                workers = list(self._workers)
            try:
                return [w.control(request) for w in workers]
            except _NotDelivered:
                self._await_replacement(next(w for w in workers if w.lost), deadline)

    def runtime_summary(self) -> RuntimeSummary:
        parts = self._each(Summarize())
        rss = [p.rss_bytes for p in parts] + [rss_bytes()]
        return RuntimeSummary(
            sum(p.active_sessions for p in parts),
            sorted(sid for p in parts for sid in p.active_session_ids),
            sum(p.memory_bytes for p in parts),
            None if any(r is None for r in rss) else sum(r for r in rss if r is not None),
            sum(p.worker_threads for p in parts) + threading.active_count(),
            sum(p.executions_running for p in parts),
        )

    def flush_images(self) -> None:
        self._each(FlushImages())

    @property
    def worker_pids(self) -> list[int | None]:
        with self._state:
            return [w.process.pid for w in self._workers]

    def drain(self, grace: float = 0.0) -> None:
        """Every worker drains as a single supervisor does, all at once (`grace` is not summed)."""
        with self._state:
            workers = list(self._workers)
        threads = [threading.Thread(target=self._drain_one, args=(w, grace), daemon=True)
                   for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @staticmethod
    def _drain_one(worker: _Worker, grace: float) -> None:
        try:
            worker.control(Drain(grace))
        except (_NotDelivered, SupervisorError) as exc:  # a lost worker has nothing to drain
            log.warning("worker_drain_failed", worker=worker.index, error=str(exc))

    def close(self, grace: float = 0.0) -> None:
        """Every worker stops as a single supervisor does (running executions get `grace`
        seconds, then are cancelled; every session's state is persisted)."""
        if self._closed:
            return
        # A restart in progress finishes first, so its fresh workers are the ones closed.
        deadline = time.monotonic() + RESTART_WAIT_S
        while self._restarting and time.monotonic() < deadline:
            time.sleep(0.01)
        self._closed = True
        self._stop_workers(grace)
        self.packages.close()
        self.store.close()
        log.info("supervisor_closed", workers=len(self._configs))

    def __enter__(self) -> ShardedSupervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# mypy checks here that `ShardedSupervisor` offers the whole contract.
_CONTRACT: type[SupervisorApi] = ShardedSupervisor
