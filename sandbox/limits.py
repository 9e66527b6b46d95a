"""Limits of one evaluation, and the watch that enforces them while the guest runs."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from vocabulary import DEFAULT_LIMITS

# The hard backstop (the guest trapped, its instance discarded) fires this long after a limit
# was passed or a stop requested, if the guest has not stopped gracefully by then: it never
# reached an interrupt check (a long native call, a corrupted allocator spinning).
BACKSTOP_MS = 25


@dataclass(frozen=True)
class Limits:
    """What one evaluation may use. Every field is a positive integer.

    `max_events` and `max_output_kb` count console output of one evaluation (`max_events`
    counts its `host_call` events too); the terminal event (value, exception or limit) is
    always recorded and is not counted. `max_host_calls`, `max_host_in_kb` (the arguments'
    JSON) and `max_host_out_kb` (the results' JSON) bound the calls of host functions.
    """

    cpu_ms: int = DEFAULT_LIMITS["cpu_ms"]
    wall_ms: int = DEFAULT_LIMITS["wall_ms"]
    mem_mb: int = DEFAULT_LIMITS["mem_mb"]
    max_events: int = DEFAULT_LIMITS["max_events"]
    max_output_kb: int = DEFAULT_LIMITS["max_output_kb"]
    max_host_calls: int = DEFAULT_LIMITS["max_host_calls"]
    max_host_in_kb: int = DEFAULT_LIMITS["max_host_in_kb"]
    max_host_out_kb: int = DEFAULT_LIMITS["max_host_out_kb"]

    # The guest needs room for QuickJS itself, its 1 MiB stack block and the bootstrap.
    MIN_MEM_MB = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
        if self.mem_mb < self.MIN_MEM_MB:
            raise ValueError(f"mem_mb must be at least {self.MIN_MEM_MB}, got {self.mem_mb}")
        if self.mem_mb > 4095:
            raise ValueError("mem_mb must be below 4096 (the guest is a 32-bit WebAssembly module)")

    @property
    def memory_bytes(self) -> int:
        return self.mem_mb * 1024 * 1024

    def replace(self, **changes: int | None) -> Limits:
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update({k: v for k, v in changes.items() if v is not None})
        return Limits(**current)


@dataclass(frozen=True)
class Stop:
    """Why the host stopped a script."""

    # timeout | cpu_limit | stack_overflow | output_limit | event_limit | host_call_limit |
    # host_bytes_limit | cancelled | internal | memory_limit (a job the engine dropped)
    kind: str
    name: str  # the limit's name (wall_ms, cpu_ms, ...)
    value: int | float
    used: int | float
    message: str


def memory_stop(limits: Limits, used_bytes: int) -> Stop:
    return Stop("memory_limit", "mem_mb", limits.mem_mb, round(used_bytes / 1048576, 3),
                f"memory limit of {limits.mem_mb} MiB exceeded")


def heap_full(used_bytes: int, limits: Limits) -> bool:
    """Whether the guest's memory is close enough to its cap for a small allocation to have
    failed (memory grows by whole pages: a refused grow leaves it within a few of the cap):
    within a tenth of it, and at least 1 MiB. Checked after every evaluation: plain integers."""
    mem_mb = limits.mem_mb
    return used_bytes >= (mem_mb - (mem_mb // 10 if mem_mb >= 10 else 1)) << 20


class _GuestClock:
    """The running guest's CPU time: the thread's, less the garbage collections Python ran on
    that thread meanwhile and the time the caller's event consumer took. A collection may
    start inside any host callback the guest makes (the engine's tick check runs every 5 ms
    even in code that never polls), and one pass over a big Python heap can take longer than
    a tight CPU limit; a consumer may write each event somewhere slow. That time is the
    host's, not the script's."""

    _local = threading.local()

    def __init__(self) -> None:
        self.paused = 0.0  # seconds of host work (collections, the consumer) since `start`
        self._gc_started: float | None = None

    def start(self) -> float:
        self.paused = 0.0
        self._gc_started = None
        _GuestClock._local.clock = self
        return time.thread_time()

    def stop(self) -> None:
        if getattr(_GuestClock._local, "clock", None) is self:
            _GuestClock._local.clock = None

    def now(self) -> float:
        return time.thread_time() - self.paused

    def host_started(self) -> tuple[float, float]:
        return time.thread_time(), self.paused

    def host_ended(self, mark: tuple[float, float]) -> None:
        """Exclude the time since `mark` (collections within it are excluded once)."""
        started, paused = mark
        self.paused = paused + (time.thread_time() - started)

    @staticmethod
    def on_gc(phase: str, info: dict[str, int]) -> None:
        clock = getattr(_GuestClock._local, "clock", None)
        if clock is None:
            return
        if phase == "start":
            clock._gc_started = time.thread_time()
        elif clock._gc_started is not None:
            clock.paused += time.thread_time() - clock._gc_started
            clock._gc_started = None


gc.callbacks.append(_GuestClock.on_gc)


class LimitWatch:
    """State of the running evaluation, consulted by the interrupt handler and the console.

    Every check runs on the thread that runs the guest, except `cancel`, which another thread
    may call at any time: it only sets a flag the next check reads.
    """

    def __init__(self) -> None:
        self.stop: Stop | None = None
        # A plain flag: assignment is atomic, and the interrupt handler reads it on every
        # check (an Event's lock would cost more than the rest of the check).
        self._cancelled = False
        # A sticky cancel also stops every later evaluation: for a sandbox about to be closed,
        # whose next evaluation may be starting right now.
        self._sticky = False
        self.limits = Limits()
        self._wall_deadline = 0.0
        self._cpu_deadline = 0.0
        self._cpu_possible = 0.0
        self._wall_start = 0.0
        self._cpu_start = 0.0
        self._clock = _GuestClock()
        # Host work on the guest thread that is not the script's (a host function, an event
        # consumer): `mark = host_started()` ... `host_ended(mark)`. The clock's own methods,
        # bound once: they run around every host call and console line.
        self.host_started: Callable[[], tuple[float, float]] = self._clock.host_started
        self.host_ended: Callable[[tuple[float, float]], None] = self._clock.host_ended
        self.output_bytes = 0
        self.console_events = 0  # console lines and host calls: what max_events counts
        self.host_calls = 0
        self.host_bytes_in = 0
        self.host_bytes_out = 0
        self.stack_check: Callable[[int], bool] | None = None
        # When the backstop first saw a stop requested that the guest has not obeyed yet.
        self._overdue_since: float | None = None
        # Set-up and restores run unarmed: only an evaluation can be interrupted.
        self.armed = False

    def begin(self, limits: Limits) -> None:
        self.limits = limits
        self.stop = None
        self._cancelled = self._sticky
        self._overdue_since = None
        self.output_bytes = 0
        self.console_events = 0
        self.host_calls = self.host_bytes_in = self.host_bytes_out = 0
        self._wall_start = time.monotonic()
        self._cpu_start = self._clock.start()
        self._wall_deadline = self._wall_start + limits.wall_ms / 1000
        self._cpu_deadline = self._cpu_start + limits.cpu_ms / 1000
        # A thread cannot use more CPU time than the wall-clock time that passed: until then the
        # CPU clock (a system call) need not be read.
        self._cpu_possible = self._wall_start + limits.cpu_ms / 1000
        self.armed = True

    def end(self) -> tuple[float, float]:
        """The evaluation is over: its wall-clock and CPU milliseconds."""
        clock = self._clock
        cpu = (time.thread_time() - clock.paused - self._cpu_start) * 1000  # clock.now(), inline
        wall = (time.monotonic() - self._wall_start) * 1000
        self.armed = False
        clock.stop()
        return wall, cpu

    @property
    def wall_deadline(self) -> float:
        """When the wall limit ends the evaluation, on time.monotonic()'s clock."""
        return self._wall_deadline

    @property
    def cancelled(self) -> bool:
        """The evaluation was cancelled (from any thread), or a stop is held."""
        return self._cancelled or self.stop is not None

    def poll_stop(self) -> bool:
        """Between turns of the event loop (no guest code running): True, with the stop set, if
        the evaluation must end now (a stop already held, a cancel, a time limit)."""
        if self.stop is not None:
            return True
        if self._cancelled:
            self.stop = self.cancel_stop()
        elif time.monotonic() >= self._wall_deadline:
            self.stop = self.wall_stop()
        elif self._clock.now() >= self._cpu_deadline:
            self.stop = self.cpu_stop()
        return self.stop is not None

    def wall_ms(self) -> float:
        return (time.monotonic() - self._wall_start) * 1000

    def cpu_ms(self) -> float:
        return (self._clock.now() - self._cpu_start) * 1000

    def resume(self) -> None:
        self._sticky = False

    def cancel(self, sticky: bool = False) -> None:
        if sticky:
            self._sticky = True
        self._cancelled = True

    def interrupt(self, stack_pointer: int) -> bool:
        if not self.armed:
            return False
        if self.stop is not None:
            return True
        if self._cancelled:
            self.stop = self.cancel_stop()
            return True
        now = time.monotonic()
        if now >= self._wall_deadline:
            self.stop = self.wall_stop()
            return True
        if now >= self._cpu_possible and self._clock.now() >= self._cpu_deadline:
            self.stop = self.cpu_stop()
            return True
        if self.stack_check is not None and self.stack_check(stack_pointer):
            self.stop = Stop("stack_overflow", "stack", 0, 0,
                             "Maximum call stack size exceeded")
            return True
        return False

    def dropped_job(self, used_bytes: int) -> bool:
        """The engine dropped a job for want of memory (GuestInstance.exception_waiting): the
        script stops at the memory limit, if the heap is indeed full. True stops it."""
        if not heap_full(used_bytes, self.limits):
            return False
        self.stop = memory_stop(self.limits, used_bytes)
        return True

    def backstop_due(self) -> bool:
        """Checked once per epoch tick while the guest runs: True means trap it now.

        Time limits are judged on their own clocks (BACKSTOP_MS past the deadline); any other
        stop (a cancel, a console cap) once it has been pending for BACKSTOP_MS. The stop the
        guest failed to obey becomes the evaluation's stop.
        """
        if not self.armed:
            return False
        now = time.monotonic()
        backstop = BACKSTOP_MS / 1000
        if self.stop is None:
            if now >= self._wall_deadline + backstop:
                self.stop = self.wall_stop()
                return True
            if self._clock.now() >= self._cpu_deadline + backstop:
                self.stop = self.cpu_stop()
                return True
            if not self._cancelled:
                return False
            self.stop = self.cancel_stop()
        if self._overdue_since is None:
            self._overdue_since = now
        return now - self._overdue_since >= backstop

    @staticmethod
    def cancel_stop() -> Stop:
        return Stop("cancelled", "cancelled", 0, 0, "the evaluation was cancelled")

    def wall_stop(self) -> Stop:
        used = round(self.wall_ms(), 3)
        return Stop("timeout", "wall_ms", self.limits.wall_ms, used,
                    f"wall-clock limit of {self.limits.wall_ms} ms exceeded")

    def cpu_stop(self) -> Stop:
        used = round(self.cpu_ms(), 3)
        return Stop("cpu_limit", "cpu_ms", self.limits.cpu_ms, used,
                    f"CPU time limit of {self.limits.cpu_ms} ms exceeded")

    def account_console(self, size: int) -> bool:
        """Count one console line; False (and a stop) when it would cross a cap."""
        if self.stop is not None:
            return False
        limits = self.limits
        if self._events_full():
            return False
        if self._kib_crossed("output_limit", "max_output_kb", limits.max_output_kb,
                             self.output_bytes + size, "output limit of {} KiB exceeded"):
            return False
        self.console_events += 1
        self.output_bytes += size
        return True

    def account_output(self, size: int) -> bool:
        """Count output that is not a console line (what a command a host function ran
        printed); False (and a stop) when it crosses max_output_kb."""
        self.output_bytes += size
        return not self._kib_crossed("output_limit", "max_output_kb", self.limits.max_output_kb,
                                     self.output_bytes, "output limit of {} KiB exceeded")

    def _kib_crossed(self, kind: str, name: str, cap_kb: int, used_bytes: int, message: str) -> bool:
        """True if `used_bytes` is over `cap_kb` KiB, with a stop (`message` formatted with the
        cap) unless one is held already."""
        if used_bytes <= cap_kb * 1024:
            return False
        if self.stop is None:
            self.stop = Stop(kind, name, cap_kb, round(used_bytes / 1024, 3), message.format(cap_kb))
        return True

    def _events_full(self) -> bool:
        """True (and a stop) if one more counted event would cross max_events."""
        limits = self.limits
        if self.console_events + 1 > limits.max_events:
            self.stop = Stop("event_limit", "max_events", limits.max_events, self.console_events + 1,
                             f"event limit of {limits.max_events} exceeded")
            return True
        return False

    def account_host_call(self, bytes_in: int) -> bool:
        """Count one host call (and its event) before it runs; False (and a stop) when it
        would cross a cap."""
        if self.stop is not None:
            return False
        limits = self.limits
        if self.host_calls + 1 > limits.max_host_calls:
            self.stop = Stop("host_call_limit", "max_host_calls", limits.max_host_calls,
                             self.host_calls + 1,
                             f"host call limit of {limits.max_host_calls} exceeded")
            return False
        # The caps' own checks run only near them (each is a call; this runs on every host call).
        used_in = self.host_bytes_in + bytes_in
        if used_in > limits.max_host_in_kb * 1024 and self._kib_crossed(
                "host_bytes_limit", "max_host_in_kb", limits.max_host_in_kb, used_in,
                "limit of {} KiB of host call arguments exceeded"):
            return False
        if self.console_events + 1 > limits.max_events and self._events_full():
            return False
        self.host_calls += 1
        self.host_bytes_in += bytes_in
        self.console_events += 1
        return True

    def account_host_out(self, size: int) -> bool:
        """Count a host call's result; False (and a stop) when it crosses the cap."""
        self.host_bytes_out += size
        if self.host_bytes_out <= self.limits.max_host_out_kb * 1024:  # the common case, inlined
            return True
        return not self._kib_crossed("host_bytes_limit", "max_host_out_kb",
                                     self.limits.max_host_out_kb, self.host_bytes_out,
                                     "limit of {} KiB of host call results exceeded")

    def fail(self, message: str) -> None:
        """The host side failed (an event consumer raised): stop the script."""
        if self.stop is None:
            self.stop = Stop("internal", "host", 0, 0, message)
