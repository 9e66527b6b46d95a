"""The host half of the `exec` module: commands on a capability's allowlist, run as supervised
subprocesses.

A script names a command by its allowlisted name, never by a path, and gives its arguments as a
list (no shell ever parses them). The command runs in its own session and process group, in the
given working directory, with exactly the policy's environment, stdin from /dev/null unless the
script gave bytes, every descriptor but 0, 1 and 2 closed, under rlimits, and (where the machine
allows unprivileged user and network namespaces) with no network. Whatever way it ends (exit,
timeout, stop, output cap) the whole process group is killed and the command reaped before the
call returns, so a backgrounded grandchild does not outlive it.

What a process group cannot hold: a descendant that calls setsid() or setpgid() leaves the
group. Where a pids cgroup can be created (a cgroup v1 `pids` hierarchy or a delegated v2
subtree the daemon may write), each command gets its own cgroup: its pids.max bounds the
command's process count (RLIMIT_NPROC does not when the daemon runs as root), and every process
left in it, setsid'd or not, is killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import itertools
import os
import resource
import select
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import structlog

from supervisor.modules.errors import ModuleError

log = structlog.get_logger(__name__)

# Never the daemon's $PATH: what a bare name means must not depend on how the daemon was started.
FIXED_PATH = ("/usr/local/bin", "/usr/bin", "/bin")

# execve's own ceilings are 128 KiB per string and about 2 MiB for argv and envp together;
# these stay well inside them so the failure is ours, with a message, not E2BIG from the kernel.
MAX_ARGS = 1024
MAX_ARG_BYTES = 128 * 1024 - 1
MAX_ARGS_TOTAL_BYTES = 512 * 1024
MAX_STDIN_BYTES = 16 * 1024 * 1024
# Output is buffered in the daemon three times over (stdout, stderr, both interleaved).
MAX_OUTPUT_CEILING = 64 * 1024 * 1024

# How often a running command checks should_stop (seconds): "a few milliseconds".
POLL_SECONDS = 0.005
# After the command's main process is gone and its group killed, how long to wait for the pipes
# to reach end-of-file: only a process that left the group (setsid) can hold them open longer.
DRAIN_GRACE_SECONDS = 0.05
READ_CHUNK = 64 * 1024

# Variables that make the dynamic loader or libc load or read files the capability did not
# name. The capability's author sets the environment, but a loader variable turns "run git"
# into "run any code", so a policy may not carry one.
LOADER_VARIABLES = frozenset({
    "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE",
    "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR",
})

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

# Codes a script sees, beside Node's own errno names.
NOT_ALLOWED = "ERR_COMMAND_NOT_ALLOWED"
OUTPUT_LIMIT = "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"  # Node's, for maxBuffer
CPU_LIMIT = "ERR_COMMAND_CPU_LIMIT"
FILE_LIMIT = "EFBIG"
ABORTED = "ABORT_ERR"  # Node's, for a call aborted through its signal
SPAWN_FAILED = "ERR_COMMAND_SPAWN_FAILED"


def _empty_env() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class CommandPolicy:
    """What a capability lets commands do. Built at capability-add time: a bad field raises
    ValueError (for the capability's author, never the script)."""

    allow: Mapping[str, str]  # name -> absolute path, from resolve_allowlist
    env: Mapping[str, str] = field(default_factory=_empty_env)  # the WHOLE environment
    timeout_ms: int = 10_000  # per command, inside the execution's deadline
    max_output_bytes: int = 1024 * 1024  # stdout+stderr together (Node's maxBuffer default)
    cpu_seconds: int = 10
    memory_bytes: int = 1024 * 1024 * 1024  # address space (RLIMIT_AS), not resident memory
    max_file_bytes: int = 64 * 1024 * 1024  # the largest file the command may write
    max_open_files: int = 256
    max_processes: int = 64  # see _limit_processes for what this really bounds
    network: bool = False  # False: no network where the machine allows a network namespace

    def __post_init__(self) -> None:
        for name, path in self.allow.items():
            if not _is_bare_name(name) and not (isinstance(name, str) and os.path.isabs(name)):
                raise ValueError(f"allowlist entry {name!r} is not a command name")
            if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path:
                raise ValueError(f"allowlist entry {name!r} must map to an absolute path")
        for key, value in self.env.items():
            _check_env_entry(key, value)
        bounds = {
            "timeout_ms": (1, 3_600_000), "max_output_bytes": (1, MAX_OUTPUT_CEILING),
            "cpu_seconds": (1, 3600), "memory_bytes": (16 * 1024 * 1024, 1 << 40),
            "max_file_bytes": (0, 1 << 40), "max_open_files": (8, 65_536), "max_processes": (1, 4096),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")
        object.__setattr__(self, "allow", MappingProxyType(dict(self.allow)))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None  # set when the command exited
    signal: int | None  # set when a signal ended it
    stdout: bytes
    stderr: bytes
    output: bytes  # stdout and stderr interleaved in the order they were read
    ms: float
    timed_out: bool
    truncated: bool
    network_isolated: bool


class CommandStopped(ModuleError):
    """The command was stopped (timeout, abort, output cap, a CPU or file-size limit): the
    ModuleError the script sees, with what the command had written so far in `result`."""

    def __init__(self, code: str, message: str, result: CommandResult) -> None:
        super().__init__(code, message)
        self.result = result


def _is_bare_name(name: object) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 255 and name.isprintable() and name.strip() == name
            and not any(ch.isspace() for ch in name) and "/" not in name and name not in (".", ".."))


def _check_env_entry(key: object, value: object) -> None:
    if not isinstance(key, str) or not key or "=" in key or "\0" in key:
        raise ValueError(f"environment variable name {key!r} is not valid")
    if not isinstance(value, str) or "\0" in value:
        raise ValueError(f"environment variable {key} must be a string without NUL")
    if key.startswith("LD_") or key in LOADER_VARIABLES:
        raise ValueError(f"environment variable {key} is refused: it changes what the loader runs")
    try:
        key.encode("utf-8")
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"environment variable {key!r} is not Unicode text") from None


def _executable_file(path: str) -> bool:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and os.access(path, os.X_OK)


def resolve_allowlist(names: list[str]) -> dict[str, str]:
    """name -> absolute path of the executable regular file each entry means. A bare name is
    looked up on FIXED_PATH; an absolute path is taken as given; both are resolved (realpath),
    so a later change of a symlink does not change what runs. Anything else: ValueError."""
    if not isinstance(names, list):
        raise ValueError("the allowlist must be a list of command names or absolute paths")
    resolved: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"allowlist entry {name!r} is not a string")
        if "\0" in name:
            raise ValueError(f"allowlist entry {name!r} holds NUL")
        if _is_bare_name(name):
            candidates = [os.path.join(folder, name) for folder in FIXED_PATH]
        elif os.path.isabs(name) and name.isprintable() and name.strip() == name:
            candidates = [name]
        else:
            raise ValueError(f"allowlist entry {name!r} must be a bare command name or an absolute path")
        for candidate in candidates:
            real = os.path.realpath(candidate)
            if _executable_file(real):
                resolved[name] = real
                break
        else:
            raise ValueError(f"allowlist entry {name!r} is not an executable file")
    return resolved


# ---------------------------------------------------------------------------------------------
# Machine capabilities, probed once per process.

_probe_lock = threading.Lock()
_netns_usable: bool | None = None
_libc_unshare: Callable[[int], int] | None = None


def _unshare_function() -> Callable[[int], int] | None:
    """libc's unshare(2), bound before any fork: looking a symbol up in the forked child would
    take the dynamic loader's lock, which another thread may have held at fork time."""
    native = getattr(os, "unshare", None)  # Python 3.12+
    if native is not None:
        def call(flags: int) -> int:
            try:
                native(flags)
            except OSError:
                return -1
            return 0
        return call
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.unshare
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def network_namespaces_usable() -> bool:
    """Whether a child may unshare a user and a network namespace (probed with /bin/true once)."""
    global _netns_usable, _libc_unshare
    with _probe_lock:
        if _netns_usable is None:
            _libc_unshare = _unshare_function()
            _netns_usable = False
            if _libc_unshare is not None:
                unshare = _libc_unshare

                def probe() -> None:
                    if unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
                        os._exit(121)

                try:
                    done = subprocess.run(["/bin/true"], env={}, preexec_fn=probe, check=False,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, timeout=10)
                    _netns_usable = done.returncode == 0
                except (OSError, subprocess.SubprocessError):
                    _netns_usable = False
        return _netns_usable


class _PidsCgroups:
    """Where per-command pids cgroups can be made, found once: the daemon's own cgroup in a v1
    `pids` hierarchy, or its v2 cgroup when `pids` is enabled for its children."""

    def __init__(self) -> None:
        self.base: str | None = None
        self._counter = itertools.count()
        self._found = False
        self._lock = threading.Lock()

    def _find(self) -> str | None:
        try:
            with open("/proc/self/mounts", encoding="utf-8") as handle:
                mounts = [line.split() for line in handle]
            with open("/proc/self/cgroup", encoding="utf-8") as handle:
                memberships = [line.rstrip("\n").split(":", 2) for line in handle]
        except OSError:
            return None
        own = {controllers: path for _, controllers, path in memberships}
        for mount in mounts:
            if len(mount) < 4:
                continue
            point, kind, options = mount[1], mount[2], mount[3].split(",")
            if kind == "cgroup" and "pids" in options and "pids" in own:
                folder = os.path.join(point, own["pids"].lstrip("/"), "vm-system-exec")
            elif kind == "cgroup2" and "" in own:
                parent = os.path.join(point, own[""].lstrip("/"))
                try:
                    with open(os.path.join(parent, "cgroup.subtree_control"), encoding="utf-8") as handle:
                        if "pids" not in handle.read().split():
                            continue
                except OSError:
                    continue
                folder = os.path.join(parent, "vm-system-exec")
            else:
                continue
            try:
                os.makedirs(folder, exist_ok=True)
                if os.access(folder, os.W_OK):
                    return folder
            except OSError:
                continue
        return None

    def create(self, max_processes: int) -> tuple[str, int] | None:
        """A new cgroup's path and an open descriptor of its cgroup.procs, or None."""
        with self._lock:
            if not self._found:
                self.base, self._found = self._find(), True
        if self.base is None:
            return None
        path = os.path.join(self.base, f"{os.getpid()}-{next(self._counter)}")
        try:
            os.mkdir(path)
        except OSError:
            return None
        try:
            with open(os.path.join(path, "pids.max"), "w", encoding="ascii") as handle:
                handle.write(str(max_processes))
            return path, os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            _remove_cgroup(path)
            return None


_cgroups = _PidsCgroups()


def pids_cgroup_usable() -> bool:
    """Whether commands run in a pids cgroup of their own here (see the module's docstring)."""
    made = _cgroups.create(1)
    if made is None:
        return False
    os.close(made[1])
    _remove_cgroup(made[0])
    return True


def _cgroup_pids(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as handle:
            return [int(line) for line in handle if line.strip()]
    except OSError:
        return []


def _kill_cgroup(path: str) -> None:
    # Repeated because a process may fork between the read and the kill; pids.max keeps the
    # number of rounds small, and a killed process cannot fork again.
    for _ in range(100):
        pids = _cgroup_pids(path)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001)
    log.warning("exec.cgroup_not_emptied", cgroup=os.path.basename(path))


def _remove_cgroup(path: str) -> None:
    # A killed process leaves the cgroup only once it is reaped (by init, for a grandchild).
    for _ in range(200):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.001)
    log.warning("exec.cgroup_left_behind", cgroup=os.path.basename(path))


# ---------------------------------------------------------------------------------------------
# The child's setup between fork and exec.

def _child_setup(policy: CommandPolicy, isolate: bool, cgroup_fd: int | None) -> Callable[[], None]:
    """The preexec function. The daemon has threads, so the child may only make system calls
    that take no lock another thread could have held at fork: everything is computed here, in
    the parent, and the child only calls sigprocmask, write, unshare and setrlimit."""
    unshare = _libc_unshare
    limits = [
        (resource.RLIMIT_CPU, (policy.cpu_seconds, policy.cpu_seconds + 1)),  # SIGXCPU, then SIGKILL
        (resource.RLIMIT_AS, (policy.memory_bytes, policy.memory_bytes)),
        (resource.RLIMIT_FSIZE, (policy.max_file_bytes, policy.max_file_bytes)),
        (resource.RLIMIT_NOFILE, (policy.max_open_files, policy.max_open_files)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    nproc = (resource.RLIMIT_NPROC, (policy.max_processes, policy.max_processes))
    setrlimit = resource.setrlimit
    sigmask = signal.pthread_sigmask
    no_signals: set[signal.Signals] = set()

    def setup() -> None:
        # A thread of the daemon may block signals; the command must still get SIGXCPU/SIGXFSZ.
        sigmask(signal.SIG_SETMASK, no_signals)
        if cgroup_fd is not None:
            os.write(cgroup_fd, b"0")
        if isolate and unshare is not None and unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
            os._exit(126)
        for which, pair in limits:
            setrlimit(which, pair)
        # After unshare: a new user namespace counts its own processes against RLIMIT_NPROC and
        # its ceiling is the one in force when it was made, the daemon's.
        setrlimit(*nproc)

    return setup


# ---------------------------------------------------------------------------------------------
# Argument checks.

def _allowed_path(policy: CommandPolicy, cmd: object) -> str:
    if not isinstance(cmd, str):
        raise ModuleError("ERR_INVALID_ARG_TYPE", "the command must be a string")
    shown = cmd if cmd.isprintable() and len(cmd) <= 200 else repr(cmd[:200])
    path = policy.allow.get(cmd)
    if path is None:
        raise ModuleError(NOT_ALLOWED, f"command not allowed: {shown}")
    return path


def _checked_args(cmd: str, args: object) -> list[str]:
    if not isinstance(args, list):
        raise ModuleError("ERR_INVALID_ARG_TYPE", f"{cmd}: the arguments must be a list of strings")
    if len(args) > MAX_ARGS:
        raise ModuleError("E2BIG", f"{cmd}: more than {MAX_ARGS} arguments")
    total = 0
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            raise ModuleError("ERR_INVALID_ARG_TYPE", f"{cmd}: argument {index} is not a string")
        if "\0" in arg:
            raise ModuleError("ERR_INVALID_ARG_VALUE", f"{cmd}: argument {index} holds a null byte")
        try:
            size = len(arg.encode("utf-8"))
        except UnicodeEncodeError:
            raise ModuleError("ERR_INVALID_ARG_VALUE", f"{cmd}: argument {index} is not Unicode text") from None
        if size > MAX_ARG_BYTES:
            raise ModuleError("E2BIG", f"{cmd}: argument {index} is longer than {MAX_ARG_BYTES} bytes")
        total += size + 1
    if total > MAX_ARGS_TOTAL_BYTES:
        raise ModuleError("E2BIG", f"{cmd}: the arguments are longer than {MAX_ARGS_TOTAL_BYTES} bytes together")
    return list(args)


def _checked_stdin(cmd: str, stdin: object) -> bytes | None:
    if stdin is None:
        return None
    if not isinstance(stdin, bytes | bytearray | memoryview):
        raise ModuleError("ERR_INVALID_ARG_TYPE", f"{cmd}: stdin must be bytes")
    data = bytes(stdin)
    if len(data) > MAX_STDIN_BYTES:
        raise ModuleError("E2BIG", f"{cmd}: stdin is larger than {MAX_STDIN_BYTES} bytes")
    return data


# ---------------------------------------------------------------------------------------------
# Running.

@dataclass
class _Streams:
    """The command's pipes, read (and stdin written) without blocking, in arrival order."""

    limit: int
    stdout: list[bytes] = field(default_factory=list)
    stderr: list[bytes] = field(default_factory=list)
    output: list[bytes] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def take(self, chunk: bytes, into: list[bytes]) -> None:
        room = self.limit - self.size
        if len(chunk) > room:
            chunk, self.truncated = chunk[:room], True
        if chunk:
            into.append(chunk)
            self.output.append(chunk)
            self.size += len(chunk)


class _Run:
    """One running command: its process, pipes, cgroup and the loop that watches them."""

    def __init__(self, proc: subprocess.Popen[bytes], streams: _Streams, stdin: bytes | None,
                 cgroup: str | None) -> None:
        self.proc = proc
        self.streams = streams
        self.cgroup = cgroup
        self.pidfd = os.pidfd_open(proc.pid)
        self.poller = select.poll()
        self.readers: dict[int, list[bytes]] = {}
        for pipe, into in ((proc.stdout, streams.stdout), (proc.stderr, streams.stderr)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self.readers[pipe.fileno()] = into
            self.poller.register(pipe.fileno(), select.POLLIN)
        self.poller.register(self.pidfd, select.POLLIN)
        self.pending = memoryview(stdin or b"")
        self.stdin_fd: int | None = None
        if proc.stdin is not None:
            self.stdin_fd = proc.stdin.fileno()
            os.set_blocking(self.stdin_fd, False)
            self.poller.register(self.stdin_fd, select.POLLOUT)
            if not self.pending:
                self._close_stdin()
        self.exited = False

    def _close_stdin(self) -> None:
        # Closing our end is the command's end-of-file, also when it stopped reading early.
        if self.stdin_fd is not None:
            self.poller.unregister(self.stdin_fd)
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.stdin_fd = None
        self.pending = memoryview(b"")

    def step(self, timeout: float) -> None:
        """Wait up to `timeout` seconds and handle whatever became ready."""
        for fd, _events in self.poller.poll(max(0, int(timeout * 1000 + 0.999))):
            if fd == self.pidfd:
                self.exited = True
                self.poller.unregister(self.pidfd)
            elif fd == self.stdin_fd:
                self._write_stdin()
            elif fd in self.readers:
                self._read(fd)

    def _write_stdin(self) -> None:
        assert self.stdin_fd is not None
        try:
            written = os.write(self.stdin_fd, self.pending[:READ_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the command closed its stdin
            self._close_stdin()
            return
        self.pending = self.pending[written:]
        if not self.pending:
            self._close_stdin()

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.streams.take(chunk, self.readers[fd])
        else:
            self.poller.unregister(fd)
            del self.readers[fd]

    def kill(self) -> None:
        """SIGKILL the whole group (and cgroup). Called while the main process is unreaped, so
        its pid, which is the group's id, cannot have been reused."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.cgroup is not None:
            _kill_cgroup(self.cgroup)

    def finish(self) -> int:
        """Kill what is left, reap the main process, read the pipes to their end (within a
        grace), release everything; the main process's return code."""
        self.kill()
        returncode = self.proc.wait()
        grace_end = time.monotonic() + DRAIN_GRACE_SECONDS
        while self.readers and not self.streams.truncated:
            left = grace_end - time.monotonic()
            if left <= 0:
                break
            self.step(left)
        self.close()
        return returncode

    def close(self) -> None:
        self._close_stdin()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        os.close(self.pidfd)
        if self.cgroup is not None:
            _remove_cgroup(self.cgroup)
            self.cgroup = None


def _spawn(policy: CommandPolicy, cmd: str, path: str, args: list[str], cwd: str, stdin: bytes | None,
           isolate: bool) -> tuple[subprocess.Popen[bytes], str | None]:
    made = _cgroups.create(policy.max_processes)
    cgroup, cgroup_fd = made if made is not None else (None, None)
    try:
        return _popen(policy, cmd, path, args, cwd, stdin, isolate, cgroup_fd), cgroup
    except BaseException:
        if cgroup is not None:  # nothing joined it
            _remove_cgroup(cgroup)
        raise
    finally:
        if cgroup_fd is not None:
            os.close(cgroup_fd)


def _popen(policy: CommandPolicy, cmd: str, path: str, args: list[str], cwd: str, stdin: bytes | None,
           isolate: bool, cgroup_fd: int | None) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            [cmd, *args], executable=path, cwd=cwd, env=dict(policy.env),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            close_fds=True, start_new_session=True, restore_signals=True,
            preexec_fn=_child_setup(policy, isolate, cgroup_fd))
    except FileNotFoundError:
        raise ModuleError("ENOENT", f"spawn {cmd} ENOENT") from None
    except PermissionError:
        raise ModuleError("EACCES", f"spawn {cmd} EACCES") from None
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, SPAWN_FAILED)
        raise ModuleError(code, f"spawn {cmd} {code}") from None
    except subprocess.SubprocessError:
        raise ModuleError(SPAWN_FAILED, f"spawn {cmd}: the command could not be set up") from None


def run_command(policy: CommandPolicy, cmd: str, args: list[str], cwd: str, *, deadline: float,
                should_stop: Callable[[], bool], stdin: bytes | None = None) -> CommandResult:
    """Run allowlisted `cmd` with `args` in `cwd` and wait for it, within min(timeout_ms,
    deadline). A non-zero exit is a result, not an error; a stop is a CommandStopped."""
    path = _allowed_path(policy, cmd)
    argv = _checked_args(cmd, args)
    data = _checked_stdin(cmd, stdin)
    if not isinstance(cwd, str) or not os.path.isabs(cwd) or not os.path.isdir(cwd):
        raise ModuleError("ENOENT", f"spawn {cmd} ENOENT: the working directory is missing")
    if should_stop():
        raise ModuleError(ABORTED, f"{cmd}: the execution was stopped")
    isolate = not policy.network and network_namespaces_usable()
    start = time.monotonic()
    end = min(start + policy.timeout_ms / 1000, deadline)
    if end <= start:
        raise ModuleError("ETIMEDOUT", f"{cmd} ran past the execution's time limit")
    proc, cgroup = _spawn(policy, cmd, path, argv, cwd, data, isolate)
    run = _Run(proc, _Streams(policy.max_output_bytes), data, cgroup)
    stop: str | None = None
    try:
        while not run.exited:
            now = time.monotonic()
            if now >= end:
                stop = "timeout"
            elif run.streams.truncated:
                stop = "output"
            elif should_stop():
                stop = "abort"
            if stop is not None:
                break
            run.step(min(end - now, POLL_SECONDS))
        returncode = run.finish()
    except BaseException:
        # Whatever interrupted the wait (KeyboardInterrupt, a bug), the command must not stay.
        run.kill()
        proc.wait()
        run.close()
        raise
    ms = (time.monotonic() - start) * 1000
    return _outcome(policy, cmd, run.streams, returncode, ms, stop, isolate, start, end)


def _outcome(policy: CommandPolicy, cmd: str, streams: _Streams, returncode: int, ms: float, stop: str | None,
             isolate: bool, start: float, end: float) -> CommandResult:
    truncated = streams.truncated
    result = CommandResult(
        exit_code=returncode if returncode >= 0 else None,
        signal=-returncode if returncode < 0 else None,
        stdout=b"".join(streams.stdout), stderr=b"".join(streams.stderr), output=b"".join(streams.output),
        ms=ms, timed_out=stop == "timeout", truncated=truncated, network_isolated=isolate)
    if stop == "timeout":
        if end < start + policy.timeout_ms / 1000:
            raise CommandStopped("ETIMEDOUT", f"{cmd} ran past the execution's time limit", result)
        raise CommandStopped("ETIMEDOUT", f"{cmd} timed out after {policy.timeout_ms} ms", result)
    if stop == "abort":
        raise CommandStopped(ABORTED, f"{cmd}: the execution was stopped", result)
    if truncated:
        raise CommandStopped(OUTPUT_LIMIT, f"{cmd}: stdout and stderr exceeded {policy.max_output_bytes} bytes",
                             result)
    if result.signal == signal.SIGXCPU or (result.signal == signal.SIGKILL and _cpu_exhausted(policy, ms)):
        raise CommandStopped(CPU_LIMIT, f"{cmd}: killed after {policy.cpu_seconds} s of CPU time", result)
    if result.signal == signal.SIGXFSZ:
        raise CommandStopped(FILE_LIMIT, f"{cmd}: a file exceeded {policy.max_file_bytes} bytes", result)
    return result


def _cpu_exhausted(policy: CommandPolicy, ms: float) -> bool:
    # SIGKILL comes from the hard CPU limit when the command ignored SIGXCPU; it cannot have
    # used its CPU seconds in less wall time than that.
    return ms >= policy.cpu_seconds * 1000


async def run_command_async(policy: CommandPolicy, cmd: str, args: list[str], cwd: str, *, deadline: float,
                            should_stop: Callable[[], bool], stdin: bytes | None = None) -> CommandResult:
    """run_command on a thread of its own (a long command must not hold a worker of the loop's
    shared executor); cancelling the awaiting task kills the command and waits until it is
    reaped before the cancellation goes on."""
    cancelled = threading.Event()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[CommandResult] = loop.create_future()

    def deliver(outcome: CommandResult | BaseException) -> None:
        if future.done():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def work() -> None:
        outcome: CommandResult | BaseException
        try:
            outcome = run_command(policy, cmd, args, cwd, deadline=deadline, stdin=stdin,
                                  should_stop=lambda: cancelled.is_set() or should_stop())
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits the outcome
            loop.call_soon_threadsafe(deliver, outcome)

    thread = threading.Thread(target=work, name=f"exec-{cmd}"[:40], daemon=True)
    thread.start()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancelled.set()
        # The command is killed within a poll interval; wait for that without blocking the loop.
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except BaseException:  # noqa: BLE001 - the command's own end, no longer wanted
                break
        if future.done() and not future.cancelled():
            future.exception()  # retrieved, so the loop does not log it as never retrieved
        raise
