"""`vm-system session ...`: live sessions of the daemon."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, get_args

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import UsageError, command, group, resolve_template
from supervisor.adapters.cli.output import Output, when
from vocabulary import SessionStatus

STATUSES = get_args(SessionStatus)  # in lifecycle order, for --help
DEFAULT_BASE_COMMIT = "unknown"


def add_parser(subparsers: Any) -> None:
    sub = group(subparsers, "session", help="manage sessions (through the daemon)",
                description="Sessions: a live JavaScript context made from a template, bound to "
                            "a worktree folder, whose state carries over from one execution to "
                            "the next.")

    p = command(sub, "create", _create, help="start a session from a template",
                description="Start a session: the template's libraries, then its startup files "
                            "in order, then the session is ready. Prints the session.")
    p.add_argument("--template-id", "--template", dest="template", required=True,
                   metavar="TEMPLATE", help="the template's id or name")
    p.add_argument("--worktree-path", "--worktree", dest="worktree", required=True, metavar="DIR",
                   help="the folder the session's files come from (made absolute here)")
    p.add_argument("--workspace-id", metavar="ID",
                   help="a workspace label (default: the worktree folder's name)")
    p.add_argument("--base-commit", dest="base_commit", metavar="OID",
                   help=f"the commit the worktree is at (default: {DEFAULT_BASE_COMMIT!r})")

    p = command(sub, "list", _list, help="list sessions")
    p.add_argument("--status", choices=STATUSES, help="only sessions with this status")

    p = command(sub, "get", _get, help="show a session")
    p.add_argument("session", metavar="SESSION", help="the session's id")

    p = command(sub, "close", _close, help="close a session (idempotent; interrupts a running "
                                           "execution)")
    p.add_argument("session", metavar="SESSION", help="the session's id")


def print_session(out: Output, s: dict[str, Any]) -> None:
    out.fields([
        ("id", s.get("id")), ("status", s.get("status")), ("template", s.get("template_id")),
        ("workspace", s.get("workspace_id")), ("base commit", s.get("base_commit_oid")),
        ("worktree", s.get("worktree_path")), ("created", when(s.get("created_at"))),
        ("closed", when(s.get("closed_at"))), ("last error", s.get("last_error")),
    ])


def _create(api: Any, args: argparse.Namespace, out: Output) -> int:
    worktree = Path(os.path.expanduser(args.worktree))
    # The daemon checks it too; on this machine a missing folder is a typo worth catching
    # before anything is asked of the daemon. (A remote daemon may see other folders, so this
    # only checks when the folder is missing here and the daemon is local.)
    if not worktree.is_dir() and _daemon_is_local(api.base_url):
        raise UsageError(f"--worktree-path: no such directory: {args.worktree}")
    worktree_path = str(worktree.resolve()) if worktree.is_dir() else args.worktree
    workspace_id = args.workspace_id or Path(worktree_path).name or "default"
    base_commit = args.base_commit or DEFAULT_BASE_COMMIT
    template_id = resolve_template(api, args.template)
    session = api.create_session(template_id, workspace_id, base_commit, worktree_path)
    if out.as_json:
        out.json(session)
    else:
        out.line(f"created session {session.get('id')}", "green")
        print_session(out, session)
    return exit_codes.OK


def _daemon_is_local(base_url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(base_url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _list(api: Any, args: argparse.Namespace, out: Output) -> int:
    sessions = api.list_sessions(args.status)
    rows = [[s.get("id"), s.get("status"), s.get("template_id"), s.get("workspace_id"),
             when(s.get("created_at")), s.get("worktree_path")] for s in sessions]
    return out.result(sessions, lambda: out.table(
        ["ID", "STATUS", "TEMPLATE", "WORKSPACE", "CREATED", "WORKTREE"], rows,
        empty="no sessions", styles={1: "status"}))


def _get(api: Any, args: argparse.Namespace, out: Output) -> int:
    session = api.get_session(args.session)
    return out.result(session, lambda: print_session(out, session))


def _close(api: Any, args: argparse.Namespace, out: Output) -> int:
    session = api.close_session(args.session)
    return out.result(session, lambda: out.line(
        f"session {session.get('id', args.session)} is {session.get('status', 'closed')}"))
