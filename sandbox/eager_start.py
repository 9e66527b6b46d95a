"""A host coroutine's task, with its first step run at once, inside the guest's call.

An `async def` host function that needs no waiting (it answers from a cache, or computes and
returns) would otherwise wait for a pass of the event loop before its promise could settle,
and a pass costs more than the whole call. So its task's first step runs here, while the
guest waits in its call: the task is made as usual (it is the current task while it runs, so
`asyncio.timeout`, anyio's cancel scopes and `current_task()` work), then the step the loop
was given for it is taken back off the loop's queue and run now, with the sandbox's loop set as
the running loop. A task done after it needs no pass of the loop; one that suspended goes on
as any task does. This is what Python 3.12's `eager_start` does, which needs a running loop:
the sandbox's loop runs only between turns.

It relies on the loop keeping its ready handles in `_ready` (asyncio's own loops do); on a loop
that does not, or if the queued handle is not the task's step, the step is left to the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any


def start_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None],
                  context: contextvars.Context) -> asyncio.Task[None]:
    """A task of `loop` for `coro`, its first step already run if the loop allows it."""
    task = loop.create_task(coro, context=context)
    ready = getattr(loop, "_ready", None)
    if not ready:
        return task
    handle = ready[-1]  # create_task queued the task's first step last
    if getattr(getattr(handle, "_callback", None), "__self__", None) is not task:
        return task
    ready.pop()
    previous = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(loop)
    try:
        handle._run()  # the task's own step: it enters the task, and catches what it raises
    finally:
        asyncio.events._set_running_loop(previous)
    return task
