"""One Store shared by the threads of a process; and the store's import boundary."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from store import NewEvent, Store
from vocabulary import TERMINAL_EVENT_TYPES

VALUE = {"type": "number", "preview": "1"}


def test_threads_share_one_store(store: Store, template, db_path, check_consistency) -> None:
    sessions = [store.create_session(template.id, "w", "o", "/p", status="ready") for _ in range(4)]
    errors: list[BaseException] = []
    stop = threading.Event()
    finished: list[str] = []

    def writer(session_id: str) -> None:
        try:
            for _ in range(15):
                execution = store.create_execution("repl", session_id=session_id, input="x")
                for seq in range(1, 21):  # one at a time, as a live stream
                    store.append_events(execution.id, [NewEvent(seq, "console", {"n": seq})])
                store.finish_execution(execution.id, "ok", result=VALUE,
                                       remaining_events=[NewEvent(21, "value", VALUE)])
                finished.append(execution.id)
        except BaseException as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                for session in sessions:
                    for execution in store.list_executions(session.id, limit=3):
                        events = store.list_events(execution.id)
                        assert [e.seq for e in events] == list(range(1, len(events) + 1))
                        if execution.status == "ok":
                            assert len(events) == 21 and events[-1].type in TERMINAL_EVENT_TYPES
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(s.id,)) for s in sessions]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert errors == []
    assert len(finished) == 60
    assert sum(len(store.list_executions(s.id)) for s in sessions) == 60
    assert check_consistency(db_path) == []


def test_store_never_imports_sandbox_or_supervisor() -> None:
    package = Path(__file__).resolve().parents[2] / "store"
    offenders = []
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{source.name}: {n}" for n in names
                          if n.split(".")[0] in ("sandbox", "supervisor")]
    assert list(package.glob("*.py")), "store package not found"
    assert offenders == []
