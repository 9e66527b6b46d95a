"""`POST /run` and `POST /executions/repl` answered as they happen, when the client asks for
`Accept: text/event-stream`.

The answer is `201 Created` with `Location: /api/v1/executions/{id}`, and its body is exactly
the execution's event stream (`GET /executions/{id}/events/stream`: one frame per event as it
is recorded, `id: seq`, `event: type`, `data: the event`), which ends after the terminal
event, once the execution is finished: `GET {Location}` then gives the execution. A run
refused before it starts (a bad field, an unknown template, a bad path) is answered as
without the header, with the error envelope and its status. A stream that breaks is resumed
like any event stream, from `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from starlette.responses import StreamingResponse

from supervisor import ExecutionNotFound, SupervisorApi
from supervisor.adapters.http.event_stream import EventStreams


def wants_event_stream(accept: str) -> bool:
    return any(part.split(";", 1)[0].strip().lower() == "text/event-stream"
               for part in accept.split(","))


async def stream_run(sup: SupervisorApi, streams: EventStreams, start: Callable[[str], Any],
                     prefix: str) -> StreamingResponse:
    """`start(execution_id)` runs the execution under that id (on a thread of its own); the
    answer is its event stream, once its row exists."""
    slot = streams.reserve()  # over the cap, refused before the run starts
    try:
        execution_id = str(uuid.uuid4())
        done: Future[Any] = Future()

        def run() -> None:
            try:
                done.set_result(start(execution_id))
            except BaseException as exc:  # handed to the request's coroutine
                done.set_exception(exc)

        # In the request's context: the run's log lines carry its request id.
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(run,), name=f"run-{execution_id[:8]}",
                         daemon=True).start()
        # The core checks the request before the execution's row exists: until then a refusal is
        # still an ordinary error answer.
        while not done.done() and not await streams.read(_exists, sup, execution_id):
            await asyncio.sleep(streams.settings.poll_s)
        if done.done() and done.exception() is not None:
            raise done.exception()  # type: ignore[misc]
    except BaseException:
        slot.release()
        raise
    return streams.response(slot, execution_id, 0, gave_up=lambda: _failed(done), status_code=201,
                            headers={"location": f"{prefix}/executions/{execution_id}"})


def _exists(sup: SupervisorApi, execution_id: str) -> bool:
    try:
        sup.get_execution(execution_id)
    except ExecutionNotFound:
        return False
    return True


def _failed(done: Future[Any]) -> bool:
    """The run failed in a way that leaves its row unfinished (the store refused its end): the
    stream would wait for that end forever."""
    return done.done() and done.exception() is not None
