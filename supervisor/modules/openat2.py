"""Opening a path beneath a directory descriptor, never leaving it: Linux's `openat2(2)` with
RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV where the kernel has it, and where it
does not (older kernels, a seccomp filter answering ENOSYS or EPERM) a walk of our own that gives
the same answers, one component at a time.

Both raise OSError with the kernel's errno: EXDEV for anything that would leave the directory
(an absolute path or symlink target, a `..` above it, a mount point crossed), ELOOP past 40
symlinks, and the usual ENOENT, ENOTDIR, EISDIR. Symlinks inside the tree are followed, with
their targets resolved beneath the same directory, exactly as the kernel does for openat2.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from functools import cache

# Generic syscall numbers since Linux 5.6 on the two architectures we run on; elsewhere the
# walk is used.
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}.get(platform.machine())

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
CONFINED = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV

AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_STATX_MNT_ID = 0x1000
_STATX_MNT_ID_OFFSET = 144  # stx_mnt_id in struct statx (include/uapi/linux/stat.h)
_MAXSYMLINKS = 40  # the kernel's own bound, so both paths fail alike
_EAGAIN_RETRIES = 8

_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_HOW_SIZE = ctypes.sizeof(_OpenHow)

# A handful of (flags, mode) pairs are used over and over: build each struct once.
_hows: dict[tuple[int, int], tuple[_OpenHow, int]] = {}


def _how(flags: int, mode: int) -> int:
    entry = _hows.get((flags, mode))
    if entry is None:
        how = _OpenHow(flags, mode, CONFINED)
        entry = (how, ctypes.addressof(how))
        _hows[(flags, mode)] = entry
    return entry[1]


def openat2(dirfd: int, path: bytes, flags: int, mode: int = 0) -> int:
    """The raw system call with the confining resolve flags; OSError on failure."""
    if _SYS_OPENAT2 is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    # openat2 refuses a mode without O_CREAT (EINVAL), unlike openat, which ignores it.
    how = _how(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0)
    for _ in range(_EAGAIN_RETRIES):
        fd = _syscall(_SYS_OPENAT2, dirfd, path, how, _HOW_SIZE)
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        # EAGAIN: a rename raced a `..` in the walk; the kernel asks for a retry.
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err))
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))


@cache
def openat2_available() -> bool:
    """Probed once per process: the kernel knows openat2 and no filter refuses it."""
    try:
        fd = openat2(AT_FDCWD, b".", os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return False
    os.close(fd)
    return True


_statx = getattr(_libc, "statx", None)
if _statx is not None:
    _statx.restype = ctypes.c_int
    _statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]


def mount_id(fd: int) -> int | None:
    """The id of the mount `fd` lies on, or None where statx cannot say (the walk then compares
    st_dev only, which still catches every other filesystem but not a bind mount of the same)."""
    if _statx is None:
        return None
    buf = ctypes.create_string_buffer(256)
    if _statx(fd, b"", _AT_EMPTY_PATH, _STATX_MNT_ID, buf) != 0:
        return None
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & _STATX_MNT_ID:
        return None
    return int.from_bytes(buf.raw[_STATX_MNT_ID_OFFSET:_STATX_MNT_ID_OFFSET + 8], "little")


class Mount:
    """Where the confining directory lies, for the walk to refuse anything elsewhere."""

    def __init__(self, fd: int) -> None:
        self.dev = os.fstat(fd).st_dev
        self.mnt_id = mount_id(fd)

    def check(self, fd: int) -> None:
        if os.fstat(fd).st_dev != self.dev or (self.mnt_id is not None and mount_id(fd) != self.mnt_id):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))


def _parts(path: bytes) -> list[bytes]:
    """The components still to walk, last first (a stack)."""
    return [part for part in reversed(path.split(b"/")) if part and part != b"."]


def walk(rootfd: int, mount: Mount, path: bytes, flags: int, mode: int = 0) -> int:
    """openat2's confinement done by hand: every directory is opened O_PATH | O_NOFOLLOW relative
    to the descriptor of the one before, so what was checked is what is used; a symlink is read
    through its own descriptor and its target walked beneath the root; `..` steps back along the
    descriptors already held, never through the filesystem's `..`."""
    if path.startswith(b"/"):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
    flags |= os.O_CLOEXEC
    trailing = path.endswith((b"/", b"/.")) or path == b"."
    if trailing:
        if flags & os.O_CREAT:
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        flags |= os.O_DIRECTORY
    # O_NOFOLLOW means what it means to openat2: the final symlink is not followed (O_PATH then
    # opens the link itself; anything else is ELOOP), unless a trailing slash asks for a directory.
    follow_last = trailing or not flags & os.O_NOFOLLOW
    pending = _parts(path)
    chain = [rootfd]  # chain[0] belongs to the caller; the rest are ours to close
    links = 0
    try:
        while pending:
            name = pending.pop()
            if name == b"..":
                if len(chain) == 1:
                    raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
                os.close(chain.pop())
                continue
            last = not pending
            fd = _open_step(chain[-1], name, flags, mode, last=last)
            info = os.fstat(fd)
            if stat.S_ISLNK(info.st_mode) and (follow_last or not last):
                links += 1
                _follow(fd, pending, links)
                continue
            try:
                if stat.S_ISLNK(info.st_mode) and not flags & os.O_PATH:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                mount.check(fd)
                if not last and not stat.S_ISDIR(info.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            except OSError:
                os.close(fd)
                raise
            if last:
                return fd
            chain.append(fd)
        # The path ended on a directory already held ("", ".", "a/..", a link to "."): open it
        # afresh with the caller's flags.
        if flags & os.O_CREAT:
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        return os.open(".", flags & ~os.O_NOFOLLOW, dir_fd=chain[-1])
    finally:
        for fd in chain[1:]:
            os.close(fd)


def _follow(fd: int, pending: list[bytes], links: int) -> None:
    """The target of the symlink open as `fd` (closed here) becomes the rest of the walk; read
    through the descriptor, so it is the link that was looked at."""
    try:
        target = os.readlink(b"", dir_fd=fd)
    finally:
        os.close(fd)
    if links > _MAXSYMLINKS:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    if target.startswith(b"/"):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
    pending.extend(_parts(target))


def _open_step(dirfd: int, name: bytes, flags: int, mode: int, *, last: bool) -> int:
    """One component, never followed: a directory on the way as O_PATH; the final one with the
    caller's flags, or as O_PATH when it turns out to be a symlink (for the caller to read)."""
    if not last:
        return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=dirfd)
    except OSError as exc:
        # O_NOFOLLOW on a symlink answers ELOOP (ENOTDIR with O_DIRECTORY): look at what it is.
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        if not stat.S_ISLNK(os.fstat(fd).st_mode):
            os.close(fd)
            raise
        return fd
