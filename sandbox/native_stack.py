"""Run guest code only on threads whose native stack can hold wasmtime's 2 MiB wasm stack.

wasmtime runs wasm on the calling thread's native stack and traps cleanly at
`max_wasm_stack`, but only if that much stack is really there: a thread with a smaller stack
(musl's default is 128 KiB, some pools use less) would crash the process instead. Threads
with enough stack (the main thread and glibc's default 8 MiB threads) run the guest directly;
any other thread hands the call to one shared worker thread created with a large stack.
"""

from __future__ import annotations

import ctypes
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

# wasm stack (2 MiB) + the Python frames below and above it (host callbacks) + margin.
REQUIRED_STACK = 6 * 1024 * 1024
WORKER_STACK = 16 * 1024 * 1024

# Per thread: thread idents are reused after a thread exits, a thread-local is not.
_known = threading.local()


def _pthread_stack_size() -> int | None:
    """Size of the calling thread's stack, from pthread_getattr_np (glibc and musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols include libc's
        libc.pthread_self.restype = ctypes.c_ulong
        libc.pthread_getattr_np.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        attr = ctypes.create_string_buffer(128)  # pthread_attr_t is 56 bytes on x86_64
        if libc.pthread_getattr_np(libc.pthread_self(), attr) != 0:
            return None
        addr = ctypes.c_void_p()
        size = ctypes.c_size_t()
        try:
            if libc.pthread_attr_getstack(attr, ctypes.byref(addr), ctypes.byref(size)) != 0:
                return None
        finally:
            libc.pthread_attr_destroy(attr)
        return size.value
    except (OSError, AttributeError):
        return None


def current_thread_is_roomy() -> bool:
    roomy: bool | None = getattr(_known, "roomy", None)
    if roomy is None:
        size = _pthread_stack_size()
        # Unknown size: only the main thread's stack is known to be the process' (large) one.
        roomy = threading.current_thread() is threading.main_thread() if size is None else size >= REQUIRED_STACK
        _known.roomy = roomy
    return roomy


class _Worker:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = queue.SimpleQueue()
        previous = threading.stack_size()
        threading.stack_size(WORKER_STACK)
        try:
            self._thread = threading.Thread(target=self._loop, name="vm-system-guest", daemon=True)
            self._thread.start()
        finally:
            threading.stack_size(previous)

    def _loop(self) -> None:
        _known.roomy = True
        while True:
            fn, fut = self._jobs.get()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # handed back to the caller
                    fut.set_exception(exc)

    def submit(self, fn: Callable[[], T]) -> T:
        fut: Future[object] = Future()
        self._jobs.put((fn, fut))
        return fut.result()  # type: ignore[return-value]


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def on_roomy_stack(fn: Callable[[], T]) -> T:
    """Call fn on this thread if its stack is large enough, else on the big-stack worker."""
    global _worker
    if current_thread_is_roomy():
        return fn()
    with _worker_lock:
        if _worker is None:
            _worker = _Worker()
    return _worker.submit(fn)
