"""Sessions survive a restart: their state is persisted as signed images.

A session's image is written synchronously when it becomes ready (so every ready session has
one), then in the background after executions change its state: the writer wakes every
`interval` seconds, takes each dirty session's lock without waiting (a busy session is
retried on the next round), captures an image and stores it, keeping the newest few. A
graceful close of the supervisor flushes every dirty session. So state is durable within
about `interval` of an execution, and exactly at a clean shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from sandbox.engine import guest_engine
from sandbox.image import FORMAT_VERSION, encode_image
from store import Store, StoreError
from supervisor.live import LiveSession

log = structlog.get_logger("supervisor.durability")

KEEP_IMAGES = 2


class ImageWriter:
    def __init__(self, store: Store, key: bytes, sessions: Callable[[], list[LiveSession]],
                 interval: float = 0.2) -> None:
        self._store = store
        self._key = key
        self._sessions = sessions
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vm-system-images", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def persist(self, live: LiveSession, *, wait: bool) -> bool:
        """Store the session's current state; False if it was busy (and `wait` is False).

        The session is held only for the memory copy; encoding and writing happen after."""
        live.imaging = True
        try:
            if not live.lock.acquire(blocking=wait):
                return False
            try:
                if live.closing:
                    return True
                live.dirty = False
                snapshot = live.host.snapshot()
                execution_id = live.last_execution_id
            finally:
                live.lock.release()
        finally:
            live.imaging = False
        data = encode_image(snapshot, guest_engine().guest_sha256, self._key, live.id)
        memory = snapshot.size
        try:
            self._store.save_image(live.id, data, format_version=FORMAT_VERSION,
                                   guest_sha256=guest_engine().guest_sha256, memory_size=memory,
                                   execution_id=execution_id, keep_latest=KEEP_IMAGES)
        except StoreError as exc:
            live.dirty = True
            log.error("image_persist_failed", session_id=live.id, error=str(exc))
            raise
        return True

    def flush(self) -> None:
        """Persist every dirty session now, waiting for running executions."""
        for live in self._sessions():
            if live.dirty and not live.closing:
                try:
                    self.persist(live, wait=True)
                except StoreError:
                    pass  # logged; the session stays dirty

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            for live in self._sessions():
                if live.dirty and not live.closing:
                    try:
                        self.persist(live, wait=False)
                    except StoreError:
                        pass  # logged; retried next round
                    except Exception as exc:  # noqa: BLE001 - the writer must outlive one bad session
                        log.error("image_capture_failed", session_id=live.id, error=repr(exc))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
