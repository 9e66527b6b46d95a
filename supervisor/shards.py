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
  Requests in flight on the dead worker fail with INTERNAL; requests arriving meanwhile wait.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

import store as store_mod
from sandbox.image import installation_key
from store import Store
from supervisor.core import MAX_EXECUTIONS_PAGE, RuntimeSummary, Shard, _rss_bytes, reconcile
from supervisor.errors import SupervisorError, ValidationError
from supervisor.ids import check_uuid
from supervisor.settings import Ceilings
from supervisor.shard_worker import WorkerConfig, config_for
from supervisor.templates import Templates

log = structlog.get_logger("supervisor.shards")

WORKER_START_S = 60.0
RESTART_WAIT_S = 60.0
CLOSE_JOIN_S = 30.0


class WorkerLost(SupervisorError):
    """The worker process that owned the session stopped while the request was in flight."""

    public = True


class _Worker:
    """One worker process and the pipe to it. `call` may be used from any thread."""

    def __init__(self, config: WorkerConfig, on_lost: Any) -> None:
        self.index = config.shard.index
        ours, theirs = socket.socketpair()
        # A fresh interpreter, never a fork of this process and its threads.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.shard_worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=_worker_env())
        theirs.close()
        conn = Connection(ours.detach())
        self._conn: Connection = conn
        conn.send(config)
        self._lock = threading.Lock()
        self._pending: dict[int, Future[tuple[bool, Any]]] = {}
        self._ids = itertools.count(1)
        self._on_lost = on_lost
        self.lost = False
        self.closing = False
        if not conn.poll(WORKER_START_S):
            self.process.kill()
            raise SupervisorError(f"shard worker {self.index} did not start within {WORKER_START_S:.0f} s")
        try:
            _, ok, payload = conn.recv()
        except (EOFError, OSError) as exc:
            raise SupervisorError(f"shard worker {self.index} died while starting "
                                  f"(exit code {self.process.wait()})") from exc
        if not ok:
            self.process.wait(CLOSE_JOIN_S)
            raise payload
        self.session_ids: list[str] = payload
        threading.Thread(target=self._read, name=f"shard-{self.index}-reader", daemon=True).start()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        future: Future[tuple[bool, Any]] = Future()
        with self._lock:
            if self.lost:
                raise WorkerLost(f"shard worker {self.index} has stopped")
            request_id = next(self._ids)
            self._pending[request_id] = future
            try:
                # The caller's log context (request id, ...) travels with the request, so
                # the worker's log lines carry the same ids.
                self._conn.send((request_id, method, args, kwargs,
                                 structlog.contextvars.get_contextvars()))
            except (OSError, EOFError, ValueError) as exc:
                self._pending.pop(request_id, None)
                raise WorkerLost(f"shard worker {self.index} has stopped") from exc
        ok, payload = future.result()
        if ok:
            return payload
        raise payload

    def _read(self) -> None:
        while True:
            try:
                request_id, ok, payload = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._pending.pop(request_id, None)
            if future is not None:
                future.set_result((ok, payload))
        with self._lock:
            self.lost = True
            pending, self._pending = self._pending, {}
        error = WorkerLost("the worker process running this request stopped unexpectedly; "
                           "its sessions are being restored from their last images")
        for future in pending.values():
            future.set_result((False, error))
        if not self.closing:
            self._on_lost(self)

    def close(self, grace: float) -> None:
        self.closing = True
        try:
            self.call("close", grace)
        except WorkerLost:
            pass
        self.stop()
        self._conn.close()

    def stop(self) -> None:
        """Wait for the process to exit (it was asked to), killing it if it does not."""
        try:
            self.process.wait(CLOSE_JOIN_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _worker_env() -> dict[str, str]:
    """The parent's environment, with the directory this package was imported from first on
    the path: the worker imports the same code even when it is not installed."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


class ShardedSupervisor:
    """The `Supervisor` API, served by `workers` processes (see the module docstring)."""

    def __init__(self, store: Store, configs: list[WorkerConfig], ceilings: Ceilings,
                 library_dir: Path | None) -> None:
        self.store = store
        self.ceilings = ceilings
        self.templates = Templates(store, ceilings, library_dir)
        self._configs = configs
        self._workers: list[_Worker] = []
        self._owner: dict[str, _Worker] = {}
        self._state = threading.Lock()
        self._ready = threading.Event()
        self._restarting = False
        self._closed = False
        self._round_robin = itertools.count()

    @classmethod
    def open(cls, db_path: str | Path, *, workers: int, library_dir: str | Path | None = None,
             ceilings: Ceilings | None = None, image_key: bytes | None = None,
             run_root: str | Path | None = None, image_interval: float = 0.2,
             log_format: str | None = None) -> ShardedSupervisor:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError("workers must be a positive integer")
        db_path = Path(db_path).resolve()
        store = Store.open(db_path)
        key = image_key if image_key is not None else installation_key(db_path.with_name(db_path.name + ".key"))
        ceilings = ceilings or Ceilings()
        lib = Path(library_dir).resolve() if library_dir else None
        root = Path(run_root).resolve() if run_root else Path.cwd()
        configs = [config_for(db_path, library_dir=lib, ceilings=ceilings, image_key=key, run_root=root,
                              image_interval=image_interval, shard=Shard(i, workers), log_format=log_format)
                   for i in range(workers)]
        sup = cls(store, configs, ceilings, lib)
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
        threads = [threading.Thread(target=w.close, args=(grace,)) for w in workers if not w.lost]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in workers:
            if w.process.poll() is None and w.lost:
                w.stop()

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
        except BaseException as exc:  # noqa: BLE001 - logged; requests keep failing clearly
            log.error("shard_restart_failed", error=f"{type(exc).__name__}: {exc}")

    def _wait_ready(self) -> None:
        if self._closed:
            raise SupervisorError("the supervisor is closed")
        if not self._ready.wait(RESTART_WAIT_S):
            raise SupervisorError("the session workers are restarting; try again")

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
        worker = self._least_loaded()
        try:
            session = worker.call("create_session", template_id, workspace_id, base_commit_oid,
                                  worktree_path)
        except SupervisorError as exc:
            self._forget(exc.details.get("session_id"))
            raise
        with self._state:
            if session.status == "ready" and worker in self._workers:
                self._owner[session.id] = worker
        return session

    def _forget(self, session_id: Any) -> None:
        if isinstance(session_id, str):
            with self._state:
                self._owner.pop(session_id, None)

    def get_session(self, session_id: str) -> store_mod.Session:
        return self.store.get_session(check_uuid(session_id, "session_id"))

    def list_sessions(self, status: str | None = None) -> list[store_mod.Session]:
        if status is not None and status not in store_mod.SESSION_STATUSES:
            raise ValidationError(f"status must be one of {sorted(store_mod.SESSION_STATUSES)}",
                                  field="status")
        return self.store.list_sessions(status)

    def close_session(self, session_id: str) -> store_mod.Session:
        session_id = check_uuid(session_id, "session_id")
        closed = self._owner_of(session_id).call("close_session", session_id)
        self._forget(session_id)
        return closed

    # ----- executions -------------------------------------------------------------------------

    def repl(self, session_id: str, input: Any) -> store_mod.Execution:
        session_id = check_uuid(session_id, "session_id")
        return self._owner_of(session_id).call("repl", session_id, input)

    def run_file(self, session_id: str, path: Any, args: Any = None, env: Any = None) -> store_mod.Execution:
        session_id = check_uuid(session_id, "session_id")
        return self._owner_of(session_id).call("run_file", session_id, path, args, env)

    def run(self, *, code: Any = None, path: Any = None, template_id: str | None = None,
            limits: Any = None) -> store_mod.Execution:
        return self._any().call("run", code=code, path=path, template_id=template_id, limits=limits)

    def get_execution(self, execution_id: str) -> store_mod.Execution:
        return self.store.get_execution(check_uuid(execution_id, "execution_id"))

    def list_executions(self, session_id: str, limit: Any = 50) -> list[store_mod.Execution]:
        session_id = check_uuid(session_id, "session_id")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EXECUTIONS_PAGE:
            raise ValidationError(f"limit must be an integer from 1 to {MAX_EXECUTIONS_PAGE}", field="limit")
        self.store.get_session(session_id)
        return self.store.list_executions(session_id, limit=limit)

    def list_events(self, execution_id: str, after_seq: Any = 0) -> list[store_mod.Event]:
        execution_id = check_uuid(execution_id, "execution_id")
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise ValidationError("after_seq must be a non-negative integer", field="after_seq")
        self.store.get_execution(execution_id)
        return self.store.list_events(execution_id, after_seq=after_seq)

    # ----- ops --------------------------------------------------------------------------------

    def _each(self, method: str, *args: Any) -> list[Any]:
        self._wait_ready()
        with self._state:
            workers = list(self._workers)
        return [w.call(method, *args) for w in workers]

    def runtime_summary(self) -> RuntimeSummary:
        parts: list[RuntimeSummary] = self._each("runtime_summary")
        rss = [p.rss_bytes for p in parts] + [_rss_bytes()]
        return RuntimeSummary(
            sum(p.active_sessions for p in parts),
            sorted(sid for p in parts for sid in p.active_session_ids),
            sum(p.memory_bytes for p in parts),
            None if any(r is None for r in rss) else sum(r for r in rss if r is not None),
            sum(p.worker_threads for p in parts) + threading.active_count(),
            sum(p.executions_running for p in parts),
        )

    def flush_images(self) -> None:
        self._each("flush_images")

    @property
    def worker_pids(self) -> list[int | None]:
        with self._state:
            return [w.process.pid for w in self._workers]

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
        self.store.close()
        log.info("supervisor_closed", workers=len(self._configs))

    def __enter__(self) -> ShardedSupervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
