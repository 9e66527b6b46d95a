"""The escape corpus of the exec module: what a hostile script may try through run_command,
each case with the exact error code and message it must get (or, where the command runs, the
exact output that shows it got nowhere), and nothing of the command left afterwards."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.modules.commands import (
    CommandPolicy,
    CommandStopped,
    network_namespaces_usable,
    resolve_allowlist,
    run_command,
)
from supervisor.modules.errors import ModuleError

ALLOW = resolve_allowlist(["sh", "echo", "env", "cat", "sleep", "python3"])


@dataclass(frozen=True)
class Escape:
    cmd: str
    args: list[str]
    code: str | None  # None: the command runs, and `stdout` is what it must print
    message: str = ""
    stdout: bytes = b""
    timeout_ms: int = 10_000
    max_output_bytes: int = 1024 * 1024
    max_processes: int = 64


NOT_ALLOWED = "ERR_COMMAND_NOT_ALLOWED"
CONNECT = "import socket, sys\ntry:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\n" \
          "    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)"

CASES = {
    # path tricks for cmd: only the allowlisted name runs, never a path the script picked
    "absolute path to an allowed binary": Escape("/bin/sh", ["-c", "id"], NOT_ALLOWED, "command not allowed: /bin/sh"),
    "resolved path of an allowed binary": Escape(ALLOW["sh"], ["-c", "id"], NOT_ALLOWED,
                                                 f"command not allowed: {ALLOW['sh']}"),
    "dot slash": Escape("./sh", [], NOT_ALLOWED, "command not allowed: ./sh"),
    "dot dot": Escape("../bin/sh", [], NOT_ALLOWED, "command not allowed: ../bin/sh"),
    "trailing space": Escape("sh ", [], NOT_ALLOWED, "command not allowed: sh "),
    "other case": Escape("SH", [], NOT_ALLOWED, "command not allowed: SH"),
    "NUL in the name": Escape("sh\0x", [], NOT_ALLOWED, "command not allowed: 'sh\\x00x'"),
    "not on the list": Escape("bash", ["-c", "id"], NOT_ALLOWED, "command not allowed: bash"),
    "empty name": Escape("", [], NOT_ALLOWED, "command not allowed: "),
    # arguments are argv, never shell text
    "shell metacharacters": Escape("echo", ["a;id", "$(id)", "`id`", "*", "|cat", "&&", ">x", "$HOME"], None,
                                   stdout=b"a;id $(id) `id` * |cat && >x $HOME\n"),
    "NUL in an argument": Escape("echo", ["a\0b"], "ERR_INVALID_ARG_VALUE", "echo: argument 0 holds a null byte"),
    "too many arguments": Escape("echo", ["x"] * 1025, "E2BIG", "echo: more than 1024 arguments"),
    "an argument too long": Escape("echo", ["x" * (128 * 1024)], "E2BIG",
                                   "echo: argument 0 is longer than 131071 bytes"),
    "arguments too long together": Escape("echo", ["x" * 100_000] * 6, "E2BIG",
                                          "echo: the arguments are longer than 524288 bytes together"),
    # what the command can see of the daemon
    "environment leak": Escape("env", [], None, stdout=b""),
    "inherited descriptors": Escape("sh", ["-c", "ls /proc/$$/fd"], None, stdout=b"0\n1\n2\n"),
    "stdin of the daemon": Escape("cat", [], None, stdout=b""),
    # resource abuse
    "fork bomb": Escape("sh", ["-c", "echo $$; f() { f | f & }; f; sleep 100"], "ETIMEDOUT",
                        "sh timed out after 1500 ms", timeout_ms=1500, max_processes=30),
    "sleep past the timeout": Escape("sleep", ["100"], "ETIMEDOUT", "sleep timed out after 300 ms", timeout_ms=300),
    "huge output": Escape("sh", ["-c", "echo $$; while :; do echo yyyyyyyyyyyyyyyyyyyy; done"],
                          "ERR_CHILD_PROCESS_STDIO_MAXBUFFER", "sh: stdout and stderr exceeded 65536 bytes",
                          max_output_bytes=65536),
    "reading a FIFO forever": Escape("cat", ["fifo"], "ETIMEDOUT", "cat timed out after 300 ms", timeout_ms=300),
    "backgrounded grandchild holding the pipes": Escape(
        "sh", ["-c", "echo $$; (sleep 100; echo late) & echo early"], None, stdout=b"early\n"),
}


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("VM_EXEC_DAEMON_SECRET", "do-not-leak")
    monkeypatch.setenv("LD_PRELOAD", "")  # a loader variable of the daemon must not reach the child either
    yield


def _session_members(sid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def _none_left(sid: int) -> bool:
    # generous: SIGKILLed processes are gone within milliseconds; 5 s only guards a hang.
    give_up = time.monotonic() + 5
    while _session_members(sid):
        if time.monotonic() > give_up:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_escape(case: Escape, tmp_path: Path, secret_env: None) -> None:
    os.mkfifo(tmp_path / "fifo")
    policy = CommandPolicy(allow=ALLOW, env={"PATH": "/usr/bin:/bin"} if case.cmd == "sh" else {},
                           timeout_ms=case.timeout_ms, max_output_bytes=case.max_output_bytes,
                           max_processes=case.max_processes)
    if case.code is None:
        result = run_command(policy, case.cmd, case.args, str(tmp_path), deadline=time.monotonic() + 30,
                             should_stop=lambda: False)
        if case.cmd == "sh" and case.args[1].startswith("echo $$"):  # it prints its session id first
            sid, rest = result.stdout.split(b"\n", 1)
            assert _none_left(int(sid))
            assert rest == case.stdout
        else:
            assert result.stdout == case.stdout
        return
    with pytest.raises(ModuleError) as caught:
        run_command(policy, case.cmd, case.args, str(tmp_path), deadline=time.monotonic() + 30,
                    should_stop=lambda: False)
    assert (caught.value.code, caught.value.message) == (case.code, case.message)
    if isinstance(caught.value, CommandStopped) and caught.value.result.stdout[:1].isdigit():
        assert _none_left(int(caught.value.result.stdout.split(b"\n", 1)[0]))


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("network", [False, True], ids=["isolated", "allowed"])
def test_network_reaches_a_local_server_only_when_allowed(network: bool, listener: int, tmp_path: Path) -> None:
    policy = CommandPolicy(allow=ALLOW, network=network)
    result = run_command(policy, "python3", ["-c", CONNECT, str(listener)], str(tmp_path),
                         deadline=time.monotonic() + 30, should_stop=lambda: False)
    isolated = not network and network_namespaces_usable()
    assert result.network_isolated is isolated
    assert result.stdout == (b"refused 101\n" if isolated else b"connected\n")  # 101: ENETUNREACH
