"""One worker process of a `ShardedSupervisor`: a `Supervisor` for a share of the sessions.

Started as `python -m supervisor.shard_worker FD...`: each FD is its end of a socket pair with
the router, so nothing of the parent's `__main__` is re-imported, whatever script it runs. The
first connection carries the `WorkerConfig` in and the start-up answer out (whether the
database opened, which sessions were restored). Then every connection has a thread of its
own, reading a request `(method, args, kwargs, log_context)`, running it and answering
`(ok, result_or_exception)`: one request at a time per connection, no hand-off between
threads. The router keeps one connection for control requests (a close must never wait
behind executions) and lends the others to its callers.
"""

from __future__ import annotations

import pickle
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import structlog

from supervisor.core import Shard, Supervisor
from supervisor.errors import SupervisorError
from supervisor.settings import Ceilings

# What a worker answers to. Reads (sessions, executions, events, templates) never reach a
# worker: the router answers them from the database itself.
METHODS = frozenset({"create_session", "repl", "run_file", "run", "close_session",
                     "runtime_summary", "flush_images", "drain", "close"})


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
    log_level: str


def portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else an INTERNAL error describing it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # any failure to round-trip means: describe it instead
        return SupervisorError(f"{type(exc).__name__}: {exc}")


def worker_main(conns: list[Connection], config: WorkerConfig) -> None:
    from supervisor.logs import configure_logging

    configure_logging(level=config.log_level, fmt=config.log_format)  # type: ignore[arg-type]
    structlog.contextvars.bind_contextvars(shard=config.shard.index)
    log = structlog.get_logger("supervisor.shard")
    first = conns[0]
    try:
        sup = Supervisor.open(config.db_path, library_dir=config.library_dir,
                              ceilings=config.ceilings, image_key=config.image_key,
                              run_root=config.run_root, image_interval=config.image_interval,
                              shard=config.shard)
    except BaseException as exc:  # reported to the router, which fails to start
        first.send((False, portable(exc)))
        return
    first.send((True, sorted(s.id for s in sup._live_sessions())))
    log.info("shard_worker_ready", sessions=len(sup._live_sessions()))
    server = _Server(sup)
    threads = [threading.Thread(target=server.serve, args=(conn,), name=f"shard-conn-{n}", daemon=True)
               for n, conn in enumerate(conns)]
    for thread in threads:
        thread.start()
    server.stopped.wait()


class _Server:
    def __init__(self, sup: Supervisor) -> None:
        self._sup = sup
        self._shard = sup.shard.index if sup.shard else 0
        self.stopped = threading.Event()
        self._stop_lock = threading.Lock()

    def serve(self, conn: Connection) -> None:
        while not self.stopped.is_set():
            try:
                method, args, kwargs, context = conn.recv()
            except (EOFError, OSError):
                # The router is gone (killed, or closing its ends after a close).
                self._stop(0.0)
                return
            ok, payload = self._handle(method, args, kwargs, context)
            try:
                conn.send((ok, payload))
            except (OSError, EOFError):
                self._stop(0.0)
                return
            except Exception as exc:  # a result that does not pickle
                conn.send((False, portable(exc)))
            if method == "close":
                self.stopped.set()

    def _stop(self, grace: float) -> None:
        """Persist what can be persisted, once, and let the process end."""
        with self._stop_lock:
            if not self.stopped.is_set():
                self._sup.close(grace)
                self.stopped.set()

    def _handle(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                context: dict[str, Any]) -> tuple[bool, Any]:
        structlog.contextvars.clear_contextvars()  # nothing of the connection's last request
        structlog.contextvars.bind_contextvars(**context, shard=self._shard)
        try:
            if method not in METHODS:
                raise SupervisorError(f"a shard worker does not answer {method!r}")
            if method == "close":
                with self._stop_lock:
                    self._sup.close(*args, **kwargs)
                return True, None
            return True, getattr(self._sup, method)(*args, **kwargs)
        except BaseException as exc:  # every failure goes back to the caller
            return False, portable(exc)


def main(argv: list[str]) -> int:
    conns = [Connection(int(fd)) for fd in argv[1:]]
    worker_main(conns, conns[0].recv())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
