"""ConfinedFs doing its job inside the root: Node's results and Node's errors, the write gate,
the size limit and the per-execution budget, modes whatever the umask, a recursive rm that
goes deep and stops when told. Every test runs against openat2 and against the walk used where
the kernel has no openat2, on real files in tmp_path."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.modules import openat2
from supervisor.modules.errors import ModuleError
from supervisor.modules.fs import ConfinedFs, FileStat


@pytest.fixture(params=["openat2", "walk"])
def backend(request: pytest.FixtureRequest) -> bool:
    if request.param == "openat2" and not openat2.openat2_available():
        pytest.skip("this kernel has no openat2 (the walk is tested alone)")
    return request.param == "openat2"


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "worktree"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello")
    (root / "src").mkdir()
    (root / "src" / "main.js").write_bytes(b"console.log(1)")
    (tmp_path / "outside.txt").write_bytes(b"SECRET")
    return root


@pytest.fixture
def make_fs(worktree: Path, backend: bool) -> Iterator[Callable[..., ConfinedFs]]:
    made: list[ConfinedFs] = []

    def make(**kwargs: object) -> ConfinedFs:
        fs = ConfinedFs(str(worktree), use_openat2=backend, **kwargs)  # type: ignore[arg-type]
        made.append(fs)
        return fs

    yield make
    for fs in made:
        fs.close()


def fails(call: Callable[[], object]) -> ModuleError:
    with pytest.raises(ModuleError) as caught:
        call()
    return caught.value


def test_the_backend_asked_for_is_the_one_used(make_fs: Callable[..., ConfinedFs], backend: bool) -> None:
    assert make_fs().uses_openat2 is backend


def test_read_file_returns_the_bytes(make_fs: Callable[..., ConfinedFs]) -> None:
    fs = make_fs()
    assert fs.read_file("hello.txt") == b"hello"
    assert fs.read_file("src/main.js") == b"console.log(1)"
    assert fs.read_file("./src/../hello.txt") == b"hello"


def test_an_empty_file_reads_empty(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    (worktree / "empty").write_bytes(b"")
    assert make_fs().read_file("empty") == b""


@pytest.mark.parametrize(("call", "code", "message"), [
    (lambda fs: fs.read_file("missing.txt"), "ENOENT", "ENOENT: no such file or directory, open 'missing.txt'"),
    (lambda fs: fs.read_file("src"), "EISDIR", "EISDIR: illegal operation on a directory, read"),
    (lambda fs: fs.read_file("."), "EISDIR", "EISDIR: illegal operation on a directory, read"),
    (lambda fs: fs.read_file(""), "EISDIR", "EISDIR: illegal operation on a directory, read"),
    (lambda fs: fs.read_file("hello.txt/x"), "ENOTDIR", "ENOTDIR: not a directory, open 'hello.txt/x'"),
    (lambda fs: fs.readdir("hello.txt"), "ENOTDIR", "ENOTDIR: not a directory, scandir 'hello.txt'"),
    (lambda fs: fs.readdir("nope"), "ENOENT", "ENOENT: no such file or directory, scandir 'nope'"),
    (lambda fs: fs.stat("nope"), "ENOENT", "ENOENT: no such file or directory, lstat 'nope'"),
    (lambda fs: fs.stat("nope", follow_symlinks=True), "ENOENT",
     "ENOENT: no such file or directory, stat 'nope'"),
    (lambda fs: fs.read_file(7), "ERR_INVALID_ARG_TYPE", 'The "path" argument must be of type string.'),
], ids=["missing", "directory", "dot", "empty", "file-as-dir", "readdir-file", "readdir-missing",
        "lstat-missing", "stat-missing", "not-a-string"])
def test_read_errors_are_nodes(make_fs: Callable[..., ConfinedFs], call: Callable[[ConfinedFs], object],
                               code: str, message: str) -> None:
    error = fails(lambda: call(make_fs()))
    assert (error.code, error.message) == (code, message)


def test_readdir_lists_sorted_names_of_the_root_and_below(make_fs: Callable[..., ConfinedFs],
                                                          worktree: Path) -> None:
    (worktree / "b").write_bytes(b"")
    (worktree / "a").write_bytes(b"")
    fs = make_fs()
    assert fs.readdir("") == fs.readdir(".") == ["a", "b", "hello.txt", "src"]
    assert fs.readdir("src") == ["main.js"]


def test_readdir_shows_a_name_that_is_not_utf8_as_node_would(make_fs: Callable[..., ConfinedFs],
                                                             worktree: Path) -> None:
    os.close(os.open(os.path.join(os.fsencode(worktree), b"caf\xe9"), os.O_CREAT | os.O_WRONLY, 0o644))
    assert "caf\ufffd" in make_fs().readdir(".")


def test_stat_describes_files_directories_and_links(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    os.symlink("hello.txt", worktree / "link")
    fs = make_fs()
    info = fs.stat("hello.txt")
    real = os.stat(worktree / "hello.txt")
    assert info == FileStat(size=5, mode=real.st_mode, mtime_ms=real.st_mtime_ns / 1e6,
                            atime_ms=real.st_atime_ns / 1e6, ctime_ms=real.st_ctime_ns / 1e6,
                            is_file=True, is_directory=False, is_symbolic_link=False)
    directory = fs.stat("src")
    assert (directory.is_file, directory.is_directory, directory.is_symbolic_link) == (False, True, False)
    assert fs.stat(".").is_directory
    link = fs.stat("link")
    assert (link.is_file, link.is_symbolic_link, link.size) == (False, True, len("hello.txt"))
    followed = fs.stat("link", follow_symlinks=True)
    assert (followed.is_file, followed.is_symbolic_link, followed.size) == (True, False, 5)


def test_stat_of_a_link_leading_out_sees_the_link_but_not_through_it(make_fs: Callable[..., ConfinedFs],
                                                                     worktree: Path) -> None:
    os.symlink("../outside.txt", worktree / "out")
    fs = make_fs()
    assert fs.stat("out").is_symbolic_link
    error = fails(lambda: fs.stat("out", follow_symlinks=True))
    assert (error.code, error.message) == ("EACCES", "EACCES: permission denied, stat 'out'")


@pytest.mark.parametrize(("path", "expected"), [
    ("hello.txt", True), ("src", True), (".", True), ("", True), ("inside-link", True),
    ("missing", False), ("dangling", False), ("out-link", False), ("../outside.txt", False),
    ("/etc/passwd", False), ("a\0b", False), ("\udc80", False), ("x" * 5000, False),
])
def test_exists_answers_and_never_raises(make_fs: Callable[..., ConfinedFs], worktree: Path,
                                         path: str, expected: bool) -> None:
    os.symlink("src/main.js", worktree / "inside-link")
    os.symlink("nowhere", worktree / "dangling")
    os.symlink("../outside.txt", worktree / "out-link")
    assert make_fs().exists(path) is expected


def test_symlinks_that_stay_inside_are_followed(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    os.symlink("src", worktree / "code")
    os.symlink("../hello.txt", worktree / "src" / "up")
    os.symlink(str(worktree / "hello.txt").replace(str(worktree), "."), worktree / "dot-relative")
    fs = make_fs(write=True)
    assert fs.read_file("code/main.js") == b"console.log(1)"
    assert fs.read_file("code/up") == b"hello"
    assert fs.read_file("dot-relative") == b"hello"
    assert fs.readdir("code") == ["main.js", "up"]
    fs.write_file("code/new.txt", b"via link")
    assert (worktree / "src" / "new.txt").read_bytes() == b"via link"


def test_a_symlinked_directory_then_dotdot_goes_to_the_targets_parent(make_fs: Callable[..., ConfinedFs],
                                                                      worktree: Path) -> None:
    (worktree / "deep" / "er").mkdir(parents=True)
    (worktree / "deep" / "marker").write_bytes(b"deep")
    os.symlink("deep/er", worktree / "shortcut")
    assert make_fs().read_file("shortcut/../marker") == b"deep"  # as the kernel resolves it


def test_write_append_and_read_back(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    fs = make_fs(write=True)
    fs.write_file("out.txt", b"one")
    fs.append_file("out.txt", b"two")
    assert fs.read_file("out.txt") == b"onetwo"
    fs.write_file("out.txt", b"3")
    assert (worktree / "out.txt").read_bytes() == b"3"
    fs.append_file("fresh.txt", b"made by append")
    assert (worktree / "fresh.txt").read_bytes() == b"made by append"


def test_a_dangling_symlink_inside_pointing_inside_creates_its_target(make_fs: Callable[..., ConfinedFs],
                                                                      worktree: Path) -> None:
    os.symlink("src/target.txt", worktree / "pending")
    make_fs(write=True).write_file("pending", b"created")
    assert (worktree / "src" / "target.txt").read_bytes() == b"created"


@pytest.mark.parametrize(("call", "message"), [
    (lambda fs: fs.write_file("src", b"x"), "EISDIR: illegal operation on a directory, open 'src'"),
    (lambda fs: fs.write_file(".", b"x"), "EISDIR: illegal operation on a directory, open '.'"),
    (lambda fs: fs.write_file("new/", b"x"), "EISDIR: illegal operation on a directory, open 'new/'"),
    (lambda fs: fs.write_file("no/such/dir.txt", b"x"), "ENOENT: no such file or directory, open 'no/such/dir.txt'"),
    (lambda fs: fs.append_file("hello.txt/x", b"x"), "ENOTDIR: not a directory, open 'hello.txt/x'"),
])
def test_write_errors_are_nodes(make_fs: Callable[..., ConfinedFs], call: Callable[[ConfinedFs], object],
                                message: str) -> None:
    error = fails(lambda: call(make_fs(write=True)))
    assert (error.code, error.message) == (message.split(":")[0], message)


@pytest.fixture
def hostile_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("hostile_umask")
def test_new_files_are_0644_and_new_directories_0755_whatever_the_umask(
        make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    fs = make_fs(write=True)
    fs.write_file("w.txt", b"")
    fs.append_file("a.txt", b"")
    fs.mkdir("d")
    fs.mkdir("p/q/r", recursive=True)
    for name in ("w.txt", "a.txt"):
        assert stat.S_IMODE(os.stat(worktree / name).st_mode) == 0o644
    for name in ("d", "p", "p/q", "p/q/r"):
        assert stat.S_IMODE(os.stat(worktree / name).st_mode) == 0o755


def test_an_existing_file_keeps_its_mode_when_rewritten(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    os.chmod(worktree / "hello.txt", 0o600)
    make_fs(write=True).write_file("hello.txt", b"new")
    assert stat.S_IMODE(os.stat(worktree / "hello.txt").st_mode) == 0o600


@pytest.mark.parametrize(("call", "message"), [
    (lambda fs: fs.write_file("x", b"1"), "EROFS: read-only file system, open 'x'"),
    (lambda fs: fs.append_file("hello.txt", b"1"), "EROFS: read-only file system, open 'hello.txt'"),
    (lambda fs: fs.mkdir("d"), "EROFS: read-only file system, mkdir 'd'"),
    (lambda fs: fs.mkdir("d/e", recursive=True), "EROFS: read-only file system, mkdir 'd/e'"),
    (lambda fs: fs.rm("hello.txt"), "EROFS: read-only file system, rm 'hello.txt'"),
    (lambda fs: fs.rm("src", recursive=True, force=True), "EROFS: read-only file system, rm 'src'"),
    (lambda fs: fs.rename("hello.txt", "h"), "EROFS: read-only file system, rename 'hello.txt' -> 'h'"),
], ids=["write", "append", "mkdir", "mkdir-recursive", "rm", "rm-recursive", "rename"])
def test_without_write_every_mutation_is_refused_and_nothing_changes(
        make_fs: Callable[..., ConfinedFs], worktree: Path, call: Callable[[ConfinedFs], object],
        message: str) -> None:
    before = sorted(str(p.relative_to(worktree)) for p in worktree.rglob("*"))
    error = fails(lambda: call(make_fs()))
    assert (error.code, error.message) == ("EROFS", message)
    assert sorted(str(p.relative_to(worktree)) for p in worktree.rglob("*")) == before
    assert (worktree / "hello.txt").read_bytes() == b"hello"


def test_a_file_bigger_than_the_limit_is_not_read(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    (worktree / "big.bin").write_bytes(b"x" * 101)
    (worktree / "fits.bin").write_bytes(b"x" * 100)
    fs = make_fs(max_file_bytes=100)
    assert fs.read_file("fits.bin") == b"x" * 100
    error = fails(lambda: fs.read_file("big.bin"))
    assert (error.code, error.message) == (
        "ERR_FS_FILE_TOO_LARGE", "File size (101) is greater than the limit (100 bytes), open 'big.bin'")


def test_a_write_or_append_that_would_pass_the_limit_fails_and_writes_nothing(
        make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    fs = make_fs(write=True, max_file_bytes=10)
    fs.write_file("f", b"x" * 10)
    error = fails(lambda: fs.write_file("g", b"x" * 11))
    assert (error.code, error.message) == (
        "ERR_FS_FILE_TOO_LARGE", "File size (11) is greater than the limit (10 bytes), write 'g'")
    assert not (worktree / "g").exists()
    error = fails(lambda: fs.append_file("f", b"y"))
    assert (error.code, error.message) == (
        "ERR_FS_FILE_TOO_LARGE", "File size (11) is greater than the limit (10 bytes), write 'f'")
    assert (worktree / "f").read_bytes() == b"x" * 10


def test_the_write_budget_is_per_execution_and_the_crossing_call_writes_nothing(
        make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    fs = make_fs(write=True, max_total_write_bytes=10)
    fs.begin_execution()
    fs.write_file("a", b"12345")
    fs.append_file("a", b"1234")
    error = fails(lambda: fs.write_file("b", b"12"))
    assert (error.code, error.message) == ("EDQUOT", "EDQUOT: disk quota exceeded, write 'b'")
    assert not (worktree / "b").exists()
    fs.append_file("a", b"!")  # exactly at the budget is allowed
    error = fails(lambda: fs.append_file("a", b"?"))
    assert error.code == "EDQUOT"
    assert (worktree / "a").read_bytes() == b"123451234!"
    fs.begin_execution()
    fs.write_file("b", b"12")
    assert (worktree / "b").read_bytes() == b"12"


def test_limits_beyond_the_ceilings_are_refused(worktree: Path) -> None:
    with pytest.raises(ValueError, match="max_file_bytes"):
        ConfinedFs(str(worktree), max_file_bytes=10**12)
    with pytest.raises(ValueError, match="max_total_write_bytes"):
        ConfinedFs(str(worktree), max_total_write_bytes=-1)


def test_mkdir_plain_and_recursive(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    fs = make_fs(write=True)
    fs.mkdir("d")
    fs.mkdir("a/b/c", recursive=True)
    fs.mkdir("a/b/c", recursive=True)  # again: nothing to do, no error (mkdir -p)
    fs.mkdir("a/./b/../x", recursive=True)
    assert (worktree / "d").is_dir() and (worktree / "a/b/c").is_dir() and (worktree / "a/x").is_dir()


@pytest.mark.parametrize(("path", "recursive", "code", "message"), [
    ("src", False, "EEXIST", "EEXIST: file already exists, mkdir 'src'"),
    (".", False, "EEXIST", "EEXIST: file already exists, mkdir '.'"),
    ("hello.txt", True, "EEXIST", "EEXIST: file already exists, mkdir 'hello.txt'"),
    ("hello.txt/sub", True, "ENOTDIR", "ENOTDIR: not a directory, mkdir 'hello.txt/sub'"),
    ("no/parent", False, "ENOENT", "ENOENT: no such file or directory, mkdir 'no/parent'"),
])
def test_mkdir_errors_are_nodes(make_fs: Callable[..., ConfinedFs], path: str, recursive: bool, code: str,
                                message: str) -> None:
    error = fails(lambda: make_fs(write=True).mkdir(path, recursive=recursive))
    assert (error.code, error.message) == (code, message)


def test_rm_files_trees_and_force(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    fs = make_fs(write=True)
    fs.rm("hello.txt")
    assert not (worktree / "hello.txt").exists()
    fs.mkdir("t/u/v", recursive=True)
    fs.write_file("t/u/v/f", b"1")
    fs.write_file("t/g", b"2")
    fs.rm("t", recursive=True)
    assert not (worktree / "t").exists()
    fs.rm("missing", force=True)
    fs.rm("no/such/parent", force=True)
    assert sorted(os.listdir(worktree)) == ["src"]


@pytest.mark.parametrize(("call", "code", "message"), [
    (lambda fs: fs.rm("missing"), "ENOENT", "ENOENT: no such file or directory, rm 'missing'"),
    (lambda fs: fs.rm("src"), "ERR_FS_EISDIR", "Path is a directory: rm returned EISDIR (is a directory) src"),
    (lambda fs: fs.rm("src/.."), "EINVAL", "EINVAL: invalid argument, rm 'src/..'"),
    (lambda fs: fs.rm("hello.txt/x"), "ENOTDIR", "ENOTDIR: not a directory, rm 'hello.txt/x'"),
    (lambda fs: fs.rename("missing", "b"), "ENOENT", "ENOENT: no such file or directory, rename 'missing' -> 'b'"),
    (lambda fs: fs.rename("hello.txt", "src"), "EISDIR",
     "EISDIR: illegal operation on a directory, rename 'hello.txt' -> 'src'"),
    (lambda fs: fs.rename("src/..", "x"), "EINVAL", "EINVAL: invalid argument, rename 'src/..' -> 'x'"),
])
def test_rm_and_rename_errors_are_nodes(make_fs: Callable[..., ConfinedFs], call: Callable[[ConfinedFs], object],
                                        code: str, message: str) -> None:
    error = fails(lambda: call(make_fs(write=True)))
    assert (error.code, error.message) == (code, message)


def test_rename_onto_a_non_empty_directory_is_enotempty(make_fs: Callable[..., ConfinedFs],
                                                        worktree: Path) -> None:
    (worktree / "empty").mkdir()
    error = fails(lambda: make_fs(write=True).rename("empty", "src"))
    assert (error.code, error.message) == ("ENOTEMPTY", "ENOTEMPTY: directory not empty, rename 'empty' -> 'src'")


def test_rename_moves_files_and_directories_within_the_root(make_fs: Callable[..., ConfinedFs],
                                                            worktree: Path) -> None:
    fs = make_fs(write=True)
    fs.rename("hello.txt", "src/hello.txt")
    fs.rename("src", "lib")
    assert (worktree / "lib" / "hello.txt").read_bytes() == b"hello"
    assert not (worktree / "src").exists()


def test_a_deep_tree_is_removed_with_few_descriptors(make_fs: Callable[..., ConfinedFs], worktree: Path) -> None:
    # Far deeper than the descriptors rm keeps open: closed levels are opened again by name.
    level = worktree / "deep"
    level.mkdir()
    for depth in range(150):
        (level / f"f{depth}").write_bytes(b"x")
        os.symlink("/etc", level / "link")  # unlinked, never followed
        level = level / "d"
        level.mkdir()
    fs = make_fs(write=True)
    before = len(os.listdir("/proc/self/fd"))
    fs.rm("deep", recursive=True)
    assert not (worktree / "deep").exists()
    assert len(os.listdir("/proc/self/fd")) == before
    assert os.path.isdir("/etc")


def test_a_recursive_rm_stops_when_the_execution_is_stopped(make_fs: Callable[..., ConfinedFs],
                                                            worktree: Path) -> None:
    (worktree / "many").mkdir()
    for i in range(300):
        (worktree / "many" / str(i)).write_bytes(b"")
    fs = make_fs(write=True)
    fs.begin_execution(should_stop=lambda: True)
    error = fails(lambda: fs.rm("many", recursive=True))
    assert (error.code, error.message) == ("ECANCELED", "ECANCELED: operation canceled, rm 'many'")
    assert (worktree / "many").is_dir()  # stopped part way: what is left stays
    fs.begin_execution(deadline=0.0)  # a deadline long past
    assert fails(lambda: fs.rm("many", recursive=True)).code == "ECANCELED"
    fs.begin_execution()
    fs.rm("many", recursive=True)
    assert not (worktree / "many").exists()


def test_a_sub_root_confines_to_itself(worktree: Path, backend: bool) -> None:
    fs = ConfinedFs(str(worktree), "src", use_openat2=backend)
    try:
        assert fs.readdir(".") == ["main.js"]
        error = fails(lambda: fs.read_file("../hello.txt"))
        assert (error.code, error.message) == ("EACCES", "EACCES: permission denied, open '../hello.txt'")
    finally:
        fs.close()


@pytest.mark.parametrize(("root", "code", "message"), [
    ("missing", "ENOENT", "ENOENT: no such file or directory, open 'missing'"),
    ("hello.txt", "ENOTDIR", "ENOTDIR: not a directory, open 'hello.txt'"),
    ("..", "EACCES", "EACCES: permission denied, open '..'"),
    ("/etc", "EACCES", "EACCES: permission denied, open '/etc'"),
    ("up", "EACCES", "EACCES: permission denied, open 'up'"),
])
def test_a_root_that_is_no_directory_beneath_the_worktree_is_refused(worktree: Path, backend: bool, root: str,
                                                                     code: str, message: str) -> None:
    os.symlink("..", worktree / "up")
    error = fails(lambda: ConfinedFs(str(worktree), root, use_openat2=backend))
    assert (error.code, error.message) == (code, message)


def test_after_close_every_call_is_ebadf_and_exists_is_false(make_fs: Callable[..., ConfinedFs]) -> None:
    fs = make_fs()
    fs.close()
    fs.close()
    error = fails(lambda: fs.read_file("hello.txt"))
    assert (error.code, error.message) == ("EBADF", "EBADF: bad file descriptor, open 'hello.txt'")
    assert fs.exists("hello.txt") is False


def test_no_message_names_a_host_path_and_no_descriptor_is_left(make_fs: Callable[..., ConfinedFs],
                                                                worktree: Path, tmp_path: Path) -> None:
    os.symlink("../outside.txt", worktree / "out")
    os.symlink("loop", worktree / "loop")
    fs = make_fs(write=True, max_file_bytes=3)
    before = len(os.listdir("/proc/self/fd"))
    calls: list[Callable[[], object]] = [
        lambda: fs.read_file("out"), lambda: fs.read_file("loop"), lambda: fs.read_file("missing"),
        lambda: fs.read_file("hello.txt"), lambda: fs.write_file("out", b"x"), lambda: fs.write_file("big", b"xxxx"),
        lambda: fs.readdir("out"), lambda: fs.stat("loop", follow_symlinks=True), lambda: fs.mkdir("src"),
        lambda: fs.rm("src"), lambda: fs.rename("out/x", "y"), lambda: fs.rename("missing", "../y"),
        lambda: fs.read_file("\udcff"), lambda: fs.append_file("src", b"x"),
    ]
    messages = [fails(call).message for call in calls]
    assert len(os.listdir("/proc/self/fd")) == before
    for message in messages:
        assert str(tmp_path) not in message and "worktree" not in message and "Traceback" not in message
