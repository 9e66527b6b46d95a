"""The supervisor contract (supervisor/api.py): both supervisors offer every member of
`SupervisorApi` with the protocol's own signature, every call that reaches a worker process
has a typed request (supervisor/worker_requests.py), and a request and its answer, or its
error, cross a real worker process unchanged."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

import pytest

from supervisor import Supervisor, SupervisorApi
from supervisor.api import PackagesApi, RuntimeSummary, TemplatesApi
from supervisor.errors import SupervisorError
from supervisor.packages import PackageLibrary
from supervisor.shards import ShardedSupervisor
from supervisor.templates import Templates
from supervisor.worker_requests import REQUESTS, ROUTER_ANSWERS, WorkerRequest, answer

IMPLEMENTATIONS = [Supervisor, ShardedSupervisor]
UNKNOWN_SESSION = "00000000-0000-4000-8000-000000000000"


def protocol_members(protocol: type) -> set[str]:
    """The names a protocol declares, its bases' included."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        names |= {name for name in vars(cls)
                  if not name.startswith("_") or name in ("__enter__", "__exit__")}
    return names - {"_is_protocol"}


def shape(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """A signature without its annotations (the protocol's are strings of another module)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_protocol_covers_templates_sessions_executions_events_and_the_lifecycle() -> None:
    assert protocol_members(SupervisorApi) == {
        "templates", "packages", "create_session", "get_session", "list_sessions", "close_session",
        "run", "repl", "run_file", "get_execution", "list_executions",
        "list_events", "execution_progress",
        "runtime_summary", "flush_images", "drain", "close", "__enter__", "__exit__"}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda c: c.__name__)
def test_each_supervisor_has_every_method_with_the_protocols_signature(implementation: type) -> None:
    for name in sorted(protocol_members(SupervisorApi) - {"templates", "packages"}):
        assert shape(getattr(implementation, name)) == shape(getattr(SupervisorApi, name)), name


def test_templates_have_every_method_with_the_protocols_signature() -> None:
    for name in sorted(protocol_members(TemplatesApi)):
        assert shape(getattr(Templates, name)) == shape(getattr(TemplatesApi, name)), name


def test_the_package_store_has_every_method_with_the_protocols_signature() -> None:
    for name in sorted(protocol_members(PackagesApi)):
        assert shape(getattr(PackageLibrary, name)) == shape(getattr(PackagesApi, name)), name


class _Recorder:
    """Stands for a supervisor: records the one call a request makes on it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return call


def _sample(request_type: type[WorkerRequest[Any]]) -> WorkerRequest[Any]:
    """An instance whose every field holds a value naming that field."""
    return request_type(**{f.name: f"<{f.name}>" for f in fields(request_type)})  # type: ignore[call-arg]


def _call_of(request_type: type[WorkerRequest[Any]]) -> tuple[str, inspect.BoundArguments]:
    recorder = _Recorder()
    _sample(request_type).apply(recorder)  # type: ignore[arg-type]
    assert len(recorder.calls) == 1, request_type.__name__
    name, args, kwargs = recorder.calls[0]
    bound = inspect.signature(getattr(SupervisorApi, name)).bind(None, *args, **kwargs)
    return name, bound


def test_every_protocol_method_is_a_worker_request_or_answered_by_the_router() -> None:
    requested = [_call_of(t)[0] for t in REQUESTS]
    assert len(requested) == len(set(requested)), "two requests make the same call"
    assert not set(requested) & ROUTER_ANSWERS
    assert set(requested) | ROUTER_ANSWERS == protocol_members(SupervisorApi)


@pytest.mark.parametrize("request_type", REQUESTS, ids=lambda t: t.__name__)
def test_a_request_passes_each_field_as_the_parameter_of_that_name(
        request_type: type[WorkerRequest[Any]]) -> None:
    """So a parameter added to the protocol cannot be forgotten by its request."""
    name, bound = _call_of(request_type)
    passed = {k: v for k, v in bound.arguments.items() if k != "self"}
    assert passed == {f.name: f"<{f.name}>" for f in fields(request_type)}, name


def test_a_worker_answers_nothing_but_a_request(sup: Supervisor) -> None:
    with pytest.raises(SupervisorError, match="does not answer tuple"):
        answer(sup, ("repl", (UNKNOWN_SESSION, "1"), {}))


# ----- through a real worker process ----------------------------------------------------------


@pytest.fixture
def sharded(library_dir: Path, tmp_path: Path) -> Iterator[ShardedSupervisor]:
    # Its own database: a test may compare it with the in-process `sup` (on `db_path`).
    with ShardedSupervisor.open(tmp_path / "sharded.db", workers=1, library_dir=library_dir, run_root=tmp_path) as sup:
        yield sup


def test_requests_and_answers_cross_a_worker_process(sharded: ShardedSupervisor, worktree: Path) -> None:
    template = sharded.templates.create("contract")
    session = sharded.create_session(template.id, "ws", "abc123", str(worktree))
    assert session.status == "ready"
    execution = sharded.repl(session.id, "globalThis.n = 41; n + 1")
    assert (execution.status, execution.result["json"]) == ("ok", 42)
    assert sharded.run_file(session.id, "main.js").result["json"] == 42
    assert sharded.run(code="6 * 7").result["json"] == 42
    summary = sharded.runtime_summary()
    assert isinstance(summary, RuntimeSummary)
    assert summary.active_session_ids == [session.id]
    sharded.flush_images()
    assert sharded.close_session(session.id).status == "closed"


def _failure(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except BaseException as exc:  # what the caller gets, whatever it is
        return exc
    raise AssertionError("expected the call to fail")


def _described(exc: BaseException, names: dict[str, str]) -> tuple[type, Any, str, str]:
    """What a caller can see of an error, each session id replaced by the name of its role."""
    seen = (str(exc), repr(getattr(exc, "details", {})))
    for session_id, name in names.items():
        seen = (seen[0].replace(session_id, name), seen[1].replace(session_id, name))
    return type(exc), getattr(exc, "code", None), *seen


def test_errors_cross_a_worker_process_as_the_same_class_code_and_details(
        sharded: ShardedSupervisor, sup: Supervisor, worktree: Path) -> None:
    """The same bad calls on both supervisors fail the same way: a worker's error arrives in
    the router as the class, code, message and details the in-process one raises."""

    def described(s: SupervisorApi) -> list[tuple[type, Any, str, str]]:
        template = s.templates.create("errors")
        ready = s.create_session(template.id, "ws", "abc123", str(worktree)).id
        closed = s.create_session(template.id, "ws", "abc123", str(worktree)).id
        s.close_session(closed)
        calls: list[Callable[[], Any]] = [
            lambda: s.repl(ready, 42),  # not a string: VALIDATION_ERROR
            lambda: s.repl(UNKNOWN_SESSION, "1"),  # the store's SESSION_NOT_FOUND
            lambda: s.repl(closed, "1"),  # SESSION_NOT_READY
            lambda: s.run_file(ready, "../outside.js"),  # INVALID_PATH
            lambda: s.run_file(ready, "missing.js"),  # FILE_NOT_FOUND
            lambda: s.run(code="1", path="main.js"),  # VALIDATION_ERROR
            lambda: s.create_session(UNKNOWN_SESSION, "ws", "abc123", str(worktree)),
        ]
        names = {ready: "<ready>", closed: "<closed>"}
        return [_described(_failure(call), names) for call in calls]

    through_worker, in_process = described(sharded), described(sup)
    assert through_worker == in_process
    assert len({kind for kind, *_ in in_process}) >= 4  # the calls did fail in different ways
