"""A live session: its host, its captured settings and its one-at-a-time lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox import Limits
from supervisor.host import SessionHost


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
    # The state changed since the last persisted image (see durability.ImageWriter).
    dirty: bool = False
    last_execution_id: str | None = None
