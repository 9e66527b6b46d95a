"""Used as a library, vm-system never writes to its host program's stdout: its log lines go
through the standard `logging` module (the host's handlers decide; with none, warnings and
errors reach stderr), or wherever the host configured structlog to send them.

Each test is a real Python process importing the packages the way README's "Use it as a
library" does, provoking log lines of the engine (a trap and its rollback), of the store (its
creation) and of the supervisor (a session, a trap in it, the close)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IMPORTS = {
    "sandbox first": "from sandbox import Sandbox\nfrom supervisor import Supervisor\n",
    "supervisor first": "from supervisor import Supervisor\nfrom sandbox import Sandbox\n",
}

WORK = """
import os, tempfile
with Sandbox() as sb:
    sb.eval("var kept = 1")
    assert sb.eval("function f() { return f() + 1 } f()").session_state.state == "rolled_back"
folder = tempfile.mkdtemp()
with Supervisor.open(os.path.join(folder, "db.sqlite")) as sup:
    template = sup.templates.create("demo")
    session = sup.create_session(template.id, "ws", "abc123", folder)
    sup.repl(session.id, "function g() { return g() + 1 } g()")
    sup.close_session(session.id)
"""


def _host(prelude: str, imports: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", prelude + imports + WORK], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("order", sorted(IMPORTS))
def test_nothing_reaches_stdout_and_warnings_reach_stderr(order: str) -> None:
    out = _host("", IMPORTS[order])
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    # Python's last-resort handler: warnings and errors only, on stderr.
    assert "event='session_rolled_back'" in out.stderr
    assert "session_ready" not in out.stderr


@pytest.mark.parametrize("order", sorted(IMPORTS))
def test_the_host_programs_logging_handlers_decide(order: str) -> None:
    prelude = ("import logging, sys\n"
               "logging.basicConfig(level=logging.INFO, stream=sys.stderr,"
               " format='%(name)s|%(levelname)s|%(message)s')\n")
    out = _host(prelude, IMPORTS[order])
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    for logger, level, event in (("sandbox", "INFO", "sandbox_rolled_back"),
                                 ("store.schema", "INFO", "store.migrated"),
                                 ("supervisor", "INFO", "session_ready"),
                                 ("supervisor.pipeline", "WARNING", "session_rolled_back")):
        assert any(line.startswith(f"{logger}|{level}|event='{event}'") for line in lines), \
            (logger, event, out.stderr)


def test_a_host_that_configures_structlog_keeps_its_configuration() -> None:
    prelude = ("import structlog\n"
               "seen = []\n"
               "def keep(logger, method, event):\n"
               "    seen.append(event['event'])\n"
               "    raise structlog.DropEvent\n"
               "structlog.configure(processors=[keep])\n")
    imports = IMPORTS["sandbox first"]
    epilogue = ("\nimport sys\n"
                "assert {'sandbox_rolled_back', 'store.migrated', 'session_ready'} <= set(seen), seen\n"
                "sys.stderr.write('checked\\n')\n")
    out = subprocess.run([sys.executable, "-c", prelude + imports + WORK + epilogue], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "checked\n")
