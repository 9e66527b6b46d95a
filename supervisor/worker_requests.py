"""What a `ShardedSupervisor` asks its worker processes: one frozen dataclass per call.

A request names its call by its type, never by a method name, and `apply` makes that call on
the worker's in-process supervisor, so mypy checks every request against `SupervisorApi` and
the router gets the call's result type back (`_Worker.call(Repl(...))` is an `Execution`).
Requests and their answers cross the process boundary pickled (supervisor/shard_worker.py).

Reads (templates, sessions, executions, events, progress) have no request: the router answers
them from the database itself (`ROUTER_ANSWERS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from supervisor.api import RuntimeSummary, SupervisorApi
from supervisor.errors import SupervisorError

if TYPE_CHECKING:
    import store as store_mod

T = TypeVar("T")

# The protocol's members that no request carries: the router answers them without its workers
# (`StoreReads`, `Templates` and the package store on its own connection), or they are its own
# lifecycle.
ROUTER_ANSWERS = frozenset({"templates", "packages", "get_session", "list_sessions", "get_execution",
                            "list_executions", "list_events", "execution_progress",
                            "__enter__", "__exit__"})


class WorkerRequest(Generic[T]):
    """A call the router sends to a worker; `apply` makes it there."""

    def apply(self, sup: SupervisorApi) -> T:
        raise NotImplementedError


@dataclass(frozen=True)
class CreateSession(WorkerRequest["store_mod.Session"]):
    template_id: str
    workspace_id: Any
    base_commit_oid: Any
    worktree_path: Any

    def apply(self, sup: SupervisorApi) -> store_mod.Session:
        return sup.create_session(self.template_id, self.workspace_id, self.base_commit_oid,
                                  self.worktree_path)


@dataclass(frozen=True)
class CloseSession(WorkerRequest["store_mod.Session"]):
    session_id: str

    def apply(self, sup: SupervisorApi) -> store_mod.Session:
        return sup.close_session(self.session_id)


@dataclass(frozen=True)
class Run(WorkerRequest["store_mod.Execution"]):
    code: Any = None
    path: Any = None
    template_id: str | None = None
    limits: Any = None
    execution_id: str | None = None

    def apply(self, sup: SupervisorApi) -> store_mod.Execution:
        return sup.run(code=self.code, path=self.path, template_id=self.template_id,
                       limits=self.limits, execution_id=self.execution_id)


@dataclass(frozen=True)
class Repl(WorkerRequest["store_mod.Execution"]):
    session_id: str
    input: Any
    execution_id: str | None = None

    def apply(self, sup: SupervisorApi) -> store_mod.Execution:
        return sup.repl(self.session_id, self.input, self.execution_id)


@dataclass(frozen=True)
class RunFile(WorkerRequest["store_mod.Execution"]):
    session_id: str
    path: Any
    args: Any = None
    env: Any = None

    def apply(self, sup: SupervisorApi) -> store_mod.Execution:
        return sup.run_file(self.session_id, self.path, self.args, self.env)


@dataclass(frozen=True)
class Summarize(WorkerRequest[RuntimeSummary]):
    def apply(self, sup: SupervisorApi) -> RuntimeSummary:
        return sup.runtime_summary()


@dataclass(frozen=True)
class FlushImages(WorkerRequest[None]):
    def apply(self, sup: SupervisorApi) -> None:
        sup.flush_images()


@dataclass(frozen=True)
class Drain(WorkerRequest[None]):
    grace: float = 0.0

    def apply(self, sup: SupervisorApi) -> None:
        sup.drain(self.grace)


@dataclass(frozen=True)
class Close(WorkerRequest[None]):
    """The worker's last request: it answers, then its process ends."""

    grace: float = 0.0

    def apply(self, sup: SupervisorApi) -> None:
        sup.close(self.grace)


REQUESTS: tuple[type[WorkerRequest[Any]], ...] = (
    CreateSession, CloseSession, Run, Repl, RunFile, Summarize, FlushImages, Drain, Close)


def answer(sup: SupervisorApi, request: object) -> Any:
    """What `request` returns on `sup`; anything but a known request is refused."""
    if not isinstance(request, REQUESTS):
        raise SupervisorError(f"a shard worker does not answer {type(request).__name__}")
    return request.apply(sup)
