"""The host half of the `fs` module: file access confined to one directory (the session's
worktree or a sub-root of it), with Node's names, codes and message shapes.

The root is opened once as a descriptor and every operation resolves its path beneath that
descriptor (`openat2.py`: the kernel's RESOLVE_BENEATH, or a walk of our own that answers the
same), so a symlink, a `..` or a mount point can never lead out, whatever was checked before.
Only regular files with a single link are read or written: a device or FIFO is looked at through
an O_PATH descriptor and never opened for reading, and a hardlink could be any file of the same
filesystem. Writes are off unless granted, bounded per file and per execution.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.modules import openat2 as kernel
from supervisor.modules.errors import ModuleError

MAX_FILE_BYTES = 8 * 1024 * 1024  # as a worktree file the daemon reads for a client
MAX_TOTAL_WRITE_BYTES = 64 * 1024 * 1024
# A template may raise the limits this far and no further: a read is held whole in memory twice
# (here, then in the guest's), and the budget is per execution, not per session.
FILE_BYTES_CEILING = 256 * 1024 * 1024
TOTAL_WRITE_BYTES_CEILING = 1024 * 1024 * 1024

_PATH_MAX = 4095  # bytes, without the terminating NUL (PATH_MAX is 4096 with it)
_NAME_MAX = 255
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_STOP_EVERY = 64  # entries of a recursive rm between two looks at the deadline and stop flag
_KEEP_OPEN = 32  # descriptors a recursive rm holds beyond its every 16th level
_RETRIES = 3  # a file swapped between the look and the open: look again, this many times
_CHECKED_KEPT = 1024  # paths whose lexical check is remembered

# libuv's texts, which Node puts in its messages.
_DESCRIPTIONS = {
    "EACCES": "permission denied",
    "EAGAIN": "resource temporarily unavailable",
    "EBADF": "bad file descriptor",
    "EBUSY": "resource busy or locked",
    "ECANCELED": "operation canceled",
    "EDQUOT": "disk quota exceeded",
    "EEXIST": "file already exists",
    "EFBIG": "file too large",
    "EINVAL": "invalid argument",
    "EIO": "i/o error",
    "EISDIR": "illegal operation on a directory",
    "ELOOP": "too many symbolic links encountered",
    "EMFILE": "too many open files",
    "EMLINK": "too many links",
    "ENAMETOOLONG": "name too long",
    "ENFILE": "file table overflow",
    "ENOENT": "no such file or directory",
    "ENOSPC": "no space left on device",
    "ENOTDIR": "not a directory",
    "ENOTEMPTY": "directory not empty",
    "EPERM": "operation not permitted",
    "EROFS": "read-only file system",
    "ETXTBSY": "text file is busy",
}
# What the kernel answers for "that leads out" (EXDEV: beneath or mount), for a socket opened
# (ENXIO) or a device without a driver (ENODEV): to the script, all one refusal.
_REFUSED = {errno.EXDEV, errno.ENXIO, errno.ENODEV}

_O_PATH = os.O_PATH | os.O_CLOEXEC
_O_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_O_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_O_WRITE = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_O_LIST = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True)
class FileStat:
    """Node's Stats, the part a script uses. Times are milliseconds since the epoch."""

    size: int
    mode: int
    mtime_ms: float
    atime_ms: float
    ctime_ms: float
    is_file: bool
    is_directory: bool
    is_symbolic_link: bool


def _system_error(code: str, syscall: str, path: str, dest: str | None = None) -> ModuleError:
    """Node's shape: `ENOENT: no such file or directory, open 'missing.txt'`."""
    where = f"{syscall} '{path}'" if dest is None else f"{syscall} '{path}' -> '{dest}'"
    return ModuleError(code, f"{code}: {_DESCRIPTIONS.get(code, code.lower())}, {where}")


def _from_os(exc: OSError, syscall: str, path: str, dest: str | None = None) -> ModuleError:
    number = exc.errno or errno.EIO
    code = "EACCES" if number in _REFUSED else errno.errorcode.get(number, "EIO")
    return _system_error(code, syscall, path, dest)


def _shown(text: str) -> str:
    """The script's text with what cannot be printed as it is (NUL, a lone surrogate) escaped."""
    out = []
    for char in text:
        point = ord(char)
        if point == 0:
            out.append("\\x00")
        elif 0xD800 <= point <= 0xDFFF:
            out.append(f"\\u{point:04x}")
        else:
            out.append(char)
    return "".join(out)


def _lexical_refusal(raw: bytes) -> str | None:
    """ENAMETOOLONG for a name longer than NAME_MAX, EACCES for a `..` that climbs above where
    the path started (even `a/../../x`), by the text alone."""
    depth = 0
    for part in raw.split(b"/"):
        if len(part) > _NAME_MAX:
            return "ENAMETOOLONG"
        if part == b"..":
            depth -= 1
            if depth < 0:
                return "EACCES"
        elif part and part != b".":
            depth += 1
    return None


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """(parent, last name) of a checked path, trailing slashes dropped; (b".", b"") for the root."""
    trimmed = raw.rstrip(b"/")
    parent, _, name = trimmed.rpartition(b"/")
    if not name or (name == b"." and not parent):
        return b".", b""
    return parent or b".", name


def _decoded(name: str) -> str:
    """A directory entry as text the script can hold: bytes that are not UTF-8 come back from
    os.listdir as lone surrogates, which Node would have shown as U+FFFD."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "replace")
    return name


def _stat_of(info: os.stat_result) -> FileStat:
    return FileStat(
        size=info.st_size, mode=info.st_mode,
        mtime_ms=info.st_mtime_ns / 1e6, atime_ms=info.st_atime_ns / 1e6, ctime_ms=info.st_ctime_ns / 1e6,
        is_file=stat.S_ISREG(info.st_mode), is_directory=stat.S_ISDIR(info.st_mode),
        is_symbolic_link=stat.S_ISLNK(info.st_mode),
    )


@dataclass
class _Level:
    """One directory of a recursive rm: its name in the one above, its descriptor while held,
    and the entries still to remove."""

    name: str
    fd: int | None
    entries: list[str]


class ConfinedFs:
    """File access beneath `worktree/root`, for one session; not thread-safe (the sandbox calls
    it from its own thread only)."""

    def __init__(self, worktree: str, root: str = ".", *, write: bool = False,
                 max_file_bytes: int = MAX_FILE_BYTES, max_total_write_bytes: int = MAX_TOTAL_WRITE_BYTES,
                 use_openat2: bool | None = None) -> None:
        if not 0 <= max_file_bytes <= FILE_BYTES_CEILING:
            raise ValueError(f"max_file_bytes must be between 0 and {FILE_BYTES_CEILING}")
        if not 0 <= max_total_write_bytes <= TOTAL_WRITE_BYTES_CEILING:
            raise ValueError(f"max_total_write_bytes must be between 0 and {TOTAL_WRITE_BYTES_CEILING}")
        available = kernel.openat2_available()
        if use_openat2 and not available:
            raise ValueError("openat2 was asked for but this kernel does not offer it")
        self._openat2 = available if use_openat2 is None else use_openat2
        self._write = write
        self._max_file = max_file_bytes
        self._max_total = max_total_write_bytes
        self._written = 0
        self._deadline: float | None = None
        self._should_stop: Callable[[], bool] | None = None
        self._fd = -1
        self._closed = False
        self._checked: dict[str, bytes] = {}
        top = os.open(worktree, _O_DIR)
        try:
            self._mount = kernel.Mount(top)
            raw = self._check(root, "open")
            try:
                self._fd = self._resolve(raw, _O_DIR, base=top)
            except OSError as exc:
                raise _from_os(exc, "open", root) from None
        finally:
            os.close(top)
        self._mount = kernel.Mount(self._fd)
        # On a nodev mount no device can be opened as one, and nothing beneath the root lies on
        # another mount: a file may then be opened for reading without looking at it first.
        self._look_first = not os.fstatvfs(self._fd).f_flag & os.ST_NODEV

    @property
    def uses_openat2(self) -> bool:
        return self._openat2

    def begin_execution(self, deadline: float | None = None,
                        should_stop: Callable[[], bool] | None = None) -> None:
        """A new execution: its write budget starts again, and a long call (a recursive rm)
        gives up at its `deadline` (time.monotonic()) or once `should_stop()` says so."""
        self._written = 0
        self._deadline = deadline
        self._should_stop = should_stop

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)

    # -- reading -------------------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        raw = self._check(path, "open")
        try:
            for _ in range(_RETRIES):
                # Looked at through O_PATH first: opening a device can act (a watchdog's open
                # arms it), so only what was a regular file a moment ago is opened to be read,
                # and O_NONBLOCK keeps a FIFO swapped in since from blocking the open.
                seen = self._stat_target(raw) if self._look_first else None
                if seen is not None:
                    self._check_file(seen, path, reading=True)
                fd = self._resolve(raw, _O_READ)
                try:
                    info = os.fstat(fd)
                    if seen is not None and (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino):
                        continue
                    self._check_file(info, path, reading=True)
                    return self._read_all(fd, info.st_size, path)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise _from_os(exc, "open", path) from None
        raise _system_error("EAGAIN", "open", path)

    def readdir(self, path: str) -> list[str]:
        raw = self._check(path, "scandir")
        try:
            fd = self._resolve(raw, _O_LIST)
            try:
                names = os.listdir(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _from_os(exc, "scandir", path) from None
        return sorted(_decoded(name) for name in names)

    def stat(self, path: str, *, follow_symlinks: bool = False) -> FileStat:
        """The path itself (lstat) by default, so `is_symbolic_link` says what the last
        component is; with follow_symlinks, what it leads to (still beneath the root)."""
        syscall = "stat" if follow_symlinks else "lstat"
        raw = self._check(path, syscall)
        try:
            fd = self._resolve(raw, _O_PATH if follow_symlinks else _O_PATH | os.O_NOFOLLOW)
            try:
                return _stat_of(os.fstat(fd))
            finally:
                os.close(fd)
        except OSError as exc:
            raise _from_os(exc, syscall, path) from None

    def exists(self, path: str) -> bool:
        """Node's existsSync: True when the path leads to something beneath the root; never
        raises (a refused or malformed path simply does not exist for the script)."""
        try:
            raw = self._check(path, "access")
            os.close(self._resolve(raw, _O_PATH))
        except (ModuleError, OSError, ValueError):
            return False
        return True

    # -- writing -------------------------------------------------------------------------

    def write_file(self, path: str, data: bytes) -> None:
        self._write_file(path, data, append=False)

    def append_file(self, path: str, data: bytes) -> None:
        self._write_file(path, data, append=True)

    def mkdir(self, path: str, recursive: bool = False) -> None:
        raw = self._check(path, "mkdir")
        self._check_writable("mkdir", path)
        try:
            if not recursive:
                self._mkdir_one(raw, path, exist_ok=False, final=True)
                return
            parts = [part for part in raw.split(b"/") if part]
            for count in range(1, len(parts) + 1):
                self._mkdir_one(b"/".join(parts[:count]), path, exist_ok=True, final=count == len(parts))
        except OSError as exc:
            raise _from_os(exc, "mkdir", path) from None

    def rm(self, path: str, recursive: bool = False, force: bool = False) -> None:
        raw = self._check(path, "rm")
        self._check_writable("rm", path)
        parent, name = _split(raw)
        if not name:
            raise _system_error("EPERM", "rm", path)
        if name in (b".", b".."):
            raise _system_error("EINVAL", "rm", path)
        try:
            try:
                dirfd = self._resolve(parent, _O_DIR)
            except (FileNotFoundError, NotADirectoryError):
                if force:
                    return
                raise
            try:
                try:
                    info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except FileNotFoundError:
                    if force:
                        return
                    raise
                if not stat.S_ISDIR(info.st_mode):
                    os.unlink(name, dir_fd=dirfd)  # a symlink is unlinked, never followed
                elif not recursive:
                    raise ModuleError("ERR_FS_EISDIR", f"Path is a directory: rm returned EISDIR "
                                                       f"(is a directory) {path}")
                else:
                    self._rmtree(dirfd, os.fsdecode(name), path)
            finally:
                os.close(dirfd)
        except OSError as exc:
            raise _from_os(exc, "rm", path) from None

    def rename(self, src: str, dst: str) -> None:
        raw_src = self._check(src, "rename", argument="oldPath", pair=(src, dst))
        raw_dst = self._check(dst, "rename", argument="newPath", pair=(src, dst))
        self._check_writable("rename", src, dst)
        (src_parent, src_name), (dst_parent, dst_name) = _split(raw_src), _split(raw_dst)
        if not src_name or not dst_name:
            raise _system_error("EPERM", "rename", src, dst)
        if {src_name, dst_name} & {b".", b".."}:
            raise _system_error("EINVAL", "rename", src, dst)
        try:
            src_fd = self._resolve(src_parent, _O_DIR)
            try:
                dst_fd = self._resolve(dst_parent, _O_DIR)
                try:
                    # Two single names under two descriptors beneath the root: renameat moves
                    # the entry itself (a symlink stays a symlink), inside the root both ends.
                    os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                finally:
                    os.close(dst_fd)
            finally:
                os.close(src_fd)
        except OSError as exc:
            raise _from_os(exc, "rename", src, dst) from None

    # -- the parts -----------------------------------------------------------------------

    def _check(self, path: str, syscall: str, *, argument: str = "path",
               pair: tuple[str, str] | None = None) -> bytes:
        """The path as bytes for the kernel, refused before any file is touched when it is not
        relative text or climbs out of the root by itself. `pair`: rename's two paths, which
        its messages name both."""
        def refused(code: str) -> ModuleError:
            return _system_error(code, syscall, *pair) if pair else _system_error(code, syscall, path)

        if not isinstance(path, str):
            raise ModuleError("ERR_INVALID_ARG_TYPE", f'The "{argument}" argument must be of type string.')
        if self._closed:
            raise refused("EBADF")
        known = self._checked.get(path)
        if known is not None:
            return known
        if "\0" in path:
            raise ModuleError("ERR_INVALID_ARG_VALUE", f"The argument '{argument}' must be a string without "
                                                       f"null bytes. Received '{_shown(path)}'")
        try:
            raw = path.encode("utf-8")
        except UnicodeEncodeError:
            raise ModuleError("ERR_INVALID_ARG_VALUE", f"The argument '{argument}' must be Unicode text (it "
                                                       f"holds a lone surrogate). Received '{_shown(path)}'") from None
        if raw.startswith(b"/"):
            raise refused("EACCES")
        if len(raw) > _PATH_MAX:
            raise refused("ENAMETOOLONG")
        if len(raw) > _NAME_MAX or b".." in raw:
            code = _lexical_refusal(raw)
            if code:
                raise refused(code)
        # The check reads nothing but the text, so its answer can be kept: a script reads the
        # same few paths over and over. Bounded by forgetting all at once.
        if len(self._checked) >= _CHECKED_KEPT:
            self._checked.clear()
        self._checked[path] = raw = raw or b"."
        return raw

    def _resolve(self, raw: bytes, flags: int, mode: int = 0, *, base: int | None = None) -> int:
        dirfd = self._fd if base is None else base
        if self._openat2:
            return kernel.openat2(dirfd, raw, flags, mode)
        return kernel.walk(dirfd, self._mount, raw, flags, mode)

    def _stat_target(self, raw: bytes) -> os.stat_result:
        fd = self._resolve(raw, _O_PATH)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def _check_file(self, info: os.stat_result, path: str, *, reading: bool) -> None:
        if stat.S_ISDIR(info.st_mode):
            if reading:
                raise ModuleError("EISDIR", "EISDIR: illegal operation on a directory, read")
            raise _system_error("EISDIR", "open", path)
        # A device, FIFO or socket is no file of the worktree's; a second link to a regular
        # file may be any file of the filesystem, put there from outside.
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise _system_error("EACCES", "open", path)
        if reading and info.st_size > self._max_file:
            raise self._too_large(info.st_size, "open", path)

    def _too_large(self, size: int, syscall: str, path: str) -> ModuleError:
        return ModuleError("ERR_FS_FILE_TOO_LARGE", f"File size ({size}) is greater than the limit "
                                                    f"({self._max_file} bytes), {syscall} '{path}'")

    def _read_all(self, fd: int, size: int, path: str) -> bytes:
        # One byte more than fstat said is asked for, so a file that grew since is seen growing;
        # a regular file reads short only at its end, so fewer bytes than asked is all of it.
        limit = self._max_file + 1
        first = os.read(fd, min(size + 1, limit))
        if len(first) <= size:
            return first
        chunks, total = [first], len(first)
        while total < limit:
            chunk = os.read(fd, min(1 << 16, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > self._max_file:
            raise self._too_large(total, "open", path)
        return b"".join(chunks)

    def _check_writable(self, syscall: str, path: str, dest: str | None = None) -> None:
        if not self._write:
            raise _system_error("EROFS", syscall, path, dest)

    def _write_file(self, path: str, data: bytes, *, append: bool) -> None:
        raw = self._check(path, "open")
        self._check_writable("open", path)
        size = len(data)
        if size > self._max_file:
            raise self._too_large(size, "write", path)
        if self._written + size > self._max_total:
            raise _system_error("EDQUOT", "write", path)
        if not _split(raw)[1] or raw.endswith(b"/"):
            raise _system_error("EISDIR", "open", path)
        try:
            for _ in range(_RETRIES):
                seen: os.stat_result | None
                try:
                    seen = self._stat_target(raw)
                except FileNotFoundError:
                    seen = None
                if seen is not None:
                    self._check_file(seen, path, reading=False)
                flags = _O_WRITE | (os.O_APPEND if append else 0) | (os.O_CREAT if seen is None else 0)
                fd = self._resolve(raw, flags, _FILE_MODE)
                try:
                    info = os.fstat(fd)
                    if seen is not None and (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino):
                        continue
                    self._check_file(info, path, reading=False)
                    if append and info.st_size + size > self._max_file:
                        raise self._too_large(info.st_size + size, "write", path)
                    if seen is None and stat.S_IMODE(info.st_mode) != _FILE_MODE:
                        os.fchmod(fd, _FILE_MODE)  # whatever the daemon's umask
                    if not append:
                        os.ftruncate(fd, 0)
                    self._written += size
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    return
                finally:
                    os.close(fd)
        except OSError as exc:
            raise _from_os(exc, "open", path) from None
        raise _system_error("EAGAIN", "open", path)

    def _mkdir_one(self, raw: bytes, path: str, *, exist_ok: bool, final: bool) -> None:
        parent, name = _split(raw)
        if name in (b"", b".", b".."):
            # The root, or a directory named through `.`/`..`: it exists if it resolves.
            os.close(self._resolve(raw, _O_DIR))
            if not exist_ok:
                raise _system_error("EEXIST", "mkdir", path)
            return
        dirfd = self._resolve(parent, _O_DIR)
        try:
            try:
                os.mkdir(name, _DIR_MODE, dir_fd=dirfd)
            except FileExistsError:
                if not exist_ok:
                    raise
                try:
                    os.close(self._resolve(raw, _O_DIR))
                except NotADirectoryError:
                    raise _system_error("EEXIST" if final else "ENOTDIR", "mkdir", path) from None
                return
            fd = os.open(name, _O_LIST | os.O_NOFOLLOW, dir_fd=dirfd)
            try:
                os.fchmod(fd, _DIR_MODE)  # whatever the daemon's umask
            finally:
                os.close(fd)
        finally:
            os.close(dirfd)

    def _stop_requested(self) -> bool:
        return ((self._deadline is not None and time.monotonic() >= self._deadline)
                or (self._should_stop is not None and self._should_stop()))

    def _open_child(self, dirfd: int, name: str) -> int:
        """A directory entry as a directory to list, never through a symlink or a mount point."""
        return self._resolve(os.fsencode(name), _O_LIST | os.O_NOFOLLOW, base=dirfd)

    def _rmtree(self, top: int, name: str, path: str) -> None:
        """Depth first with descriptors: each entry is looked at (lstat) and removed relative to
        the descriptor of its directory, a symlink unlinked, a directory opened O_NOFOLLOW
        beneath its parent. A deep tree would hold one descriptor per level, so only the last
        _KEEP_OPEN levels and every 16th are kept; a closed level is opened again from the
        nearest kept one, by the same names."""
        levels: list[_Level] = []
        try:
            fd = self._open_child(top, name)
            levels.append(_Level(name, fd, os.listdir(fd)))
            seen = 0
            while levels:
                level = levels[-1]
                here = self._reopen(top, levels)
                if not level.entries:
                    levels.pop()
                    os.close(here)
                    level.fd = None
                    os.rmdir(level.name, dir_fd=self._reopen(top, levels) if levels else top)
                    continue
                seen += 1
                if seen % _STOP_EVERY == 0 and self._stop_requested():
                    raise _system_error("ECANCELED", "rm", path)
                entry = level.entries.pop()
                try:
                    info = os.stat(entry, dir_fd=here, follow_symlinks=False)
                    if not stat.S_ISDIR(info.st_mode):
                        os.unlink(entry, dir_fd=here)
                        continue
                except FileNotFoundError:
                    continue
                child = self._open_child(here, entry)
                levels.append(_Level(entry, child, os.listdir(child)))
                spare = len(levels) - 1 - _KEEP_OPEN
                held = levels[spare].fd if spare > 0 and spare % 16 else None
                if held is not None:
                    os.close(held)
                    levels[spare].fd = None
        finally:
            for level in levels:
                if level.fd is not None:
                    os.close(level.fd)

    def _reopen(self, top: int, levels: list[_Level]) -> int:
        """The descriptor of the deepest level, opened again from the nearest one still held."""
        if levels[-1].fd is not None:
            return levels[-1].fd
        # The first level is never closed (index 0 is a multiple of 16), so one is always held.
        start = max(i for i, level in enumerate(levels) if level.fd is not None)
        fd = levels[start].fd
        assert fd is not None
        for level in levels[start + 1:]:
            level.fd = fd = self._open_child(fd, level.name)
        return fd
