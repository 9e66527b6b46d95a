"""Sessions survive a restart: their state is persisted as signed images.

Who copies the memory, and when:
* after an execution, the session is marked dirty (`note_execution`, called with the
  session's lock held). If it has stayed dirty for `max_delay` seconds (a session busy with
  back-to-back executions never lets the writer in), the copy is taken right there, while
  the lock is held anyway;
* otherwise the background writer, woken every `interval` seconds (at once after a spawn),
  takes each dirty session's lock *without waiting*, copies its memory (a fraction of a
  millisecond, with `imaging` set so an execution arriving meanwhile waits for it instead of
  answering SESSION_BUSY) and lets it go;
* compressing, signing and storing always happen on the writer thread, outside the lock;
  the newest few images of each session are kept.
A clean close flushes every dirty session. So state is durable within about `interval`
of an execution, and under load within `max_delay` plus the time to store one image (the
writer is woken as soon as such a copy is taken), and exactly at a clean shutdown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from sandbox import FORMAT_VERSION, MemoryImage, encode_image, guest_engine
from store import Store, StoreError
from supervisor.ids import execution_label
from supervisor.live import LiveSession

log = structlog.get_logger("supervisor.durability")

KEEP_IMAGES = 2


class ImageWriter:
    def __init__(self, store: Store, key: bytes, sessions: Callable[[], list[LiveSession]],
                 interval: float = 0.2, max_delay: float = 1.0) -> None:
        self._store = store
        self.key = key
        self._sessions = sessions
        self._interval = interval
        self._max_delay = max_delay
        self._stop = threading.Event()
        self._wake = threading.Event()
        # One round at a time: a flush must not return while the background round it raced
        # with is still storing a copy it took (the flush would see the session clean).
        self._round_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="vm-system-images", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Run a round now (a new session wants its first image)."""
        self._wake.set()

    def note_execution(self, live: LiveSession) -> None:
        """Called after each execution, with the session's lock held."""
        now = time.monotonic()
        # The image records the state it holds: after a rolled-back execution, that of the
        # last execution that kept its state, not of the one that just ran.
        live.last_execution_id = execution_label(live.host.checkpoint_label())
        execution_id = live.last_execution_id
        if not live.dirty:
            live.dirty = True
            live.dirty_since = now
        elif now - live.dirty_since >= self._max_delay:
            live.pending = (live.host.snapshot(), execution_id)
            live.dirty_since = now
            # Stored now, not at the writer's next round: the copy is already `max_delay` old.
            self._wake.set()

    def _copy(self, live: LiveSession, wait: bool) -> tuple[MemoryImage, str | None] | None:
        """The session's memory, copied under its lock; None if busy (and not `wait`)."""
        live.imaging = True
        try:
            if not live.lock.acquire(blocking=wait):
                return None
            try:
                if live.closing:
                    return None
                live.dirty = False
                live.pending = None
                return live.host.snapshot(), live.last_execution_id
            finally:
                live.lock.release()
        finally:
            live.imaging = False

    def _store_image(self, live: LiveSession, snapshot: MemoryImage, execution_id: str | None) -> None:
        data = encode_image(snapshot, guest_engine().guest_sha256, self.key, live.id)
        try:
            self._store.save_image(live.id, data, format_version=FORMAT_VERSION,
                                   guest_sha256=guest_engine().guest_sha256,
                                   memory_size=snapshot.size, execution_id=execution_id,
                                   keep_latest=KEEP_IMAGES)
        except StoreError as exc:
            live.dirty = True
            log.error("image_persist_failed", session_id=live.id, error=str(exc))
            raise

    def persist(self, live: LiveSession, *, wait: bool) -> bool:
        """Store the session's current state now; False if it was busy (and not `wait`)."""
        copied = self._copy(live, wait)
        if copied is None:
            return False
        self._store_image(live, *copied)
        return True

    def _round(self, wait: bool) -> None:
        with self._round_lock:
            self._round_locked(wait)

    def _round_locked(self, wait: bool) -> None:
        for live in self._sessions():
            if live.closing:
                continue
            try:
                pending = live.pending
                if pending is not None:
                    live.pending = None
                    self._store_image(live, *pending)
                if live.dirty:
                    self.persist(live, wait=wait)
            except StoreError:
                pass  # logged; the session stays dirty and is retried next round
            except Exception as exc:  # the writer must outlive one bad session
                log.error("image_capture_failed", session_id=live.id, error=repr(exc))

    def flush(self) -> None:
        """Persist every dirty session now, waiting for running executions."""
        self._round(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._stop.is_set():
                self._round(wait=False)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
