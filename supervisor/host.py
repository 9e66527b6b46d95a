"""The session host: where a session's sandbox lives, behind a message-shaped interface.

The pipeline hands a host an `ExecRequest` (plain data) and receives events as they happen and
one `Outcome` (plain data). The in-thread host below runs the sandbox in the calling thread;
a host that keeps sandboxes in supervised worker processes can implement the same protocol
without the pipeline changing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sandbox import Event, Limits, MemoryImage, Outcome, Sandbox

EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class ExecRequest:
    kind: Literal["script", "module"]
    code: str
    filename: str = "<input>"
    strict: bool = False
    # Read-only, frozen globals defined before the code runs (run-file's `args` and `env`).
    globals: dict[str, Any] = field(default_factory=dict)
    limits: Limits | None = None
    # The name the state after this execution is checkpointed under (the execution id).
    checkpoint_label: str | None = None


class SessionHost(Protocol):
    def execute(self, request: ExecRequest, on_event: EventSink) -> Outcome: ...

    def cancel(self) -> None: ...

    def snapshot(self) -> MemoryImage: ...

    def checkpoint_label(self) -> str: ...

    def resume(self) -> None: ...

    def memory_size(self) -> int: ...

    def close(self) -> None: ...


class InThreadHost:
    """A sandbox driven by whichever thread calls `execute`."""

    def __init__(self, sandbox: Sandbox, before_execution: Callable[[], None] | None = None) -> None:
        self._sandbox = sandbox
        # The session's per-execution budgets (its modules') start again here.
        self._before = before_execution

    def execute(self, request: ExecRequest, on_event: EventSink) -> Outcome:
        sb = self._sandbox
        if self._before is not None:
            self._before()
        for name, value in request.globals.items():
            sb.define_global(name, value)
        if request.kind == "module":
            return sb.eval_module(request.code, filename=request.filename, limits=request.limits,
                                  on_event=on_event, checkpoint_label=request.checkpoint_label)
        return sb.eval(request.code, filename=request.filename, strict=request.strict,
                       limits=request.limits, on_event=on_event,
                       checkpoint_label=request.checkpoint_label)

    def cancel(self) -> None:
        # Only used on the way to closing: an execution starting right now is stopped too.
        self._sandbox.cancel(also_later=True)

    def snapshot(self) -> MemoryImage:
        return self._sandbox.snapshot()

    def checkpoint_label(self) -> str:
        """The label of the state a trap would roll back to (the last kept execution's id)."""
        return self._sandbox.checkpoint_label

    def resume(self) -> None:
        """Undo `cancel`: the close it prepared did not happen."""
        self._sandbox.resume()

    def memory_size(self) -> int:
        return self._sandbox.memory_size()

    def close(self) -> None:
        self._sandbox.close()
