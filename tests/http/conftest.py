"""Fixtures of the daemon's tests: REAL `vm-system serve` processes, spoken to over loopback.

`daemon` is one daemon (sessions in two worker processes) for the whole session (stopped with
SIGTERM at the end, and it must exit 0); tests that need their own process (a token, a tiny body
limit, a shutdown, a load run) start one with `start_daemon`. The shared helpers live in
`http_daemon.py` (a unique module name: test folders here are not packages).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import Daemon, checked_client, make_worktree, new_session, new_template, repl, start_daemon
from route_checks import SLOW_LIMITS


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    # Sessions in two worker processes: every route test also holds for the sharded daemon
    # (the daemons the other tests start run sessions in their own process).
    proc = start_daemon(tmp_path_factory.mktemp("daemon"), "--workers", "2")
    yield proc
    rc = proc.stop()
    assert rc == 0, (f"the shared daemon (session fixture `daemon`) exited {rc} after SIGTERM; "
                     f"stderr tail:\n{proc.stderr_tail(3)}")
    assert proc.stdout_lines() == [f"vm-system listening on {proc.url}"], \
        "the daemon must print exactly one stdout line"


@pytest.fixture(scope="session")
def api(daemon: Daemon) -> Iterator[httpx.Client]:
    """A client of the shared daemon that checks the cross-cutting rules on every response."""
    with checked_client(daemon.api) as client:
        yield client


@pytest.fixture(scope="session")
def worktree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_worktree(tmp_path_factory.mktemp("worktree"))


# A template, a session, a slow template and a finished execution per test module, shared by
# that module's route tests.
@pytest.fixture(scope="module")
def tpl(api: httpx.Client) -> dict[str, Any]:
    return new_template(api)


@pytest.fixture(scope="module")
def sess(api: httpx.Client, tpl: dict[str, Any], worktree: Path) -> dict[str, Any]:
    return new_session(api, tpl["id"], worktree)


@pytest.fixture(scope="module")
def slow_tpl(api: httpx.Client) -> dict[str, Any]:
    return new_template(api, limits=SLOW_LIMITS)


@pytest.fixture(scope="module")
def finished(api: httpx.Client, sess: dict[str, Any]) -> dict[str, Any]:
    """A finished execution with a few console lines."""
    return repl(api, sess["id"], "for (let i = 0; i < 5; i++) console.log('line', i); 'done'")

