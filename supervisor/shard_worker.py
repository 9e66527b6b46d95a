"""One worker process of a `ShardedSupervisor`: a `Supervisor` for a share of the sessions.

Started as `python -m supervisor.shard_worker FD` (FD: its end of a socket pair), so nothing of
the parent's `__main__` is re-imported, whatever script the parent runs. The first message is
the `WorkerConfig`. The router then sends `(request_id, method, args, kwargs, log_context)`; the worker runs each request
on a thread of its own (an execution may run for minutes while a close of the same session
arrives) and answers `(request_id, ok, result_or_exception)`. The first message it sends
(request id 0) says whether it opened the database, and which sessions it restored.
"""

from __future__ import annotations

import pickle
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

from supervisor.core import Shard, Supervisor
from supervisor.errors import SupervisorError
from supervisor.settings import Ceilings

# What a worker answers to. Reads (sessions, executions, events, templates) never reach a
# worker: the router answers them from the database itself.
EXECUTION_METHODS = frozenset({"create_session", "repl", "run_file", "run"})
CONTROL_METHODS = frozenset({"close_session", "runtime_summary", "flush_images", "close"})
# Executions (and spawns) that may run at once in one worker; more wait for a thread.
EXECUTION_THREADS = 64


@dataclass(frozen=True)
class WorkerConfig:
    db_path: str
    library_dir: str | None
    ceilings: Ceilings
    image_key: bytes
    run_root: str
    image_interval: float
    shard: Shard
    log_format: str | None


def portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else an INTERNAL error describing it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any failure to round-trip means: describe it instead
        return SupervisorError(f"{type(exc).__name__}: {exc}")


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    from supervisor.logs import configure_logging

    configure_logging(fmt=config.log_format)  # type: ignore[arg-type]
    structlog.contextvars.bind_contextvars(shard=config.shard.index)
    log = structlog.get_logger("supervisor.shard")
    try:
        sup = Supervisor.open(config.db_path, library_dir=config.library_dir,
                              ceilings=config.ceilings, image_key=config.image_key,
                              run_root=config.run_root, image_interval=config.image_interval,
                              shard=config.shard)
    except BaseException as exc:  # noqa: BLE001 - reported to the router, which fails to start
        conn.send((0, False, portable(exc)))
        return
    conn.send((0, True, sorted(s.id for s in sup._live_sessions())))
    log.info("shard_worker_ready", sessions=len(sup._live_sessions()))
    _Server(conn, sup).serve()


class _Server:
    def __init__(self, conn: Connection, sup: Supervisor) -> None:
        self._conn = conn
        self._shard = sup.shard.index if sup.shard else 0
        self._sup = sup
        self._send_lock = threading.Lock()
        self._executions = ThreadPoolExecutor(EXECUTION_THREADS, thread_name_prefix="shard-exec")
        self._control = ThreadPoolExecutor(4, thread_name_prefix="shard-control")

    def serve(self) -> None:
        while True:
            try:
                request_id, method, args, kwargs, context = self._conn.recv()
            except (EOFError, OSError):
                # The router is gone (killed): persist what can be persisted and stop.
                self._sup.close(0.0)
                return
            if method == "close":
                self._handle(request_id, method, args, kwargs, context)
                self._executions.shutdown(wait=False, cancel_futures=True)
                self._control.shutdown(wait=False)
                return
            pool = self._executions if method in EXECUTION_METHODS else self._control
            pool.submit(self._handle, request_id, method, args, kwargs, context)

    def _handle(self, request_id: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                context: dict[str, Any]) -> None:
        structlog.contextvars.clear_contextvars()  # a pool thread: nothing of the last request
        structlog.contextvars.bind_contextvars(**context, shard=self._shard)
        try:
            if method not in EXECUTION_METHODS and method not in CONTROL_METHODS:
                raise SupervisorError(f"a shard worker does not answer {method!r}")
            result = getattr(self._sup, method)(*args, **kwargs)
            self._reply(request_id, True, result)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            self._reply(request_id, False, portable(exc))

    def _reply(self, request_id: int, ok: bool, payload: Any) -> None:
        try:
            with self._send_lock:
                self._conn.send((request_id, ok, payload))
        except (OSError, EOFError):
            pass  # the router is gone; the read loop sees it too
        except Exception as exc:  # noqa: BLE001 - a result that does not pickle
            with self._send_lock:
                self._conn.send((request_id, False, portable(exc)))


def config_for(db_path: Path, *, library_dir: Path | None, ceilings: Ceilings, image_key: bytes,
               run_root: Path, image_interval: float, shard: Shard,
               log_format: str | None) -> WorkerConfig:
    return WorkerConfig(str(db_path), str(library_dir) if library_dir else None, ceilings,
                        image_key, str(run_root), image_interval, shard, log_format)


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[1]))
    config = conn.recv()
    worker_main(conn, config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
