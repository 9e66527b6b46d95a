"""Random sequences of operations against the store, compared with an in-memory model."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from store import (
    CapabilityExists,
    ExecutionNotRunning,
    InvalidTransition,
    ModuleExists,
    NewEvent,
    SessionBusy,
    Store,
    TemplateExists,
    TemplateNotFound,
)

VALUE = {"type": "number", "preview": "1"}
ERROR = {"kind": "exception", "name": "Error", "message": "e"}
TERMINAL = {"ok": "value", "error": "exception", "timeout": "limit"}
PICK = st.integers(min_value=0, max_value=10**6)


class FrozenClock:
    """Time moves only when a rule says so: most rows share a timestamp with others, so
    every ordering must come from the tie-break, not from the clock."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class StoreVersusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="store-model-")
        self.clock = FrozenClock()
        self.store = Store.open(Path(self.dir) / "model.db", clock=self.clock)
        self.templates: dict[str, dict] = {}  # live ones, in creation order
        self.template_ids: list[str] = []  # every id ever created, deleted ones too
        self.sessions: dict[str, dict] = {}
        self.executions: dict[str, dict] = {}  # in creation order

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers -----------------------------------------------------------------------

    def _pick(self, items, pick):
        items = list(items)
        return items[pick % len(items)]

    def _running_in(self, session_id: str) -> bool:
        return any(e["session_id"] == session_id and e["status"] == "running"
                   for e in self.executions.values())

    # --- templates -------------------------------------------------------------------------

    @rule(name=st.sampled_from(["a", "b", "c", "d"]))
    def create_template(self, name: str) -> None:
        if any(t["name"] == name for t in self.templates.values()):
            with pytest.raises(TemplateExists):
                self.store.create_template(name)
            return
        created = self.store.create_template(name)
        self.templates[created.id] = {"name": name, "modules": set(), "caps": set()}
        self.template_ids.append(created.id)

    @precondition(lambda self: self.template_ids)
    @rule(pick=PICK)
    def delete_template(self, pick: int) -> None:
        template_id = self._pick(self.template_ids, pick)
        if template_id not in self.templates:
            with pytest.raises(TemplateNotFound):
                self.store.delete_template(template_id)
            return
        self.store.delete_template(template_id)
        del self.templates[template_id]

    @precondition(lambda self: self.template_ids)
    @rule(pick=PICK, name=st.sampled_from(["path", "url"]), remove=st.booleans())
    def module(self, pick: int, name: str, remove: bool) -> None:
        template_id = self._pick(self.template_ids, pick)
        model = self.templates.get(template_id)
        if model is None:
            with pytest.raises(TemplateNotFound):
                self.store.add_module(template_id, name)
        elif remove:
            assert self.store.remove_module(template_id, name) == (name in model["modules"])
            model["modules"].discard(name)
        elif name in model["modules"]:
            with pytest.raises(ModuleExists):
                self.store.add_module(template_id, name)
        else:
            self.store.add_module(template_id, name)
            model["modules"].add(name)

    @precondition(lambda self: self.templates)
    @rule(pick=PICK, kind=st.sampled_from(["fs", "net"]), name=st.sampled_from(["r", "w"]))
    def capability(self, pick: int, kind: str, name: str) -> None:
        template_id = self._pick(self.templates, pick)
        caps = self.templates[template_id]["caps"]
        if (kind, name) in caps:
            with pytest.raises(CapabilityExists):
                self.store.add_capability(template_id, kind, name)
        else:
            self.store.add_capability(template_id, kind, name)
            caps.add((kind, name))

    # --- sessions ------------------------------------------------------------------------

    @precondition(lambda self: self.template_ids)
    @rule(pick=PICK, status=st.sampled_from(["starting", "ready"]))
    def create_session(self, pick: int, status: str) -> None:
        template_id = self._pick(self.template_ids, pick)
        if template_id not in self.templates:
            with pytest.raises(TemplateNotFound):
                self.store.create_session(template_id, "w", "o", "/p", status=status)
            return
        session = self.store.create_session(template_id, "w", "o", "/p", status=status)
        self.sessions[session.id] = {"template_id": template_id, "status": status}

    @precondition(lambda self: self.sessions)
    @rule(pick=PICK, status=st.sampled_from(["ready", "crashed", "closed"]))
    def set_session_status(self, pick: int, status: str) -> None:
        session_id = self._pick(self.sessions, pick)
        model = self.sessions[session_id]
        if model["status"] == "closed" and status != "closed":
            with pytest.raises(InvalidTransition):
                self.store.set_session_status(session_id, status)
            return
        assert self.store.set_session_status(session_id, status).status == status
        model["status"] = status

    # --- executions ------------------------------------------------------------------------

    @rule(pick=PICK, in_session=st.booleans())
    def create_execution(self, pick: int, in_session: bool) -> None:
        session_id = self._pick(self.sessions, pick) if in_session and self.sessions else None
        if session_id is not None and self._running_in(session_id):
            with pytest.raises(SessionBusy):
                self.store.create_execution("repl", session_id=session_id, input="x")
            return
        execution = self.store.create_execution("repl" if session_id else "run",
                                                session_id=session_id, input="x")
        self.executions[execution.id] = {"session_id": session_id, "status": "running",
                                         "events": [], "started_at": execution.started_at}

    def _ids(self, running: bool) -> list[str]:
        return [i for i, e in self.executions.items() if (e["status"] == "running") == running]

    def _finish(self, execution_id: str, status: str) -> None:
        model = self.executions[execution_id]
        terminal = NewEvent(len(model["events"]) + 1, TERMINAL[status], {})
        outcome = {"result": VALUE} if status == "ok" else {"error": ERROR}
        if model["status"] != "running":
            with pytest.raises(ExecutionNotRunning):
                self.store.finish_execution(execution_id, status, remaining_events=[terminal],
                                            **outcome)
            return
        self.store.finish_execution(execution_id, status, remaining_events=[terminal], **outcome)
        model["status"] = status
        model["events"].append(TERMINAL[status])

    def _append(self, execution_id: str, count: int) -> None:
        model = self.executions[execution_id]
        first = len(model["events"]) + 1
        batch = [NewEvent(first + i, "console", {"n": first + i}) for i in range(count)]
        if model["status"] != "running":
            with pytest.raises(ExecutionNotRunning):
                self.store.append_events(execution_id, batch)
            return
        self.store.append_events(execution_id, batch)
        model["events"] += ["console"] * count

    @precondition(lambda self: self._ids(running=True))
    @rule(pick=PICK, count=st.integers(min_value=1, max_value=3))
    def append_events(self, pick: int, count: int) -> None:
        self._append(self._pick(self._ids(running=True), pick), count)

    @precondition(lambda self: self._ids(running=True))
    @rule(pick=PICK, status=st.sampled_from(sorted(TERMINAL)))
    def finish_execution(self, pick: int, status: str) -> None:
        self._finish(self._pick(self._ids(running=True), pick), status)

    @precondition(lambda self: self._ids(running=False))
    @rule(pick=PICK, status=st.sampled_from(sorted(TERMINAL)), append=st.booleans())
    def write_to_a_finished_execution(self, pick: int, status: str, append: bool) -> None:
        execution_id = self._pick(self._ids(running=False), pick)
        if append:
            self._append(execution_id, 1)
        else:
            self._finish(execution_id, status)

    @rule(pick=PICK, in_session=st.booleans(), status=st.sampled_from(sorted(TERMINAL)),
          count=st.integers(min_value=0, max_value=2))
    def whole_execution(self, pick: int, in_session: bool, status: str, count: int) -> None:
        """Spawn, stream, finish: the pipeline's usual path, many in a row per session."""
        before = set(self.executions)
        self.create_execution(pick, in_session)
        for created in set(self.executions) - before:  # none if the session was busy
            if count:
                self._append(created, count)
            self._finish(created, status)

    # --- maintenance ---------------------------------------------------------------------

    @rule()
    def reconcile(self) -> None:
        report = self.store.reconcile()
        running = [i for i, e in self.executions.items() if e["status"] == "running"]
        starting = [i for i, s in self.sessions.items() if s["status"] == "starting"]
        assert sorted(report.crashed_executions) == sorted(running)
        assert sorted(report.crashed_sessions) == sorted(starting)
        for execution_id in running:
            self.executions[execution_id]["status"] = "crashed"
            self.executions[execution_id]["events"].append("exception")
        for session_id in starting:
            self.sessions[session_id]["status"] = "crashed"

    @rule(minutes=st.integers(min_value=0, max_value=3))
    def time_passes(self, minutes: int) -> None:
        self.clock.now += timedelta(minutes=minutes) if minutes else timedelta(microseconds=1)

    @rule(keep=st.none() | st.integers(min_value=0, max_value=3),
          age=st.none() | st.integers(min_value=0, max_value=4),
          batch=st.integers(min_value=1, max_value=4))
    def prune(self, keep: int | None, age: int | None, batch: int) -> None:
        doomed = set()
        if age is not None:
            cutoff = self.clock.now - timedelta(minutes=age)
            doomed |= {i for i, e in self.executions.items()
                       if e["status"] != "running" and e["started_at"] < cutoff}
        if keep is not None:
            groups: dict[str | None, list[str]] = {}
            for execution_id, model in self.executions.items():
                groups.setdefault(model["session_id"], []).append(execution_id)
            for ids in groups.values():
                doomed |= {i for i in ids[::-1][keep:] if self.executions[i]["status"] != "running"}
        report = self.store.prune(older_than=None if age is None else timedelta(minutes=age),
                                  keep_per_session=keep, batch_size=batch)
        assert report.executions == len(doomed)
        assert report.events == sum(len(self.executions[i]["events"]) for i in doomed)
        for execution_id in doomed:
            del self.executions[execution_id]

    # --- what the store says must be what the model says --------------------------------

    @invariant()
    def templates_match(self) -> None:
        listed = self.store.list_templates()
        assert [t.id for t in listed] == list(self.templates)[::-1]
        for template_id, model in self.templates.items():
            assert {m.name for m in self.store.list_modules(template_id)} == model["modules"]
            caps = {(c.kind, c.name) for c in self.store.list_capabilities(template_id)}
            assert caps == model["caps"]

    @invariant()
    def sessions_and_executions_match(self) -> None:
        for session_id, model in self.sessions.items():
            assert self.store.get_session(session_id).status == model["status"]
            expected = [i for i, e in self.executions.items() if e["session_id"] == session_id]
            listed = self.store.list_executions(session_id, limit=1000)
            assert [e.id for e in listed] == expected[::-1]
        for execution_id, model in self.executions.items():
            assert self.store.get_execution(execution_id).status == model["status"]
            events = self.store.list_events(execution_id)
            assert [e.type for e in events] == model["events"]
            assert [e.seq for e in events] == list(range(1, len(events) + 1))


StoreVersusModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    database=None,  # no example database left in the checkout
    suppress_health_check=[HealthCheck.too_slow],
)
test_store_against_model = StoreVersusModel.TestCase
