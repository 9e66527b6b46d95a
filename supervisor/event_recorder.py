"""How a running execution's events reach the store: numbered, written in batches, and never
held back longer than a batch's age.

Writing every console line in its own transaction would cost the chatty scripts most; holding a
batch until the next event arrives would hide a line printed just before a long silence from
everyone following the execution (`exec events --follow`, a streamed `POST /run`). So a batch is
written when it is full, when an event arrives and the batch is old enough, or, if no event
comes, by one background thread that writes every batch that has waited `FLUSH_SECONDS`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import structlog

import store as store_mod
from sandbox import Event
from store import NewEvent, Store
from vocabulary import TERMINAL_EVENT_TYPES

log = structlog.get_logger("supervisor.events")

FLUSH_EVENTS = 256
FLUSH_SECONDS = 0.05


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class EventRecorder:
    """Numbers an execution's events and streams them to the store; keeps what is not written.

    `add` runs on the sandbox's thread, `flush_if_stale` on the flusher's; the lock makes each
    batch go out once. After `close`, only the caller reads `pending` (the finishing
    transaction writes it), so nothing may flush any more."""

    def __init__(self, store: Store, execution_id: str, written: int = 0) -> None:
        """`written`: how many events the store holds already (numbering goes on from there)."""
        self._store = store
        self._id = execution_id
        self._lock = threading.Lock()
        self._closed = False
        self._waiting_since: float | None = None  # when the oldest unwritten event arrived
        self.seq = written
        self.pending: list[NewEvent] = []
        self._last_flush = time.monotonic()

    def add(self, event: Event) -> None:
        with self._lock:
            self.seq += 1
            self.pending.append(NewEvent(self.seq, event.type, event.payload, _ts(event.ts)))
            if event.type in TERMINAL_EVENT_TYPES:
                return  # the terminal event goes with the finishing transaction
            now = time.monotonic()
            if self._waiting_since is None:
                self._waiting_since = now
            if len(self.pending) >= FLUSH_EVENTS or now - self._last_flush >= FLUSH_SECONDS:
                # Raises StoreWriteError: the sandbox then stops the script as `crashed`.
                self._flush()

    def flush_if_stale(self, now: float) -> None:
        with self._lock:
            if self._closed or self._waiting_since is None or now - self._waiting_since < FLUSH_SECONDS:
                return
            try:
                self._flush()
            except store_mod.StoreError as exc:
                # The batch stays pending: the next event retries it (and stops the script if
                # the store still refuses), or the finishing transaction writes it. No more
                # background tries: a full disk must not become a warning every 25 ms.
                self._closed = True
                log.warning("event_flush_failed", execution_id=self._id, error=str(exc))

    def close(self) -> None:
        """No more background writes: `pending` is the caller's from here on."""
        with self._lock:
            self._closed = True

    def _flush(self) -> None:
        batch = [e for e in self.pending if e.type not in TERMINAL_EVENT_TYPES]
        if batch:
            self._store.append_events(self._id, batch)
            self.pending = [e for e in self.pending if e.type in TERMINAL_EVENT_TYPES]
        self._last_flush = time.monotonic()
        self._waiting_since = None


class StaleBatchFlusher:
    """One thread for every running execution of the process: it sleeps while none runs."""

    def __init__(self, interval: float = FLUSH_SECONDS / 2) -> None:
        self._interval = interval
        self._recorders: set[EventRecorder] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, recorder: EventRecorder) -> None:
        with self._wake:
            self._recorders.add(recorder)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vm-system-event-flusher",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def forget(self, recorder: EventRecorder) -> None:
        with self._wake:
            self._recorders.discard(recorder)
        recorder.close()  # waits for a flush of it that is under way

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._recorders:
                    self._wake.wait()
                recorders = list(self._recorders)
            now = time.monotonic()
            for recorder in recorders:
                recorder.flush_if_stale(now)
            time.sleep(self._interval)


FLUSHER = StaleBatchFlusher()
