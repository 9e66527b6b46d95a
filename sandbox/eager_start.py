"""A host coroutine's first step, run at once inside the guest's call.

An `async def` host function that needs no waiting (it answers from a cache, or computes and
returns) would otherwise cost a task, a pass of the event loop and two futures before its
promise could settle. Its first step runs here instead: with the sandbox's loop set as the
running loop, so that it may create tasks, sleep or read the loop, and in a context copied for
it, as a task would run it. A coroutine that finished in that step needs no task at all; one
that suspended goes on in a task, which `Resume` hands what the coroutine yielded, so that it
continues as if the task had started it (Python 3.12's eager tasks, on 3.11).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any, NamedTuple


class Finished(NamedTuple):
    value: Any


class Raised(NamedTuple):
    error: BaseException  # an Exception, or the CancelledError the coroutine raised itself


class Suspended(NamedTuple):
    rest: Resume


Step = Finished | Raised | Suspended


def first_step(coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop,
               context: contextvars.Context) -> Step:
    """Run `coro` until it first suspends or ends. KeyboardInterrupt and SystemExit pass."""
    previous = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(loop)
    try:
        yielded = context.run(coro.send, None)
    except StopIteration as stop:
        return Finished(stop.value)
    except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - the caller maps any failure
        return Raised(exc)
    finally:
        asyncio.events._set_running_loop(previous)
    return Suspended(Resume(coro, yielded))


class Resume:
    """The rest of a coroutine whose first step already ran, as an awaitable: what the
    coroutine yields goes to the task awaiting this, what the task sends or throws (a result,
    a cancel) goes back to the coroutine."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - everything thrown in goes to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
