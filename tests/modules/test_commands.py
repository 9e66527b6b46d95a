"""supervisor.modules.commands with real subprocesses: the allowlist, what the command gets
(argv, cwd, environment, stdin, descriptors, rlimits), how it ends (exit, signal, timeout,
stop, output cap, limits) and that nothing of it is left afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from supervisor.modules import commands
from supervisor.modules.commands import (
    CommandPolicy,
    CommandResult,
    CommandStopped,
    resolve_allowlist,
    run_command,
    run_command_async,
)
from supervisor.modules.errors import ModuleError

NAMES = ["sh", "cat", "env", "pwd", "sleep", "dd", "python3", "true", "echo"]
PATH_ENV = {"PATH": "/usr/bin:/bin"}
REFUSED = "is refused: it changes what the loader runs"


def _policy(**overrides: object) -> CommandPolicy:
    fields: dict[str, object] = {"allow": resolve_allowlist(NAMES), "env": PATH_ENV, "timeout_ms": 10_000}
    fields.update(overrides)
    return CommandPolicy(**fields)  # type: ignore[arg-type]


def _run(cmd: str, args: list[str], cwd: Path, policy: CommandPolicy | None = None, **kwargs: object) -> CommandResult:
    return run_command(policy or _policy(), cmd, args, str(cwd), deadline=time.monotonic() + 20,
                       should_stop=lambda: False, **kwargs)  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int) -> bool:
    # generous: a SIGKILLed process is gone within milliseconds; 5 s only guards against a hang.
    give_up = time.monotonic() + 5
    while _alive(pid):
        if time.monotonic() > give_up:
            return False
        time.sleep(0.01)
    return True


def _in_session(sid: int) -> list[int]:
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


# --- resolve_allowlist ---------------------------------------------------------------------

def test_a_bare_name_resolves_on_the_fixed_path_to_the_real_file() -> None:
    assert resolve_allowlist(["sh", "/bin/sh"]) == {"sh": os.path.realpath("/usr/bin/sh"),
                                                     "/bin/sh": os.path.realpath("/bin/sh")}


def test_the_daemons_own_path_is_not_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "vmexec-only-here"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(ValueError, match="^allowlist entry 'vmexec-only-here' is not an executable file$"):
        resolve_allowlist(["vmexec-only-here"])


@pytest.mark.parametrize(("entry", "message"), [
    ("bin/sh", "allowlist entry 'bin/sh' must be a bare command name or an absolute path"),
    ("./sh", "allowlist entry './sh' must be a bare command name or an absolute path"),
    ("", "allowlist entry '' must be a bare command name or an absolute path"),
    (" sh", "allowlist entry ' sh' must be a bare command name or an absolute path"),
    ("sh\n", "allowlist entry 'sh\\n' must be a bare command name or an absolute path"),
    ("s h", "allowlist entry 's h' must be a bare command name or an absolute path"),
    ("sh\0", "allowlist entry 'sh\\x00' holds NUL"),
    ("..", "allowlist entry '..' must be a bare command name or an absolute path"),
    ("no-such-command-vmexec", "allowlist entry 'no-such-command-vmexec' is not an executable file"),
    ("/tmp", "allowlist entry '/tmp' is not an executable file"),
    ("/etc/passwd", "allowlist entry '/etc/passwd' is not an executable file"),
])
def test_a_bad_allowlist_entry_is_refused(entry: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        resolve_allowlist(["true", entry])
    assert str(caught.value) == message


def test_a_file_without_the_execute_bit_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "plain"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(ValueError, match="is not an executable file$"):
        resolve_allowlist([str(script)])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"env": {"LD_PRELOAD": "/tmp/x.so"}}, f"environment variable LD_PRELOAD {REFUSED}"),
    ({"env": {"LD_LIBRARY_PATH": "/tmp"}}, f"environment variable LD_LIBRARY_PATH {REFUSED}"),
    ({"env": {"GCONV_PATH": "/tmp"}}, f"environment variable GCONV_PATH {REFUSED}"),
    ({"env": {"A=B": "1"}}, "environment variable name 'A=B' is not valid"),
    ({"env": {"A": "1\0"}}, "environment variable A must be a string without NUL"),
    ({"timeout_ms": 0}, "timeout_ms must be an integer from 1 to 3600000, not 0"),
    ({"max_output_bytes": 1 << 30}, "max_output_bytes must be an integer from 1 to 67108864, not 1073741824"),
    ({"max_open_files": 3}, "max_open_files must be an integer from 8 to 65536, not 3"),
    ({"cpu_seconds": True}, "cpu_seconds must be an integer from 1 to 3600, not True"),
    ({"allow": {"sh": "bin/sh"}}, "allowlist entry 'sh' must map to an absolute path"),
    ({"allow": {"./sh": "/bin/sh"}}, "allowlist entry './sh' is not a command name"),
])
def test_a_bad_policy_is_refused_when_built(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        _policy(**overrides)
    assert str(caught.value) == message


def test_the_policy_is_frozen_and_copies_its_mappings() -> None:
    env = {"A": "1"}
    policy = _policy(env=env)
    env["B"] = "2"
    assert dict(policy.env) == {"A": "1"}
    with pytest.raises(TypeError):
        policy.env["C"] = "3"  # type: ignore[index]


# --- what the command gets -----------------------------------------------------------------

def test_argv_cwd_and_output_streams(tmp_path: Path) -> None:
    result = _run("sh", ["-c", 'echo "$0|$1"; pwd; echo oops >&2; exit 3', "a b", "*"], tmp_path)
    assert result.exit_code == 3 and result.signal is None
    assert result.stdout == f"a b|*\n{tmp_path}\n".encode()
    assert result.stderr == b"oops\n"
    assert sorted(result.output.splitlines()) == sorted((result.stdout + result.stderr).splitlines())
    assert not result.timed_out and not result.truncated


def test_the_environment_is_exactly_the_policys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VM_EXEC_TEST_SECRET", "hunter2")
    assert _run("env", [], tmp_path, _policy(env={"ONLY": "this"})).stdout == b"ONLY=this\n"
    assert _run("env", [], tmp_path, _policy(env={})).stdout == b""


def test_stdin_is_dev_null_unless_given(tmp_path: Path) -> None:
    assert _run("cat", [], tmp_path).stdout == b""
    data = os.urandom(1024 * 1024)  # far more than a pipe holds: written while output is read
    assert _run("cat", [], tmp_path, stdin=data).stdout == data


def test_a_command_that_stops_reading_stdin_is_fine(tmp_path: Path) -> None:
    result = _run("sh", ["-c", "head -c 10"], tmp_path, stdin=b"x" * (4 * 1024 * 1024))
    assert result.stdout == b"x" * 10 and result.exit_code == 0


def test_stdout_and_stderr_filling_together_do_not_deadlock(tmp_path: Path) -> None:
    code = ("import sys\nfor _ in range(40):\n    sys.stdout.write('o' * 65536); sys.stdout.flush()\n"
            "    sys.stderr.write('e' * 65536); sys.stderr.flush()\n")
    result = _run("python3", ["-c", code], tmp_path, _policy(max_output_bytes=8 * 1024 * 1024))
    assert result.exit_code == 0
    assert result.stdout == b"o" * 40 * 65536 and result.stderr == b"e" * 40 * 65536
    assert len(result.output) == 80 * 65536


def test_the_child_sees_only_descriptors_0_1_2(tmp_path: Path) -> None:
    leaked = os.open(str(tmp_path), os.O_RDONLY)
    os.set_inheritable(leaked, True)
    try:
        assert _run("sh", ["-c", "ls /proc/$$/fd"], tmp_path).stdout == b"0\n1\n2\n"
    finally:
        os.close(leaked)


def test_the_child_runs_in_its_own_session(tmp_path: Path) -> None:
    out = _run("sh", ["-c", "echo $$; ps -o sid= -o pgid= -p $$"], tmp_path).stdout.split()
    assert out[0] == out[1] == out[2]  # pid == session id == group id
    assert int(out[1]) != os.getsid(0)


def test_the_rlimits_are_set_in_the_child(tmp_path: Path) -> None:
    policy = _policy(cpu_seconds=7, memory_bytes=300 * 1024 * 1024, max_file_bytes=512 * 1000,
                     max_open_files=40, max_processes=33)
    table = _run("cat", ["/proc/self/limits"], tmp_path, policy).stdout.decode()
    limits = {line[:26].strip(): line[26:].split()[:2] for line in table.splitlines()[1:]}
    assert limits["Max cpu time"] == ["7", "8"]  # SIGXCPU at the soft limit, SIGKILL a second later
    assert limits["Max address space"] == [str(300 * 1024 * 1024)] * 2
    assert limits["Max file size"] == ["512000"] * 2
    assert limits["Max open files"] == ["40"] * 2
    assert limits["Max processes"] == ["33"] * 2
    assert limits["Max core file size"] == ["0"] * 2


def test_a_signal_is_reported_not_raised(tmp_path: Path) -> None:
    result = _run("sh", ["-c", "kill -TERM $$"], tmp_path)
    assert result.signal == signal.SIGTERM and result.exit_code is None


# --- how it ends ---------------------------------------------------------------------------

def test_a_backgrounded_grandchild_is_killed_when_the_command_returns(tmp_path: Path) -> None:
    result = _run("sh", ["-c", "sleep 100 & echo $!"], tmp_path)
    assert result.exit_code == 0
    assert _wait_dead(int(result.stdout))


def test_a_setsid_grandchild_is_killed_only_with_a_pids_cgroup(tmp_path: Path) -> None:
    # setsid(1) forks when it is a group leader; run it in the background so it is not.
    result = _run("sh", ["-c", "setsid sleep 100 & echo $!; sleep 0.2"], tmp_path)
    pid = int(result.stdout)
    try:
        if commands.pids_cgroup_usable():
            assert _wait_dead(pid)
        else:  # it left the process group: documented as what escapes without a cgroup
            assert _alive(pid)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_timeout_ms_kills_the_whole_group(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(CommandStopped) as caught:
        _run("sh", ["-c", "echo $$; sleep 100 & sleep 100"], tmp_path, _policy(timeout_ms=300))
    assert time.monotonic() - started >= 0.3
    assert (caught.value.code, caught.value.message) == ("ETIMEDOUT", "sh timed out after 300 ms")
    result = caught.value.result
    assert result.timed_out and result.signal == signal.SIGKILL
    sid = int(result.stdout)
    assert not _alive(sid)  # the main process was reaped before the call returned
    # generous: the killed grandchild's reaping by init only, far below 5 s.
    give_up = time.monotonic() + 5
    while _in_session(sid) and time.monotonic() < give_up:
        time.sleep(0.01)
    assert _in_session(sid) == []


def test_the_executions_deadline_bounds_the_command(tmp_path: Path) -> None:
    with pytest.raises(CommandStopped) as caught:
        run_command(_policy(timeout_ms=60_000), "sleep", ["100"], str(tmp_path),
                    deadline=time.monotonic() + 0.2, should_stop=lambda: False)
    assert (caught.value.code, caught.value.message) == ("ETIMEDOUT", "sleep ran past the execution's time limit")


def test_a_deadline_already_past_spawns_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ModuleError) as caught:
        run_command(_policy(), "sh", ["-c", f"touch {marker}"], str(tmp_path), deadline=time.monotonic() - 1,
                    should_stop=lambda: False)
    assert (caught.value.code, caught.value.message) == ("ETIMEDOUT", "sh ran past the execution's time limit")
    assert not marker.exists()


def test_should_stop_stops_a_running_command(tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(CommandStopped) as caught:
        run_command(_policy(), "sh", ["-c", "echo $$; exec sleep 100"], str(tmp_path),
                    deadline=time.monotonic() + 30, should_stop=stop.is_set)
    assert (caught.value.code, caught.value.message) == ("ABORT_ERR", "sh: the execution was stopped")
    assert not _alive(int(caught.value.result.stdout))
    assert not caught.value.result.timed_out


def test_should_stop_already_set_spawns_nothing(tmp_path: Path) -> None:
    with pytest.raises(ModuleError) as caught:
        run_command(_policy(), "true", [], str(tmp_path), deadline=time.monotonic() + 5, should_stop=lambda: True)
    assert (caught.value.code, caught.value.message) == ("ABORT_ERR", "true: the execution was stopped")


def test_output_beyond_the_cap_kills_and_truncates(tmp_path: Path) -> None:
    with pytest.raises(CommandStopped) as caught:
        _run("sh", ["-c", "echo $$; exec cat /dev/zero"], tmp_path, _policy(max_output_bytes=100_000))
    assert caught.value.code == "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"
    assert caught.value.message == "sh: stdout and stderr exceeded 100000 bytes"
    result = caught.value.result
    assert result.truncated and len(result.output) == 100_000 and result.stdout == result.output
    assert not _alive(int(result.stdout.split(b"\n", 1)[0]))


def test_a_cpu_hog_is_killed_by_its_cpu_limit(tmp_path: Path) -> None:
    with pytest.raises(CommandStopped) as caught:
        _run("sh", ["-c", "while :; do :; done"], tmp_path, _policy(cpu_seconds=1))
    assert (caught.value.code, caught.value.message) == ("ERR_COMMAND_CPU_LIMIT", "sh: killed after 1 s of CPU time")
    assert caught.value.result.signal == signal.SIGXCPU


def test_a_big_file_writer_is_stopped_at_the_file_size_limit(tmp_path: Path) -> None:
    with pytest.raises(CommandStopped) as caught:
        _run("dd", ["if=/dev/zero", "of=big", "bs=65536", "count=100"], tmp_path, _policy(max_file_bytes=256 * 1024))
    assert (caught.value.code, caught.value.message) == ("EFBIG", "dd: a file exceeded 262144 bytes")
    assert (tmp_path / "big").stat().st_size == 256 * 1024


def test_a_memory_hog_cannot_get_past_its_address_space(tmp_path: Path) -> None:
    result = _run("python3", ["-c", "b = bytearray(400 * 1024 * 1024)"], tmp_path,
                  _policy(memory_bytes=200 * 1024 * 1024))
    assert result.exit_code == 1 and b"MemoryError" in result.stderr


def test_an_fd_hog_cannot_get_past_its_open_files(tmp_path: Path) -> None:
    code = "import os\nfds = []\ntry:\n    while True: fds.append(os.open('/dev/null', 0))\nexcept OSError as e:\n" \
           "    print(len(fds), e.errno)"
    result = _run("python3", ["-c", code], tmp_path, _policy(max_open_files=40))
    count, code_seen = result.stdout.split()
    assert int(code_seen) == 24  # EMFILE
    assert int(count) < 40


def test_a_forker_cannot_get_past_its_process_limit(tmp_path: Path) -> None:
    # RLIMIT_NPROC does not bind root; on a root daemon the pids cgroup is what bounds this.
    code = ("import os, time\nn = 0\nfor _ in range(60):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(100); os._exit(0)\n"
            "    n += 1\nprint(n)")
    result = _run("python3", ["-c", code], tmp_path, _policy(max_processes=10))
    assert int(result.stdout) < 10


def test_a_binary_gone_since_the_allowlist_was_made_is_enoent(tmp_path: Path) -> None:
    tool = tmp_path / "mytrue"
    tool.write_bytes(Path("/bin/true").read_bytes())
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    policy = _policy(allow={"mytrue": resolve_allowlist([str(tool)])[str(tool)]})
    assert _run("mytrue", [], tmp_path, policy).exit_code == 0
    tool.unlink()
    with pytest.raises(ModuleError) as caught:
        _run("mytrue", [], tmp_path, policy)
    assert (caught.value.code, caught.value.message) == ("ENOENT", "spawn mytrue ENOENT")


def test_a_missing_working_directory_is_enoent(tmp_path: Path) -> None:
    with pytest.raises(ModuleError) as caught:
        _run("true", [], tmp_path / "gone")
    assert caught.value.code == "ENOENT"
    assert caught.value.message == "spawn true ENOENT: the working directory is missing"


def test_no_cgroup_is_left_behind(tmp_path: Path) -> None:
    base = commands._cgroups.base
    _run("sh", ["-c", "sleep 100 &"], tmp_path)
    if base is not None:
        assert [entry for entry in os.listdir(base) if entry.startswith(f"{os.getpid()}-")] == []
    else:
        assert not commands.pids_cgroup_usable()


# --- async ---------------------------------------------------------------------------------

def test_the_async_form_returns_the_same_result(tmp_path: Path) -> None:
    async def main() -> CommandResult:
        return await run_command_async(_policy(), "echo", ["hi"], str(tmp_path), deadline=time.monotonic() + 10,
                                       should_stop=lambda: False)
    assert asyncio.run(main()).stdout == b"hi\n"


def test_cancelling_the_async_form_kills_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    async def main() -> int:
        task = asyncio.create_task(run_command_async(
            _policy(), "sh", ["-c", f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 100"],
            str(tmp_path), deadline=time.monotonic() + 30, should_stop=lambda: False))
        while not pidfile.exists():
            await asyncio.sleep(0.01)
        pid = int(pidfile.read_text())
        assert _alive(pid)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid

    pid = asyncio.run(main())
    assert not _alive(pid)  # reaped before the cancellation reached the awaiting task
