"""The daemon (`vm-system serve`, whose options cli/serve.py declares): uvicorn serving the
REST API over one Supervisor under `/api/`, and the web console (adapters/web) everywhere else.

Shutdown (SIGINT/SIGTERM): stop accepting, let running executions finish for up to
`--shutdown-grace` seconds, cancel what still runs (persisted `cancelled`), persist every
session's state, exit 0. The supervisor drains from the signal on, and the server waits
longer than the grace for requests in flight: each of them is answered by the supervisor (the
execution, `cancelled` if it overstayed, or 503 SHUTTING_DOWN), never cut off by the server.
"""

from __future__ import annotations

import argparse
import math
import re
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:3210"
DEFAULT_MAX_STREAMS = 256


class ServeError(Exception):
    """The daemon cannot start: one readable line, exit 2."""


# HOST:PORT, the host a name, an IPv4 address or a bracketed IPv6 address ([::1]:3210); the
# port ASCII digits (str.isdigit would take "²" and other Unicode digits int() refuses).
_LISTEN = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+(%[\w.-]+)?\]|[^\s:\[\]]+):(?P<port>[0-9]+)")


def parse_listen(listen: str) -> tuple[int, str, int]:
    """(address family, host, port) of a --listen value; ServeError for anything else."""
    match = _LISTEN.fullmatch(listen)
    if match is None:
        raise ServeError(f"--listen must be HOST:PORT (IPv6 as [ADDR]:PORT), got {listen!r}")
    host, digits = match.group("host"), match.group("port").lstrip("0") or "0"
    # Checked before int(): Python refuses to convert thousands of digits.
    if len(digits) > 5 or int(digits) > 65535:
        raise ServeError(f"--listen port must be 0 to 65535 (0 picks a free one), got {digits[:20]}")
    port = int(digits)
    if host.startswith("["):
        return socket.AF_INET6, host[1:-1], port
    return socket.AF_INET, host, port


def _bind(listen: str) -> socket.socket:
    family, host, port = parse_listen(listen)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ServeError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this (Linux): a response written as headers then body
        # must not wait for the client's delayed ACK (40 ms per keep-alive request otherwise).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except (OSError, OverflowError, ValueError, UnicodeError) as exc:
        # Never leave the socket open behind the error (a host name that does not resolve,
        # an address in use, a name IDNA cannot encode, ...).
        sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ServeError(f"cannot listen on {listen}: {reason}") from exc
    return sock


# How long the server waits for requests in flight beyond the grace: a cancelled execution
# takes milliseconds to stop and be recorded; this is for a slow disk.
DRAIN_MARGIN_S = 5.0


def _server_class(on_signal: Callable[[], None]) -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises the signal that stopped it, so the process dies of SIGTERM
        (exit 143). A graceful shutdown is a success: the daemon exits 0."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()
            on_signal()

    return Server


def serve(args: argparse.Namespace) -> None:
    from supervisor.logs import configure_logging

    configure_logging(level="info", fmt=args.log_format)
    import structlog
    import uvicorn

    from supervisor import default_db_path, open_supervisor
    from supervisor.adapters.http.app import create_app
    from supervisor.adapters.http.event_stream import StreamSettings
    from supervisor.adapters.web.app import with_console

    log = structlog.get_logger("supervisor.daemon")
    if args.max_body_kb <= 0:
        raise ServeError(f"--max-body-kb must be positive, got {args.max_body_kb}")
    if args.shutdown_grace < 0:
        raise ServeError(f"--shutdown-grace must not be negative, got {args.shutdown_grace}")
    if args.workers < 0:
        raise ServeError(f"--workers must not be negative, got {args.workers}")
    if args.max_streams <= 0:
        raise ServeError(f"--max-streams must be positive, got {args.max_streams}")
    sock = _bind(args.listen)
    db = Path(args.db) if args.db else default_db_path()
    library_dir = Path(args.library_dir) if args.library_dir else None
    if library_dir is not None and not library_dir.is_dir():
        raise ServeError(f"--library-dir {library_dir} is not a directory")
    from supervisor.errors import ValidationError
    from supervisor.packages import registry_url

    try:
        registry = registry_url(args.registry)
    except ValidationError as exc:
        raise ServeError(f"--registry: {exc.message}") from exc
    try:
        sup = open_supervisor(db, workers=args.workers, library_dir=library_dir,
                              log_format=args.log_format, npm_registry=registry)
    except Exception as exc:
        raise ServeError(f"cannot open the database {db}: {exc}") from exc

    import asyncio

    async def close_supervisor() -> None:
        await asyncio.to_thread(sup.close, args.shutdown_grace)

    draining: list[threading.Thread] = []

    def drain() -> None:
        # From the signal on: the grace runs while the server stops accepting (a second
        # signal starts nothing new).
        if not draining:
            draining.append(threading.Thread(target=sup.drain, args=(args.shutdown_grace,),
                                             name="vm-system-drain", daemon=True))
            draining[0].start()

    api = create_app(sup, token=args.token, max_body=args.max_body_kb * 1024,
                     streams=StreamSettings(max_streams=args.max_streams),
                     close_supervisor=close_supervisor)
    config = uvicorn.Config(with_console(api), log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=math.ceil(args.shutdown_grace + DRAIN_MARGIN_S))
    server = _server_class(drain)(config)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"
    # The one line on stdout: scripts and tests read the address from it.
    sys.stdout.write(f"vm-system listening on {url}\n")
    sys.stdout.flush()
    log.info("daemon_started", url=url, db=str(db), auth=args.token is not None,
             workers=args.workers, npm_registry=registry)
    try:
        server.run(sockets=[sock])
    finally:
        sup.close(args.shutdown_grace)  # no-op if the lifespan already closed it
    log.info("daemon_stopped")
