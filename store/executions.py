"""Executions and their event streams.

The write paths hold the pipeline's invariants (DESIGN.md) at the last line before disk:
* events of an execution are numbered 1..n with no gap and no duplicate;
* events are appended only while the execution is `running`;
* the terminal event (`value`, `exception`, `limit`) is written only by `finish_execution`,
  in the same transaction as the final status, as the last event, and matches the status;
  so a finished execution has exactly one terminal event and a running one has none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from vocabulary import EVENT_TYPES, EXECUTION_KINDS, FINISHED_STATUSES, TERMINAL_EVENT_TYPES, TERMINAL_FOR_STATUS

from .database import Database, fetch_dict, unique_violation
from .encoding import (
    Clock,
    dump_json,
    dump_json_or_none,
    format_ts,
    id_or_new,
    load_json,
    load_json_or_none,
    parse_ts,
    parse_ts_or_none,
    require_dict,
    require_member,
    value_column,
)
from .errors import (
    DuplicateId,
    EventSequenceError,
    ExecutionNotFound,
    ExecutionNotRunning,
    InvalidValue,
    InvariantViolation,
    SessionBusy,
    SessionNotFound,
)
from .records import Event, Execution, ExecutionProgress, NewEvent

# Bound parameters per query, well under SQLite's limit (32766 since 3.32, 999 before).
_IDS_PER_QUERY = 500

_INSERT_EVENT = (
    "INSERT INTO events (execution_id, seq, ts, type, payload) VALUES (?, ?, ?, ?, ?)"
)
# The streaming path: one statement per event that inserts only if the execution is running
# and the seq is the next one. Each row of a batch sees the rows before it, so a contiguous
# batch passes and anything else inserts fewer rows than given.
_GUARDED_INSERT_EVENT = (
    "INSERT INTO events (execution_id, seq, ts, type, payload)"
    " SELECT ?1, ?2, ?3, ?4, ?5"
    " WHERE (SELECT status FROM executions WHERE id = ?1) = 'running'"
    " AND ?2 = 1 + coalesce((SELECT max(seq) FROM events WHERE execution_id = ?1), 0)"
)
# One statement for both checks every append needs: the row's status and the last seq.
_STATUS_AND_LAST_SEQ = (
    "SELECT status, (SELECT max(seq) FROM events WHERE execution_id = ?1)"
    " FROM executions WHERE id = ?1"
)


def execution_from_row(row: dict[str, Any]) -> Execution:
    return Execution(
        id=row["id"],
        session_id=row["session_id"],
        kind=row["kind"],
        input=row["input"],
        path=row["path"],
        args=load_json(row["args"]),
        env=load_json(row["env"]),
        status=row["status"],
        started_at=parse_ts(row["started_at"]),
        ended_at=parse_ts_or_none(row["ended_at"]),
        result=load_json_or_none(row["result"]),
        error=load_json_or_none(row["error"]),
        metrics=load_json(row["metrics"]),
        session_state=load_json_or_none(row["session_state"]),
    )


def _event(row: dict[str, Any]) -> Event:
    return Event(
        execution_id=row["execution_id"],
        seq=row["seq"],
        ts=parse_ts(row["ts"]),
        type=row["type"],
        payload=load_json(row["payload"]),
    )


def _encode_events(
    execution_id: str, events: Sequence[NewEvent], now: datetime, *, streaming: bool
) -> list[tuple[str, int, str, str, str]]:
    """Validate and encode outside the transaction, so the write lock is held briefly.

    `streaming`: these come through append_events, where terminal events are refused.
    """
    rows: list[tuple[str, int, str, str, str]] = []
    stamp = None
    for event in events:
        type_ = event.type
        if type_ not in EVENT_TYPES:
            raise InvalidValue(f"unknown event type {type_!r}")
        if streaming and type_ in TERMINAL_EVENT_TYPES:
            raise InvariantViolation(
                f"a {type_} event is terminal: it is written by finish_execution"
            )
        seq = event.seq
        if type(seq) is not int:  # bool is an int subclass: excluded on purpose
            raise InvalidValue(f"event seq must be an int, got {seq!r}")
        if type(event.payload) is not dict:
            raise InvalidValue("event payload must be a dict")
        if event.ts is None:
            if stamp is None:
                stamp = format_ts(now)
            ts = stamp
        else:
            ts = format_ts(event.ts)
        # The value event carries the same description as the row's result: fitted the same way.
        if type_ == "value":
            _, text = value_column(event.payload, "payload")
        else:
            text = dump_json(event.payload, "payload")
        rows.append((execution_id, seq, ts, type_, text))
    return rows


def _check_sequence(execution_id: str, rows: list[tuple[Any, ...]], last_seq: int) -> None:
    expected = last_seq + 1
    for row in rows:
        if row[1] != expected:
            raise EventSequenceError(
                f"execution {execution_id}: event seq {row[1]} where {expected} was expected"
            )
        expected += 1


def _running_last_seq(conn: sqlite3.Connection, execution_id: str, op: str) -> int:
    found = conn.execute(_STATUS_AND_LAST_SEQ, (execution_id,)).fetchone()
    if found is None:
        raise ExecutionNotFound(f"execution {execution_id} not found")
    status, last_seq = found
    if status != "running":
        raise ExecutionNotRunning(f"{op}: execution {execution_id} is already {status}")
    return last_seq or 0


def _insert_events(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    if len(rows) == 1:
        conn.execute(_INSERT_EVENT, rows[0])
    elif rows:
        conn.executemany(_INSERT_EVENT, rows)


def _check_outcome(
    status: str,
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
    events: Sequence[NewEvent],
) -> None:
    require_member(status, FINISHED_STATUSES, "final execution status")
    if status == "ok":
        if result is None or error is not None:
            raise InvariantViolation("status ok needs a result and no error")
    elif error is None or result is not None:
        raise InvariantViolation(f"status {status} needs an error and no result")
    if result is not None:
        require_dict(result, "result")
    if error is not None:
        require_dict(error, "error")
    terminal = [e for e in events if e.type in TERMINAL_EVENT_TYPES]
    if len(terminal) != 1 or events[-1] is not terminal[0]:
        raise InvariantViolation(
            "finish_execution needs exactly one terminal event (value, exception or limit),"
            f" as the last event; got {[e.type for e in events]}"
        )
    allowed = TERMINAL_FOR_STATUS[status]
    if terminal[0].type not in allowed:
        raise InvariantViolation(
            f"status {status} must end with a {'/'.join(sorted(allowed))} event,"
            f" not {terminal[0].type}"
        )


class ExecutionsMixin:
    _db: Database
    _clock: Clock

    def create_execution(
        self,
        kind: str,
        *,
        session_id: str | None = None,
        input: str | None = None,
        path: str | None = None,
        args: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        id: str | None = None,
        started_at: datetime | None = None,
        first_events: Sequence[NewEvent] = (),
    ) -> Execution:
        """Create an execution in status `running` (session_id None: a one-shot run).

        `first_events` (seq 1..n, never terminal) are written in the same transaction: what is
        known before the script starts (its `input_echo`) then exists exactly when the row
        does, whatever happens to the process afterwards.
        """
        require_member(kind, EXECUTION_KINDS, "execution kind")
        execution_id = id_or_new(id, "execution id")
        args = {} if args is None else require_dict(args, "args")
        env = {} if env is None else require_dict(env, "env")
        for value, what in ((input, "input"), (path, "path")):
            if value is not None and not isinstance(value, str):
                raise InvalidValue(f"{what} must be a string or None")
        now = started_at if started_at is not None else self._clock()
        started = format_ts(now)
        event_rows = _encode_events(execution_id, first_events, now, streaming=True)
        _check_sequence(execution_id, event_rows, 0)
        params = (
            execution_id,
            session_id,
            kind,
            input,
            path,
            dump_json(args, "args"),
            dump_json(env, "env"),
            started,
        )
        with self._db.write("create_execution") as conn:
            try:
                conn.execute(
                    "INSERT INTO executions (id, session_id, kind, input, path, args, env,"
                    " status, started_at, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, '{}')",
                    params,
                )
            except sqlite3.IntegrityError as exc:
                columns = unique_violation(exc)
                if columns == "executions.id":
                    raise DuplicateId(f"execution id {execution_id} already used") from None
                if columns == "executions.session_id":
                    raise SessionBusy(f"session {session_id} already has a running execution") from None
                if getattr(exc, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_FOREIGNKEY":
                    # session_id is the only foreign key of executions.
                    raise SessionNotFound(f"session {session_id} not found") from None
                raise
            _insert_events(conn, event_rows)
        return Execution(
            id=execution_id,
            session_id=session_id,
            kind=kind,
            input=input,
            path=path,
            args=args,
            env=env,
            status="running",
            started_at=parse_ts(started),
            ended_at=None,
            result=None,
            error=None,
            metrics={},
            session_state=None,
        )

    def append_events(self, execution_id: str, events: Sequence[NewEvent]) -> None:
        """Append streamed events of a running execution (never its terminal event).

        `events[0].seq` must follow the last stored seq; the batch must be contiguous.
        """
        if not events:
            return
        rows = _encode_events(execution_id, events, self._clock(), streaming=True)
        with self._db.write("append_events") as conn:
            if len(rows) == 1:
                inserted = conn.execute(_GUARDED_INSERT_EVENT, rows[0]).rowcount
            else:
                inserted = conn.executemany(_GUARDED_INSERT_EVENT, rows).rowcount
            if inserted != len(rows):
                # Slow path, only on refusal: find out why, raise, and roll back.
                last_seq = _running_last_seq(conn, execution_id, "append_events")
                _check_sequence(execution_id, rows, last_seq - inserted)
                raise InvariantViolation(f"append_events refused for execution {execution_id}")

    def finish_execution(
        self,
        execution_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        session_state: dict[str, Any] | None = None,
        remaining_events: Sequence[NewEvent] = (),
        ended_at: datetime | None = None,
    ) -> Execution:
        """Finish a running execution and write its remaining events, in one transaction.

        `remaining_events` must end with the terminal event matching `status`.
        """
        _check_outcome(status, result, error, remaining_events)
        # Whatever the engine sent, the row stays readable: a `json` too deep for the store's
        # depth contract, or not strict JSON, is left out (the value's preview stays).
        result_text = None
        if result is not None:
            result, result_text = value_column(result, "result")
        metrics = {} if metrics is None else require_dict(metrics, "metrics")
        if session_state is not None:
            require_dict(session_state, "session_state")
        now = self._clock()
        rows = _encode_events(execution_id, remaining_events, now, streaming=False)
        update = (
            status,
            format_ts(ended_at if ended_at is not None else now),
            result_text,
            dump_json_or_none(error, "error"),
            dump_json(metrics, "metrics"),
            dump_json_or_none(session_state, "session_state"),
            execution_id,
        )
        with self._db.write("finish_execution") as conn:
            last_seq = _running_last_seq(conn, execution_id, "finish_execution")
            _check_sequence(execution_id, rows, last_seq)
            _insert_events(conn, rows)
            conn.execute(
                "UPDATE executions SET status = ?, ended_at = ?, result = ?, error = ?,"
                " metrics = ?, session_state = ? WHERE id = ?",
                update,
            )
            row = fetch_dict(conn, "SELECT * FROM executions WHERE id = ?", (execution_id,))
        assert row is not None  # read under the write lock, after the running check
        return execution_from_row(row)

    def get_execution(self, execution_id: str) -> Execution:
        with self._db.read("get_execution") as db:
            rows = list(db.query("SELECT * FROM executions WHERE id = ?", [execution_id]))
        if not rows:
            raise ExecutionNotFound(f"execution {execution_id} not found")
        return execution_from_row(rows[0])

    def list_executions(
        self, session_id: str, *, limit: int = 50, before: str | None = None
    ) -> list[Execution]:
        """A session's executions, newest first.

        `before` (an execution id) is a cursor: only executions older than that one.
        """
        if limit < 0:
            raise InvalidValue("limit must be >= 0")
        sql = "SELECT * FROM executions WHERE session_id = ?"
        params: list[Any] = [session_id]
        with self._db.read("list_executions") as db:
            if before is not None:
                cursor = list(
                    db.query(
                        "SELECT started_at, rowid AS rid FROM executions"
                        " WHERE id = ? AND session_id = ?",
                        [before, session_id],
                    )
                )
                if not cursor:
                    raise ExecutionNotFound(f"execution {before} not found in session {session_id}")
                sql += " AND (started_at < ? OR (started_at = ? AND rowid < ?))"
                params += [cursor[0]["started_at"], cursor[0]["started_at"], cursor[0]["rid"]]
            sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
            params.append(limit)
            rows = list(db.query(sql, params))
            if not rows and before is None and not list(
                    db.query("SELECT 1 AS found FROM sessions WHERE id = ?", [session_id])):
                raise SessionNotFound(f"session {session_id} not found")
        return [execution_from_row(row) for row in rows]

    def execution_progress(self, execution_ids: Sequence[str]) -> dict[str, ExecutionProgress]:
        """Status and last event seq of each execution that exists, in one read: what a
        follower of many executions' events needs to know whether to read again."""
        progress: dict[str, ExecutionProgress] = {}
        ids = list(dict.fromkeys(execution_ids))
        with self._db.read("execution_progress") as db:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start:start + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                for row in db.query(
                        "SELECT id, status, (SELECT max(seq) FROM events WHERE execution_id = executions.id)"
                        f" AS last_seq FROM executions WHERE id IN ({marks})", chunk):
                    progress[row["id"]] = ExecutionProgress(row["status"], row["last_seq"] or 0)
        return progress

    def list_events(
        self, execution_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Events with seq > after_seq, in seq order (the cursor of `--follow`)."""
        sql = "SELECT * FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq"
        params: list[Any] = [execution_id, after_seq]
        if limit is not None:
            if limit < 0:
                raise InvalidValue("limit must be >= 0")
            sql += " LIMIT ?"
            params.append(limit)
        with self._db.read("list_events") as db:
            rows = list(db.query(sql, params))
            if not rows and not list(db.query("SELECT 1 AS found FROM executions WHERE id = ?", [execution_id])):
                raise ExecutionNotFound(f"execution {execution_id} not found")
        return [_event(row) for row in rows]
