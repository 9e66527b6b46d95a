"""Executions' event streams: `GET /executions/{id}/events/stream` and a streamed `POST /run`.

Why this shape: a follower spends nearly all its life waiting for a script to print. A thread
per waiting follower let forty followers take every thread the routes share (`/health`
included), and reading a follower's whole backlog at once let a slow reader hold all of it in
memory. So a follower here is a coroutine that holds no thread while it waits:

* one poller task asks the store, in one query, how far every followed execution has got, and
  wakes the followers that have something new to read (or whose execution ended);
* a woken follower reads one page of events in a thread of the streams' own small limiter
  (never one the routes need), and reads the next page only once the last one was handed to
  the server, whose send waits while the client's socket is full: a slow client holds at
  most a page and a socket buffer;
* a client that disconnects ends its coroutine at once (the response listens for it), and
  everything the follower held goes with it;
* concurrent streams are capped per daemon: over the cap, `503 TOO_MANY_STREAMS` before the
  stream starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog
from anyio.to_thread import run_sync
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from supervisor import StoreError, SupervisorApi, SupervisorError
from supervisor.adapters.http import json as out

log = structlog.get_logger("supervisor.http")


@dataclass(frozen=True)
class StreamSettings:
    max_streams: int = 256
    poll_s: float = 0.05  # how often the poller asks the store
    heartbeat_s: float = 15.0  # a comment frame after this long without an event
    page: int = 64  # events read (and held) at a time per follower
    read_threads: int = 4  # threads the streams' reads may use at once, all followers together


class TooManyStreams(SupervisorError):
    code = "TOO_MANY_STREAMS"
    public = True


@dataclass(eq=False)
class _Follower:
    execution_id: str
    cursor: int
    gave_up: Callable[[], bool]
    wake: asyncio.Event = field(default_factory=asyncio.Event)


def sse_frame(event: Any) -> bytes:
    data = out.dumps(out.record(event))
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()


HEARTBEAT = b": alive\n\n"


def _never() -> bool:
    return False


class StreamSlot:
    """One of the daemon's stream slots; `release` may be called any number of times."""

    def __init__(self, free: Callable[[], None]) -> None:
        self._free: Callable[[], None] | None = free

    def release(self) -> None:
        if self._free is not None:
            self._free()
            self._free = None


class EventStreams:
    """Every event stream of one daemon, and the one task that polls for all of them."""

    def __init__(self, sup: SupervisorApi, settings: StreamSettings | None = None) -> None:
        self._sup = sup
        self.settings = settings or StreamSettings()
        self._followers: set[_Follower] = set()
        self._open = 0
        self._limiter = anyio.CapacityLimiter(self.settings.read_threads)
        self._poller: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return self._open

    async def read(self, call: Callable[..., Any], *args: Any) -> Any:
        """A store read for a stream, in one of the streams' own threads."""
        return await run_sync(call, *args, limiter=self._limiter)

    def reserve(self) -> StreamSlot:
        """Take a stream slot, or refuse before anything is sent. On the event loop's thread."""
        if self._open >= self.settings.max_streams:
            raise TooManyStreams(f"the daemon already serves {self.settings.max_streams} event streams; "
                                 "retry later", max_streams=self.settings.max_streams)
        self._open += 1
        return StreamSlot(self._free_slot)

    def _free_slot(self) -> None:
        self._open -= 1

    def response(self, slot: StreamSlot, execution_id: str, after: int, *,
                 gave_up: Callable[[], bool] = _never, status_code: int = 200,
                 headers: dict[str, str] | None = None) -> StreamingResponse:
        """The stream in a reserved slot: each event once, in order, from `after`, ending after
        the terminal event (or once `gave_up()` is true). The slot is freed when it ends."""
        return _ListeningStream(self._frames(execution_id, after, gave_up), slot, status_code=status_code,
                                media_type="text/event-stream",
                                headers={"cache-control": "no-cache", **(headers or {})})

    async def _frames(self, execution_id: str, after: int, gave_up: Callable[[], bool]) -> AsyncIterator[bytes]:
        follower = _Follower(execution_id, after, gave_up)
        self._followers.add(follower)
        self._ensure_poller()
        try:
            last_sent = time.monotonic()
            while True:
                follower.wake.clear()
                # The status first: the events written before the row finished are then all visible.
                finished = (await self.read(self._sup.get_execution, execution_id)).status != "running"
                while True:
                    page = await self.read(self._sup.list_events, execution_id, follower.cursor,
                                           self.settings.page)
                    for event in page:
                        follower.cursor = event.seq
                        yield sse_frame(event)
                    if page:
                        last_sent = time.monotonic()
                    if len(page) < self.settings.page:
                        break
                    del page  # held no longer than its own sending
                if finished or gave_up():
                    return
                quiet_for = time.monotonic() - last_sent
                if quiet_for < self.settings.heartbeat_s and await _woken(
                        follower.wake, self.settings.heartbeat_s - quiet_for):
                    continue
                last_sent = time.monotonic()
                yield HEARTBEAT
        finally:
            self._followers.discard(follower)

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="event-stream-poller")

    async def _poll(self) -> None:
        while self._followers:
            await asyncio.sleep(self.settings.poll_s)
            followers = list(self._followers)
            if not followers:
                return
            try:
                progress = await self.read(self._sup.execution_progress,
                                           [f.execution_id for f in followers])
            except StoreError as exc:  # one failed read must not end every stream
                log.warning("event_stream_poll_failed", error=repr(exc))
                continue
            for follower in followers:
                seen = progress.get(follower.execution_id)
                # Gone (deleted) or moved on: the follower's own read says which.
                if (seen is None or seen.last_seq > follower.cursor or seen.status != "running"
                        or follower.gave_up()):
                    follower.wake.set()


async def _woken(wake: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(wake.wait(), timeout)
    except TimeoutError:
        return False
    return True


class _ListeningStream(StreamingResponse):
    """A streaming response that ends when the client disconnects, also while it waits, and
    then frees its slot and its follower.

    Starlette, under ASGI 2.4 servers, notices a disconnect only when a send fails: a follower
    waiting on a quiet execution would keep its slot until the next heartbeat."""

    def __init__(self, frames: AsyncIterator[bytes], slot: StreamSlot, **kwargs: Any) -> None:
        super().__init__(frames, **kwargs)
        self._frames = frames
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                async def listen() -> None:
                    await self.listen_for_disconnect(receive)
                    group.cancel_scope.cancel()

                group.start_soon(listen)
                with contextlib.suppress(OSError):  # the client went away mid-send
                    await self.stream_response(send)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._frames.aclose()  # type: ignore[attr-defined]
            self._slot.release()
