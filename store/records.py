"""Plain records the store returns. The closed vocabularies it accepts (statuses, kinds, event
types) are the `vocabulary` package's.

Timestamps are timezone-aware `datetime`s in UTC with microseconds; JSON columns come back as
`dict`s. Records are frozen: a record is a copy of a row at read time, not a live handle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    name: str
    engine: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TemplateSettings:
    template_id: str
    limits: dict[str, Any]
    runtime: dict[str, Any]
    resolver: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Capability:
    id: str
    template_id: str
    kind: str
    name: str
    enabled: bool
    config: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StartupFile:
    id: str
    template_id: str
    path: str
    order_index: int
    mode: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TemplateModule:
    template_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TemplateLibrary:
    template_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TemplateDetail:
    """A template and everything hanging off it, read from one snapshot."""

    template: Template
    settings: TemplateSettings
    capabilities: list[Capability]
    startup_files: list[StartupFile]
    modules: list[TemplateModule]
    libraries: list[TemplateLibrary]


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    # Plain data, not a foreign key: a session outlives the template it was made from.
    template_id: str
    workspace_id: str
    base_commit_oid: str
    worktree_path: str
    status: str
    # The template settings captured at spawn ({"limits", "runtime", "resolver"}), so later
    # edits of the template never change a live session's limits.
    settings: dict[str, Any]
    created_at: datetime
    closed_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    session_id: str | None  # None for a one-shot `run`
    kind: str
    input: str | None
    path: str | None
    args: dict[str, Any]
    env: dict[str, Any]
    status: str
    started_at: datetime
    ended_at: datetime | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    metrics: dict[str, Any]
    # {"state": "kept"} or {"state": "rolled_back", "checkpoint_execution_id": ...}, ...
    session_state: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event handed to the store; the pipeline numbers it (seq 1, 2, 3, ...)."""

    seq: int
    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    ts: datetime | None = None  # None: the store stamps it with its clock


@dataclass(frozen=True, slots=True)
class ExecutionProgress:
    """How far an execution has got: its status and the seq of its last stored event (0: none)."""

    status: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class Event:
    execution_id: str
    seq: int
    ts: datetime
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image's header fields, without its bytes (listing images must stay cheap)."""

    id: str
    session_id: str
    execution_id: str | None  # the execution after which it was taken
    format_version: int
    guest_sha256: str
    memory_size: int
    size: int  # len(data)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Image(ImageInfo):
    data: bytes


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    crashed_executions: list[str]
    crashed_sessions: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.crashed_executions or self.crashed_sessions)


@dataclass(frozen=True, slots=True)
class PruneReport:
    executions: int
    events: int
    images: int
    batches: int
