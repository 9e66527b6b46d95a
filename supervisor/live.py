"""A live session: its host, its captured settings and its one-at-a-time lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox import Limits
from supervisor.host import SessionHost
from supervisor.modules.grants import SessionGrants


@dataclass
class LiveSession:
    id: str
    template_id: str
    worktree_path: str
    host: SessionHost
    limits: Limits
    runtime: dict[str, Any]
    # One execution at a time: acquired without waiting (busy → SESSION_BUSY, no queue).
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: bool = False
    # The state changed since the last persisted image (see durability.ImageWriter), since
    # `dirty_since` (monotonic); `pending` is a copy taken after an execution, to be stored.
    dirty: bool = False
    dirty_since: float = 0.0
    pending: tuple[Any, str | None] | None = None
    # Set while the image writer wants or holds `lock` (for a fraction of a millisecond): an
    # execution arriving then waits for it instead of answering SESSION_BUSY.
    imaging: bool = False
    last_execution_id: str | None = None
    # What its modules hold (released on close; a private database removed with the session).
    grants: SessionGrants | None = None


# How long an execution waits for the image writer's snapshot before giving up.
IMAGING_WAIT_S = 0.25


def acquire_for_execution(live: LiveSession) -> bool:
    """Take the session for an execution: at once, or after the image writer's short hold."""
    if live.lock.acquire(blocking=False):
        return True
    return live.imaging and live.lock.acquire(timeout=IMAGING_WAIT_S)
