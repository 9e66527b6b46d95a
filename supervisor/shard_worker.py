"""One worker process of a `ShardedSupervisor`: a `Supervisor` for a share of the sessions.

Started as `python -m supervisor.shard_worker FD...`: each FD is its end of a socket pair with
the router, so nothing of the parent's `__main__` is re-imported, whatever script it runs. The
first connection carries the `WorkerConfig` in and the start-up answer out (whether the
database opened, which sessions were restored). Then every connection has a thread of its
own, reading a request `(request, log_context)` (a `supervisor.worker_requests` dataclass),
running it and answering `(ok, result_or_exception)`: one request at a time per connection, no hand-off between
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

from supervisor.boot import BootConfig, Shard
from supervisor.core import Supervisor
from supervisor.errors import SupervisorError
from supervisor.worker_requests import Close, answer


@dataclass(frozen=True)
class WorkerConfig:
    boot: BootConfig  # paths absolute, the image key given
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
        sup = Supervisor.start(config.boot, shard=config.shard)
    except BaseException as exc:  # reported to the router, which fails to start
        first.send((False, portable(exc)))
        return
    restored = sup.runtime_summary().active_session_ids
    first.send((True, restored))
    log.info("shard_worker_ready", sessions=len(restored))
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
                request, context = conn.recv()
            except (EOFError, OSError):
                # The router is gone (killed, or closing its ends after a close).
                self._stop(0.0)
                return
            ok, payload = self._handle(request, context)
            try:
                conn.send((ok, payload))
            except (OSError, EOFError):
                self._stop(0.0)
                return
            except Exception as exc:  # a result that does not pickle
                conn.send((False, portable(exc)))
            if isinstance(request, Close):
                self.stopped.set()

    def _stop(self, grace: float) -> None:
        """Persist what can be persisted, once, and let the process end."""
        with self._stop_lock:
            if not self.stopped.is_set():
                self._sup.close(grace)
                self.stopped.set()

    def _handle(self, request: object, context: dict[str, Any]) -> tuple[bool, Any]:
        structlog.contextvars.clear_contextvars()  # nothing of the connection's last request
        structlog.contextvars.bind_contextvars(**context, shard=self._shard)
        try:
            if isinstance(request, Close):
                with self._stop_lock:  # not while a lost router's _stop closes it
                    request.apply(self._sup)
                return True, None
            return True, answer(self._sup, request)
        except BaseException as exc:  # every failure goes back to the caller
            return False, portable(exc)


def main(argv: list[str]) -> int:
    conns = [Connection(int(fd)) for fd in argv[1:]]
    worker_main(conns, conns[0].recv())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
