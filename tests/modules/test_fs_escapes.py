"""The escape corpus: every way out of a ConfinedFs root we know of, each refused with its exact
code and message, against openat2 and against the walk, with the outside left untouched.

The classes: Judge0's 2024 CVEs (a symlink in the submission pointing at a host file, read and
written through; a symlinked directory component; a symlink swapped in after a check), Deno's
symlink bypasses (/proc/self/..., /dev, relative chains, loops), hardlinks, FIFOs, sockets,
devices, bind mounts of /proc and of a host directory, absolute paths, `..` climbs, NUL, lone
surrogates, over-long paths, the root itself, and two races run by a real thread.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.modules import openat2
from supervisor.modules.errors import ModuleError
from supervisor.modules.fs import ConfinedFs

SECRET = b"SECRET"


@pytest.fixture(params=["openat2", "walk"])
def backend(request: pytest.FixtureRequest) -> bool:
    if request.param == "openat2" and not openat2.openat2_available():
        pytest.skip("this kernel has no openat2 (the walk is tested alone)")
    return request.param == "openat2"


@dataclass(frozen=True)
class Layout:
    worktree: Path
    outside: Path  # a sibling of the worktree: everything in it is out of reach


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    worktree, outside = tmp_path / "worktree", tmp_path / "outside"
    (worktree / "src").mkdir(parents=True)
    (worktree / "hello.txt").write_bytes(b"hello")
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "dir" / "secret.txt").write_bytes(SECRET)
    return Layout(worktree, outside)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(folder.rglob("*"))}


def fails(call: Callable[[], object]) -> ModuleError:
    with pytest.raises(ModuleError) as caught:
        call()
    return caught.value


# -- how each case is set up ---------------------------------------------------------------

Setup = Callable[[Layout], None]


def link(name: str, target: str | Callable[[Layout], str]) -> Setup:
    def make(where: Layout) -> None:
        os.symlink(target(where) if callable(target) else target, where.worktree / name)
    return make


def both(*steps: Setup) -> Setup:
    def make(where: Layout) -> None:
        for step in steps:
            step(where)
    return make


def hardlink(name: str) -> Setup:
    def make(where: Layout) -> None:
        os.link(where.outside / "secret.txt", where.worktree / name)
    return make


def fifo(name: str) -> Setup:
    def make(where: Layout) -> None:
        os.mkfifo(where.worktree / name)
    return make


def unix_socket(name: str) -> Setup:
    def make(where: Layout) -> None:
        # AF_UNIX paths are short (108 bytes): bound in a short folder, then moved in.
        short = tempfile.mkdtemp(prefix="s", dir="/tmp")
        try:
            with socket.socket(socket.AF_UNIX) as server:
                server.bind(os.path.join(short, "s"))
            os.rename(os.path.join(short, "s"), where.worktree / name)
        finally:
            os.rmdir(short)
    return make


def device(name: str) -> Setup:
    def make(where: Layout) -> None:
        try:
            os.mknod(where.worktree / name, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers
        except PermissionError:
            pytest.skip("mknod needs CAP_MKNOD, which this run does not have")
    return make


def nothing(where: Layout) -> None:
    return None


def absolute(*parts: str) -> Callable[[Layout], str]:
    return lambda where: str(where.outside.joinpath(*parts))


@dataclass(frozen=True)
class Escape:
    name: str
    setup: Setup
    call: Callable[[ConfinedFs], object]
    code: str
    message: str


DENIED = "EACCES: permission denied, "
LOOP = "ELOOP: too many symbolic links encountered, "
LONG = "x" * 5000

CASES = [
    # Absolute paths and `..` climbs, refused by the text alone.
    Escape("absolute-read", nothing, lambda fs: fs.read_file("/etc/passwd"), "EACCES", DENIED + "open '/etc/passwd'"),
    Escape("absolute-write", nothing, lambda fs: fs.write_file("/tmp/pwned", b"x"), "EACCES",
           DENIED + "open '/tmp/pwned'"),
    Escape("absolute-readdir", nothing, lambda fs: fs.readdir("/"), "EACCES", DENIED + "scandir '/'"),
    Escape("dotdot", nothing, lambda fs: fs.read_file("../outside/secret.txt"), "EACCES",
           DENIED + "open '../outside/secret.txt'"),
    Escape("dotdot-after-a-name", nothing, lambda fs: fs.read_file("src/../../outside/secret.txt"), "EACCES",
           DENIED + "open 'src/../../outside/secret.txt'"),
    Escape("dotdot-write", nothing, lambda fs: fs.write_file("./../outside/new.txt", b"x"), "EACCES",
           DENIED + "open './../outside/new.txt'"),
    Escape("dotdot-rename-out", nothing, lambda fs: fs.rename("hello.txt", "../hello.txt"), "EACCES",
           DENIED + "rename 'hello.txt' -> '../hello.txt'"),
    Escape("dotdot-rename-in", nothing, lambda fs: fs.rename("../outside/secret.txt", "stolen"), "EACCES",
           DENIED + "rename '../outside/secret.txt' -> 'stolen'"),
    Escape("dotdot-rm", nothing, lambda fs: fs.rm("../outside", recursive=True, force=True), "EACCES",
           DENIED + "rm '../outside'"),
    # Judge0 2024: a symlink in the submission pointing at a host file, read and written through.
    Escape("symlink-absolute-read", link("s", absolute("secret.txt")), lambda fs: fs.read_file("s"), "EACCES",
           DENIED + "open 's'"),
    Escape("symlink-absolute-write", link("s", absolute("secret.txt")), lambda fs: fs.write_file("s", b"pwned"),
           "EACCES", DENIED + "open 's'"),
    Escape("symlink-absolute-append", link("s", absolute("secret.txt")), lambda fs: fs.append_file("s", b"pwned"),
           "EACCES", DENIED + "open 's'"),
    Escape("symlink-etc-passwd", link("p", "/etc/passwd"), lambda fs: fs.read_file("p"), "EACCES", DENIED + "open 'p'"),
    Escape("symlink-relative-out", link("s", "../outside/secret.txt"), lambda fs: fs.read_file("s"), "EACCES",
           DENIED + "open 's'"),
    # ... a symlinked directory component.
    Escape("symlinked-dir-read", link("d", "../outside/dir"), lambda fs: fs.read_file("d/secret.txt"), "EACCES",
           DENIED + "open 'd/secret.txt'"),
    Escape("symlinked-dir-absolute", link("d", "/etc"), lambda fs: fs.read_file("d/passwd"), "EACCES",
           DENIED + "open 'd/passwd'"),
    Escape("symlinked-dir-write", link("d", absolute("dir")), lambda fs: fs.write_file("d/new.txt", b"x"), "EACCES",
           DENIED + "open 'd/new.txt'"),
    Escape("symlinked-dir-readdir", link("d", absolute("dir")), lambda fs: fs.readdir("d"), "EACCES",
           DENIED + "scandir 'd'"),
    Escape("symlinked-dir-stat", link("d", absolute("dir")), lambda fs: fs.stat("d/secret.txt"), "EACCES",
           DENIED + "lstat 'd/secret.txt'"),
    Escape("symlinked-dir-mkdir", link("d", absolute("dir")), lambda fs: fs.mkdir("d/new", recursive=True),
           "EACCES", DENIED + "mkdir 'd/new'"),
    Escape("symlinked-dir-rm", link("d", absolute("dir")), lambda fs: fs.rm("d/secret.txt"), "EACCES",
           DENIED + "rm 'd/secret.txt'"),
    Escape("symlinked-dir-rename-into", link("d", absolute("dir")), lambda fs: fs.rename("hello.txt", "d/h"),
           "EACCES", DENIED + "rename 'hello.txt' -> 'd/h'"),
    Escape("symlinked-dir-rename-from", link("d", absolute("dir")), lambda fs: fs.rename("d/secret.txt", "stolen"),
           "EACCES", DENIED + "rename 'd/secret.txt' -> 'stolen'"),
    Escape("root-parent-link", link("up", ".."), lambda fs: fs.read_file("up/outside/secret.txt"), "EACCES",
           DENIED + "open 'up/outside/secret.txt'"),
    Escape("inner-link-climbs", both(link("src/s", "../../outside/secret.txt")), lambda fs: fs.read_file("src/s"),
           "EACCES", DENIED + "open 'src/s'"),
    # A dangling symlink through which O_CREAT would make a file outside.
    Escape("dangling-relative-create", link("new", "../outside/created.txt"), lambda fs: fs.write_file("new", b"x"),
           "EACCES", DENIED + "open 'new'"),
    Escape("dangling-absolute-create", link("new", absolute("created.txt")), lambda fs: fs.append_file("new", b"x"),
           "EACCES", DENIED + "open 'new'"),
    Escape("dangling-mkdir-name", link("new", absolute("made")), lambda fs: fs.mkdir("new"), "EEXIST",
           "EEXIST: file already exists, mkdir 'new'"),
    # Relative chains.
    Escape("chain-out", both(link("a", "b"), link("b", "src/c"), link("src/c", "../../outside/secret.txt")),
           lambda fs: fs.read_file("a"), "EACCES", DENIED + "open 'a'"),
    Escape("chain-dir-out", both(link("a", "src/b"), link("src/b", "..//../outside")),
           lambda fs: fs.read_file("a/secret.txt"), "EACCES", DENIED + "open 'a/secret.txt'"),
    # Deno's: /proc/self/... and /dev.
    Escape("proc-self-root", link("p", "/proc/self/root"), lambda fs: fs.read_file("p/etc/passwd"), "EACCES",
           DENIED + "open 'p/etc/passwd'"),
    Escape("proc-self-fd", link("fd0", "/proc/self/fd/0"), lambda fs: fs.read_file("fd0"), "EACCES",
           DENIED + "open 'fd0'"),
    Escape("proc-self-cwd", link("c", "/proc/self/cwd"), lambda fs: fs.readdir("c"), "EACCES", DENIED + "scandir 'c'"),
    Escape("proc-self-environ-write", link("e", "/proc/self/environ"), lambda fs: fs.write_file("e", b"x"), "EACCES",
           DENIED + "open 'e'"),
    Escape("dev-dir", link("dev", "/dev"), lambda fs: fs.read_file("dev/zero"), "EACCES", DENIED + "open 'dev/zero'"),
    Escape("dev-zero", link("z", "/dev/zero"), lambda fs: fs.read_file("z"), "EACCES", DENIED + "open 'z'"),
    # Loops.
    Escape("loop-self", link("loop", "loop"), lambda fs: fs.read_file("loop"), "ELOOP", LOOP + "open 'loop'"),
    Escape("loop-pair", both(link("a", "b"), link("b", "a")), lambda fs: fs.write_file("a", b"x"), "ELOOP",
           LOOP + "open 'a'"),
    Escape("loop-dot", link("self", "."), lambda fs: fs.read_file("self/" * 41 + "hello.txt"), "ELOOP",
           LOOP + "open '" + "self/" * 41 + "hello.txt'"),
    # Hardlinks: a second name for a file anywhere on the filesystem.
    Escape("hardlink-read", hardlink("h"), lambda fs: fs.read_file("h"), "EACCES", DENIED + "open 'h'"),
    Escape("hardlink-write", hardlink("h"), lambda fs: fs.write_file("h", b"pwned"), "EACCES", DENIED + "open 'h'"),
    Escape("hardlink-append", hardlink("h"), lambda fs: fs.append_file("h", b"pwned"), "EACCES", DENIED + "open 'h'"),
    Escape("hardlink-via-inner-symlink", both(hardlink("h"), link("l", "h")), lambda fs: fs.read_file("l"), "EACCES",
           DENIED + "open 'l'"),
    # FIFOs (an open for reading or writing would block), sockets, devices.
    Escape("fifo-read", fifo("f"), lambda fs: fs.read_file("f"), "EACCES", DENIED + "open 'f'"),
    Escape("fifo-write", fifo("f"), lambda fs: fs.write_file("f", b"x"), "EACCES", DENIED + "open 'f'"),
    Escape("fifo-via-symlink", both(fifo("f"), link("l", "f")), lambda fs: fs.append_file("l", b"x"), "EACCES",
           DENIED + "open 'l'"),
    Escape("socket-read", unix_socket("sock"), lambda fs: fs.read_file("sock"), "EACCES", DENIED + "open 'sock'"),
    Escape("socket-write", unix_socket("sock"), lambda fs: fs.write_file("sock", b"x"), "EACCES",
           DENIED + "open 'sock'"),
    Escape("device-read", device("null"), lambda fs: fs.read_file("null"), "EACCES", DENIED + "open 'null'"),
    Escape("device-write", device("null"), lambda fs: fs.write_file("null", b"x"), "EACCES", DENIED + "open 'null'"),
    # Malformed paths.
    Escape("nul", nothing, lambda fs: fs.read_file("hello.txt\0/etc/passwd"), "ERR_INVALID_ARG_VALUE",
           "The argument 'path' must be a string without null bytes. Received 'hello.txt\\x00/etc/passwd'"),
    Escape("nul-rename", nothing, lambda fs: fs.rename("hello.txt", "a\0"), "ERR_INVALID_ARG_VALUE",
           "The argument 'newPath' must be a string without null bytes. Received 'a\\x00'"),
    Escape("lone-surrogate", nothing, lambda fs: fs.write_file("a\udc2e\udc2e/x", b"x"), "ERR_INVALID_ARG_VALUE",
           "The argument 'path' must be Unicode text (it holds a lone surrogate). Received 'a\\udc2e\\udc2e/x'"),
    Escape("path-too-long", nothing, lambda fs: fs.read_file(LONG), "ENAMETOOLONG",
           f"ENAMETOOLONG: name too long, open '{LONG}'"),
    Escape("name-too-long", nothing, lambda fs: fs.write_file("src/" + "n" * 256, b"x"), "ENAMETOOLONG",
           "ENAMETOOLONG: name too long, open 'src/" + "n" * 256 + "'"),
    # The root itself.
    Escape("rm-root", nothing, lambda fs: fs.rm(".", recursive=True), "EPERM",
           "EPERM: operation not permitted, rm '.'"),
    Escape("rm-root-empty", nothing, lambda fs: fs.rm("", recursive=True, force=True), "EPERM",
           "EPERM: operation not permitted, rm ''"),
    Escape("rm-root-slash-dot", nothing, lambda fs: fs.rm("./", recursive=True), "EPERM",
           "EPERM: operation not permitted, rm './'"),
    Escape("rename-root", nothing, lambda fs: fs.rename(".", "moved"), "EPERM",
           "EPERM: operation not permitted, rename '.' -> 'moved'"),
    Escape("rename-over-root", nothing, lambda fs: fs.rename("src", "."), "EPERM",
           "EPERM: operation not permitted, rename 'src' -> '.'"),
]


@pytest.mark.timeout(30)  # generous: a hang guard only (a FIFO opened for reading would block forever)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_escape_is_refused(case: Escape, layout: Layout, backend: bool) -> None:
    case.setup(layout)
    before = snapshot(layout.outside)
    fs = ConfinedFs(str(layout.worktree), write=True, use_openat2=backend)
    try:
        error = fails(lambda: case.call(fs))
    finally:
        fs.close()
    assert (error.code, error.message) == (case.code, case.message)
    assert snapshot(layout.outside) == before
    assert (layout.worktree / "hello.txt").read_bytes() == b"hello"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


def test_rm_recursive_unlinks_symlinks_and_never_follows_them(layout: Layout, backend: bool) -> None:
    tree = layout.worktree / "tree"
    (tree / "inner").mkdir(parents=True)
    os.symlink(layout.outside, tree / "abs-dir")
    os.symlink("../../../outside/dir", tree / "inner" / "rel-dir")
    os.symlink(layout.outside / "secret.txt", tree / "file-link")
    before = snapshot(layout.outside)
    fs = ConfinedFs(str(layout.worktree), write=True, use_openat2=backend)
    try:
        fs.rm("tree", recursive=True)
        os.symlink(layout.outside, layout.worktree / "top-link")
        fs.rm("top-link", recursive=True)  # the link goes, not what it points at
    finally:
        fs.close()
    assert not tree.exists() and not (layout.worktree / "top-link").is_symlink()
    assert snapshot(layout.outside) == before


def test_a_sub_root_keeps_the_rest_of_the_worktree_out(layout: Layout, backend: bool) -> None:
    os.symlink("../hello.txt", layout.worktree / "src" / "up")
    fs = ConfinedFs(str(layout.worktree), "src", write=True, use_openat2=backend)
    try:
        error = fails(lambda: fs.read_file("up"))
        assert (error.code, error.message) == ("EACCES", DENIED + "open 'up'")
        error = fails(lambda: fs.write_file("../hello.txt", b"x"))
        assert (error.code, error.message) == ("EACCES", DENIED + "open '../hello.txt'")
    finally:
        fs.close()
    assert (layout.worktree / "hello.txt").read_bytes() == b"hello"


def test_a_root_that_is_a_symlink_out_is_refused(layout: Layout, backend: bool) -> None:
    os.symlink(layout.outside, layout.worktree / "escape")
    error = fails(lambda: ConfinedFs(str(layout.worktree), "escape", use_openat2=backend))
    assert (error.code, error.message) == ("EACCES", DENIED + "open 'escape'")


# -- a symlink swapped in after the check (injected between the look and the open) ----------

@pytest.mark.timeout(30)  # generous: a hang guard only (the FIFO swapped in must not block the open)
@pytest.mark.parametrize("swap_in", ["symlink-out", "fifo", "hardlink"])
@pytest.mark.parametrize("operation", ["read", "write"])
def test_a_file_swapped_after_the_look_is_never_used(layout: Layout, backend: bool, swap_in: str,
                                                     operation: str) -> None:
    target = layout.worktree / "victim"
    target.write_bytes(b"innocent")
    fs = ConfinedFs(str(layout.worktree), write=True, use_openat2=backend)
    real_look = fs._stat_target
    swapped = []

    def look_then_swap(raw: bytes) -> os.stat_result:
        # The real look, then the attack in the window before the open: the one thing a test
        # cannot time for real, so it is injected around the real call.
        seen = real_look(raw)
        if not swapped:
            swapped.append(True)
            os.unlink(target)
            if swap_in == "symlink-out":
                os.symlink(layout.outside / "secret.txt", target)
            elif swap_in == "fifo":
                os.mkfifo(target)
            else:
                os.link(layout.outside / "secret.txt", target)
        return seen

    fs._stat_target = look_then_swap  # type: ignore[method-assign]
    fs._look_first = True  # the look is what is being attacked, on any mount
    before = snapshot(layout.outside)
    try:
        call = (lambda: fs.read_file("victim")) if operation == "read" else (lambda: fs.write_file("victim", b"pwn"))
        error = fails(call)
    finally:
        fs.close()
    assert swapped
    assert (error.code, error.message) == ("EACCES", DENIED + "open 'victim'")
    assert snapshot(layout.outside) == before


# -- bind mounts (need root and a mount namespace that allows them) -------------------------

@pytest.fixture
def bind(layout: Layout) -> Iterator[Callable[[str, str], None]]:
    mounted: list[Path] = []

    def mount(source: str, name: str) -> None:
        point = layout.worktree / name
        point.mkdir()
        done = subprocess.run(["mount", "--bind", source, str(point)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip("bind mounts need root in a namespace that allows them: not here")
        mounted.append(point)

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=True)


@pytest.mark.parametrize(("source", "path", "syscall"), [
    ("/proc", "proc/self/environ", "open"),
    ("/proc", "proc/self/root/etc/passwd", "open"),
    ("/etc", "etc/passwd", "open"),
    ("/etc", "etc", "scandir"),
    ("outside", "mnt/secret.txt", "open"),
])
def test_a_bind_mount_inside_the_root_is_not_crossed(layout: Layout, backend: bool, bind: Callable[[str, str], None],
                                                     source: str, path: str, syscall: str) -> None:
    bind(str(layout.outside) if source == "outside" else source, path.split("/")[0])
    fs = ConfinedFs(str(layout.worktree), write=True, use_openat2=backend)
    try:
        error = fails(lambda: fs.readdir(path) if syscall == "scandir" else fs.read_file(path))
    finally:
        fs.close()
    assert (error.code, error.message) == ("EACCES", DENIED + f"{syscall} '{path}'")


def test_rm_recursive_stops_at_a_bind_mount_and_spares_what_is_behind_it(
        layout: Layout, backend: bool, bind: Callable[[str, str], None]) -> None:
    (layout.worktree / "tree").mkdir()
    bind(str(layout.outside), "tree/mnt")
    before = snapshot(layout.outside)
    fs = ConfinedFs(str(layout.worktree), write=True, use_openat2=backend)
    try:
        error = fails(lambda: fs.rm("tree", recursive=True))
        write_error = fails(lambda: fs.write_file("tree/mnt/new.txt", b"x"))
    finally:
        fs.close()
    assert (error.code, error.message) == ("EACCES", DENIED + "rm 'tree'")
    assert (write_error.code, write_error.message) == ("EACCES", DENIED + "open 'tree/mnt/new.txt'")
    assert snapshot(layout.outside) == before


# -- races run by a real thread --------------------------------------------------------------

def race(swap: Callable[[], None], attempt: Callable[[], str], *, rounds: int = 3000) -> set[str]:
    """Runs `swap` in a loop on a thread while `attempt` runs `rounds` times here; the outcomes
    seen. The loop has a hang guard of its own (the swapper is told to stop either way)."""
    stop = threading.Event()
    problems: list[BaseException] = []

    def swapper() -> None:
        try:
            while not stop.is_set():
                swap()
        except BaseException as exc:
            problems.append(exc)

    thread = threading.Thread(target=swapper)
    thread.start()
    outcomes: set[str] = set()
    try:
        for _ in range(rounds):
            outcomes.add(attempt())
            time.sleep(0)  # let the swapper in between attempts too
    finally:
        stop.set()
        thread.join()
    assert not problems
    return outcomes


@pytest.mark.timeout(60)  # generous: a hang guard only
def test_a_directory_swapped_for_a_symlink_in_a_loop_never_reads_outside(layout: Layout, backend: bool) -> None:
    (layout.worktree / "d").mkdir()
    (layout.worktree / "d" / "secret.txt").write_bytes(b"inside")
    os.symlink(layout.outside, layout.worktree / "evil")
    wt = layout.worktree

    def swap() -> None:
        os.rename(wt / "d", wt / "parked")
        os.rename(wt / "evil", wt / "d")
        os.rename(wt / "d", wt / "evil")
        os.rename(wt / "parked", wt / "d")

    fs = ConfinedFs(str(wt), use_openat2=backend)

    def attempt() -> str:
        try:
            data = fs.read_file("d/secret.txt")
        except ModuleError as error:
            return error.code
        assert data != SECRET
        return "read"

    try:
        outcomes = race(swap, attempt)
    finally:
        fs.close()
    assert outcomes <= {"read", "ENOENT", "EACCES", "ELOOP"}
    assert "read" in outcomes


@pytest.mark.timeout(60)  # generous: a hang guard only
def test_a_file_swapped_for_a_symlink_in_a_loop_is_never_written_through(layout: Layout, backend: bool) -> None:
    wt = layout.worktree
    (wt / "f").write_bytes(b"inside")
    os.symlink(layout.outside / "secret.txt", wt / "evil")

    def swap() -> None:
        os.rename(wt / "f", wt / "parked")
        os.rename(wt / "evil", wt / "f")
        os.rename(wt / "f", wt / "evil")
        os.rename(wt / "parked", wt / "f")

    fs = ConfinedFs(str(wt), write=True, use_openat2=backend)

    def attempt() -> str:
        try:
            fs.write_file("f", b"written")
        except ModuleError as error:
            return error.code
        return "written"

    try:
        outcomes = race(swap, attempt, rounds=2000)
    finally:
        fs.close()
    assert (layout.outside / "secret.txt").read_bytes() == SECRET
    # ELOOP: the walk met the symlink at the moment it opened the last name (O_NOFOLLOW).
    assert outcomes <= {"written", "EACCES", "ENOENT", "ELOOP"}
    assert "written" in outcomes
