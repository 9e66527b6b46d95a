"""The read side of the core API, answered from the store alone.

`Supervisor` and `ShardedSupervisor` both answer reads this way (the sharded one in the
router, without asking its workers), so the checks live once, here.
"""

from __future__ import annotations

from typing import Any

import store as store_mod
from store import Store
from supervisor.errors import ValidationError
from supervisor.ids import check_uuid
from vocabulary import SESSION_STATUSES

MAX_EXECUTIONS_PAGE = 1000


class StoreReads:
    store: Store

    def get_session(self, session_id: str) -> store_mod.Session:
        return self.store.get_session(check_uuid(session_id, "session_id"))

    def list_sessions(self, status: str | None = None) -> list[store_mod.Session]:
        if status is not None and status not in SESSION_STATUSES:
            raise ValidationError(f"status must be one of {sorted(SESSION_STATUSES)}",
                                  field="status")
        return self.store.list_sessions(status)

    def get_execution(self, execution_id: str) -> store_mod.Execution:
        return self.store.get_execution(check_uuid(execution_id, "execution_id"))

    def list_executions(self, session_id: str, limit: Any = 50) -> list[store_mod.Execution]:
        session_id = check_uuid(session_id, "session_id")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EXECUTIONS_PAGE:
            raise ValidationError(f"limit must be an integer from 1 to {MAX_EXECUTIONS_PAGE}", field="limit")
        self.store.get_session(session_id)
        return self.store.list_executions(session_id, limit=limit)

    def list_events(self, execution_id: str, after_seq: Any = 0,
                    limit: int | None = None) -> list[store_mod.Event]:
        """Events after `after_seq`; at most `limit` of them (a page), or all."""
        execution_id = check_uuid(execution_id, "execution_id")
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise ValidationError("after_seq must be a non-negative integer", field="after_seq")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValidationError("limit must be a positive integer", field="limit")
        return self.store.list_events(execution_id, after_seq=after_seq, limit=limit)

    def execution_progress(self, execution_ids: list[str]) -> dict[str, store_mod.ExecutionProgress]:
        """How far each execution that exists has got (ids that are not UUIDs are left out)."""
        wanted = []
        for execution_id in execution_ids:
            try:
                wanted.append(check_uuid(execution_id, "execution_id"))
            except ValidationError:
                continue
        return self.store.execution_progress(wanted)
