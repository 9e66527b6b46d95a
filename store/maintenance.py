"""Housekeeping: reconciling after a crash, and pruning old history in bounded batches."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import structlog

from .database import Database
from .encoding import Clock, dump_json, format_ts
from .errors import InvalidValue
from .records import PruneReport, ReconcileReport

log = structlog.get_logger("store.maintenance")

DAEMON_STOPPED_ERROR: dict[str, Any] = {
    "kind": "internal",
    "name": "DaemonStopped",
    "message": "the daemon stopped while this execution was running",
}
SESSION_STOPPED_MESSAGE = "the daemon stopped while this session was starting"

# Images are large (hundreds of KB to MB each): fewer per transaction than other rows.
_IMAGE_BATCH_CAP = 50
# Candidate executions are looked up (a scan, for the per-session count) this many batches
# at a time, so a large backlog does not cost one scan per batch.
_CANDIDATE_PAGES = 20

_IDS = "SELECT value FROM json_each(?)"


class MaintenanceMixin:
    _db: Database
    _clock: Clock

    def reconcile(self) -> ReconcileReport:
        """Settle what a dead daemon left behind; call once at daemon start, before serving.

        Every `running` execution becomes `crashed` with a DaemonStopped error and gets a
        terminal `exception` event after its last one (so "exactly one terminal event per
        finished execution" holds); its metrics stay as they were (unknown) and its
        session_state stays null: restoring the session is the supervisor's call. Every
        `starting` session becomes `crashed`. One transaction: all of it or nothing.

        Never call it while another process is running executions on the same file: it
        cannot tell a dead daemon's rows from a live one's.
        """
        now = format_ts(self._clock())
        error_json = dump_json(DAEMON_STOPPED_ERROR, "error")
        payload_json = dump_json(
            {"name": DAEMON_STOPPED_ERROR["name"], "message": DAEMON_STOPPED_ERROR["message"]},
            "payload",
        )
        with self._db.write("reconcile") as conn:
            running = conn.execute(
                "SELECT id, (SELECT max(seq) FROM events WHERE execution_id = e.id)"
                " FROM executions AS e WHERE status = 'running' ORDER BY rowid"
            ).fetchall()
            for execution_id, last_seq in running:
                conn.execute(
                    "INSERT INTO events (execution_id, seq, ts, type, payload)"
                    " VALUES (?, ?, ?, 'exception', ?)",
                    (execution_id, (last_seq or 0) + 1, now, payload_json),
                )
                conn.execute(
                    "UPDATE executions SET status = 'crashed', ended_at = ?, error = ?"
                    " WHERE id = ?",
                    (now, error_json, execution_id),
                )
            starting = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM sessions WHERE status = 'starting' ORDER BY rowid"
                )
            ]
            conn.execute(
                "UPDATE sessions SET status = 'crashed', last_error = ? WHERE status = 'starting'",
                (SESSION_STOPPED_MESSAGE,),
            )
        report = ReconcileReport(
            crashed_executions=[row[0] for row in running], crashed_sessions=starting
        )
        if report.changed:
            log.warning(
                "store.reconciled",
                crashed_executions=report.crashed_executions,
                crashed_sessions=report.crashed_sessions,
            )
        return report

    def prune(
        self,
        *,
        older_than: timedelta | None = None,
        keep_per_session: int | None = None,
        batch_size: int = 500,
    ) -> PruneReport:
        """Delete finished executions (with their events) and images that are too old or
        beyond the newest `keep_per_session` of their session.

        Each batch is its own short transaction touching at most `batch_size` rows, so
        writers streaming events wait at most one batch. A `running` execution is never
        pruned; the newest image of a session is always kept. Session-less (one-shot)
        executions count as one group for `keep_per_session`. If a batch fails, the batches
        before it stay committed and the error is raised.
        """
        if older_than is not None and older_than < timedelta(0):
            raise InvalidValue("older_than must not be negative")
        if keep_per_session is not None and keep_per_session < 0:
            raise InvalidValue("keep_per_session must be >= 0")
        if batch_size < 1:
            raise InvalidValue("batch_size must be >= 1")
        cutoff = None if older_than is None else format_ts(self._clock() - older_than)
        executions = events = images = batches = 0
        if cutoff is None and keep_per_session is None:
            return PruneReport(0, 0, 0, 0)

        while True:
            candidates = self._prune_candidates(
                cutoff, keep_per_session, batch_size * _CANDIDATE_PAGES
            )
            if not candidates:
                break
            for group in self._prune_groups(candidates, batch_size):
                deleted = self._prune_executions(group, batch_size)
                executions += deleted[0]
                events += deleted[1]
                batches += deleted[2]

        image_batch = min(batch_size, _IMAGE_BATCH_CAP)
        while True:
            image_ids = self._prune_image_candidates(cutoff, keep_per_session, image_batch)
            if not image_ids:
                break
            with self._db.write("prune") as conn:
                images += conn.execute(
                    f"DELETE FROM images WHERE id IN ({_IDS})", (json.dumps(image_ids),)
                ).rowcount
            batches += 1

        report = PruneReport(executions, events, images, batches)
        if executions or images:
            log.info(
                "store.pruned",
                executions=executions,
                events=events,
                images=images,
                batches=batches,
            )
        return report

    def _prune_groups(self, candidates: list[str], batch_size: int) -> list[list[str]]:
        """Split candidates into groups whose events fit in one batch, so most executions
        vanish whole in one transaction; one with more events than a batch is a group alone.
        """
        counts: dict[str, int] = {}
        with self._db.read("prune") as db:
            for start in range(0, len(candidates), batch_size):
                chunk = json.dumps(candidates[start : start + batch_size])
                for row in db.query(
                    f"SELECT execution_id, count(*) AS n FROM events"
                    f" WHERE execution_id IN ({_IDS}) GROUP BY execution_id",
                    [chunk],
                ):
                    counts[row["execution_id"]] = row["n"]
        groups: list[list[str]] = []
        current: list[str] = []
        weight = 0
        for execution_id in candidates:
            # An execution row is one more row to delete besides its events.
            cost = counts.get(execution_id, 0) + 1
            if current and (weight + cost > batch_size or len(current) >= batch_size):
                groups.append(current)
                current, weight = [], 0
            current.append(execution_id)
            weight += cost
        if current:
            groups.append(current)
        return groups

    def _prune_executions(self, group: list[str], batch_size: int) -> tuple[int, int, int]:
        """Delete a group of finished executions with their events; returns
        (executions, events, transactions). A group over the batch size (one chatty
        execution) loses its events oldest first over several transactions, and its row
        with the last of them: meanwhile a reader sees the tail of its stream.
        """
        ids = json.dumps(group)
        # Never a running execution's events, even if a caller raced us into a bad list.
        finished = f"SELECT id FROM executions WHERE id IN ({_IDS}) AND status != 'running'"
        executions = events = transactions = 0
        while True:
            with self._db.write("prune") as conn:
                deleted_events = conn.execute(
                    "DELETE FROM events WHERE (execution_id, seq) IN"
                    " (SELECT execution_id, seq FROM events"
                    f"  WHERE execution_id IN ({finished}) LIMIT ?)",
                    (ids, batch_size),
                ).rowcount
                done = deleted_events < batch_size
                deleted_rows = 0
                if done:
                    deleted_rows = conn.execute(
                        f"DELETE FROM executions WHERE id IN ({finished})", (ids,)
                    ).rowcount
            events += deleted_events
            executions += deleted_rows
            transactions += 1
            if done:
                return executions, events, transactions

    def _prune_candidates(
        self, cutoff: str | None, keep_per_session: int | None, limit: int
    ) -> list[str]:
        # Read outside the write lock: the scan for per-session ranks must not stall writers.
        # A candidate is finished, and a finished execution never runs again, so the list
        # stays valid until it is deleted (the delete re-checks the status anyway).
        found: list[str] = []
        with self._db.read("prune") as db:
            if cutoff is not None:
                found += [
                    row["id"]
                    for row in db.query(
                        "SELECT id FROM executions WHERE started_at < ? AND status != 'running'"
                        " ORDER BY started_at LIMIT ?",
                        [cutoff, limit],
                    )
                ]
            if keep_per_session is not None and len(found) < limit:
                seen = set(found)
                for row in db.query(
                    "SELECT id FROM (SELECT id, status, row_number() OVER ("
                    "  PARTITION BY session_id ORDER BY started_at DESC, rowid DESC) AS rank"
                    " FROM executions) WHERE rank > ? AND status != 'running' LIMIT ?",
                    [keep_per_session, limit],
                ):
                    if row["id"] not in seen:
                        found.append(row["id"])
        return found[:limit]

    def _prune_image_candidates(
        self, cutoff: str | None, keep_per_session: int | None, limit: int
    ) -> list[str]:
        conditions = []
        params: list[Any] = []
        if cutoff is not None:
            conditions.append("created_at < ?")
            params.append(cutoff)
        if keep_per_session is not None:
            conditions.append("rank > ?")
            params.append(keep_per_session)
        with self._db.read("prune") as db:
            rows = db.query(
                "SELECT id FROM (SELECT id, created_at, row_number() OVER ("
                "  PARTITION BY session_id ORDER BY created_at DESC, rowid DESC) AS rank"
                " FROM images)"
                f" WHERE rank > 1 AND ({' OR '.join(conditions)}) LIMIT ?",
                [*params, limit],
            )
            return [row["id"] for row in rows]
