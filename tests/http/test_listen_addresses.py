"""`vm-system serve --listen`: every address it cannot use is one line and exit 2, through the
real CLI in a subprocess (issue 11: port 99999 printed an OverflowError traceback)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from http_daemon import REPO

from supervisor.adapters.http.server import ServeError, _bind

BAD = ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:abc", "127.0.0.1:",
       ":3210", "3210", "", "127.0.0.1", "::1:3210", "[::1", "[::1]", "[::1]:99999", "[zz]:1",
       "a b:1", "127.0.0.1:٣٢١٠", "127.0.0.1:" + "9" * 5000, "no-such-host.invalid:3210"]


def _serve(tmp_path: Path, listen: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "supervisor.adapters.cli", "serve", "--db", str(tmp_path / "db.sqlite"),
         "--listen", listen], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=120)


@pytest.mark.parametrize("listen", BAD, ids=[b[:30] or "empty" for b in BAD])
def test_a_bad_listen_address_is_one_line_and_exit_2(tmp_path: Path, listen: str) -> None:
    done = _serve(tmp_path, listen)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("vm-system: error: "), lines
    assert "Traceback" not in done.stderr


def test_an_address_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = _serve(tmp_path, f"127.0.0.1:{taken.getsockname()[1]}")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr[-2000:]
    assert "cannot listen on" in done.stderr


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "no-such-host.invalid:3210", "in-use"])
def test_a_failed_bind_leaves_no_socket_open(listen: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if listen == "in-use":
            listen = f"127.0.0.1:{taken.getsockname()[1]}"
        before = _open_fds()
        with pytest.raises(ServeError):
            _bind(listen)
        assert _open_fds() == before


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "localhost:0", "127.0.0.1:00000"])
def test_good_addresses_still_serve(tmp_path: Path, listen: str) -> None:
    sock = _bind(listen)
    try:
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()


def test_an_ipv6_address_is_served_and_announced_in_brackets(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.adapters.cli", "serve", "--db", str(tmp_path / "db.sqlite"),
         "--listen", "[::1]:0", "--log-format", "json"], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"vm-system listening on http://\[::1\]:(\d+)", line)
        assert match, line
        with socket.create_connection(("::1", int(match.group(1))), timeout=30) as conn:
            conn.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
