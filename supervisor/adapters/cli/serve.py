"""`vm-system serve`: the daemon's options. The daemon itself is supervisor/adapters/http/server.py,
imported when the command runs (it brings uvicorn and the app)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.http.server import DEFAULT_LISTEN, DEFAULT_MAX_STREAMS


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="run the daemon (REST API on 127.0.0.1:3210 by default)",
        description="Serve the REST API of docs/api.md under /api/, and the web console at every "
                    "other path (open http://HOST:PORT/ in a browser). Sessions survive a restart: "
                    "their state is restored from the database. SIGINT/SIGTERM shut down gracefully.")
    p.add_argument("--db", metavar="PATH",
                   help="the SQLite database (default: $VM_SYSTEM_DB or the user data directory)")
    p.add_argument("--listen", metavar="HOST:PORT", default=DEFAULT_LISTEN,
                   help=f"address to bind (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    p.add_argument("--token", default=os.environ.get("VM_SYSTEM_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on every API route but /api/v1/health; "
                        "the console's files are not secret, and it asks for the token "
                        "(default: $VM_SYSTEM_TOKEN)")
    p.add_argument("--library-dir", metavar="DIR", help="where template library files NAME.js live "
                   "(a name is looked up in the package store first)")
    p.add_argument("--registry", metavar="URL", default=None,
                   help="the npm registry `libs add` fetches from, and the TypeScript transpiler "
                        "on first use (default: $VM_SYSTEM_NPM_REGISTRY, else https://registry.npmjs.org)")
    p.add_argument("--max-body-kb", type=int, default=1024, metavar="N",
                   help="largest request body accepted (default 1024 KiB)")
    p.add_argument("--shutdown-grace", type=float, default=10.0, metavar="S",
                   help="seconds running executions may take to finish at shutdown (default 10)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="run sessions in N worker processes, each owning a share of them, so "
                        "executions use more than one core; 0 (the default) runs them in the "
                        "daemon's own process")
    p.add_argument("--max-streams", type=int, default=DEFAULT_MAX_STREAMS, metavar="N",
                   help="event streams served at once (followers and streamed runs); over it, "
                        f"503 TOO_MANY_STREAMS (default {DEFAULT_MAX_STREAMS})")
    p.add_argument("--log-format", choices=("json", "console"),
                   help="log lines as JSON or readable text (default: readable on a terminal)")
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from supervisor.adapters.http.server import serve

    serve(args)
    return exit_codes.OK
