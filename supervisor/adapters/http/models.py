"""Request bodies (strict: unknown fields and loose types refused) and response shapes for
the OpenAPI document. Responses are built by json.py without model validation; the models
here document them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

# Integers that end up in an SQLite INTEGER column (or compared with one) must fit its
# 64 bits: Python's ints do not stop there, SQLite refuses them with an OverflowError.
SQL_INT_MIN = -(2**63)
SQL_INT_MAX = 2**63 - 1


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TemplateCreate(Body):
    name: StrictStr
    engine: StrictStr | None = None


class SettingsPatchBody(Body):
    limits: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None
    resolver: dict[str, Any] | None = None


class CapabilityCreate(Body):
    kind: StrictStr
    name: StrictStr
    enabled: StrictBool = True
    config: dict[str, Any] | None = None


class StartupFileCreate(Body):
    path: StrictStr
    order_index: StrictInt = Field(0, ge=SQL_INT_MIN, le=SQL_INT_MAX)
    mode: StrictStr = "eval"


class NameBody(Body):
    name: StrictStr


class SessionCreate(Body):
    template_id: StrictStr
    workspace_id: StrictStr
    base_commit_oid: StrictStr
    worktree_path: StrictStr


class ReplBody(Body):
    session_id: StrictStr
    input: StrictStr


class RunFileBody(Body):
    session_id: StrictStr
    path: StrictStr
    args: dict[str, Any] | None = None
    env: dict[str, Any] | None = None


class RunBody(Body):
    code: StrictStr | None = None
    path: StrictStr | None = None
    template_id: StrictStr | None = None
    limits: dict[str, Any] | None = None


# ----- responses (documentation) ---------------------------------------------------------------


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(Out):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(Out):
    error: ErrorBody


class TemplateOut(Out):
    id: str
    name: str
    engine: str
    created_at: str
    updated_at: str


class SettingsOut(Out):
    template_id: str
    limits: dict[str, Any]
    runtime: dict[str, Any]
    resolver: dict[str, Any]


class CapabilityOut(Out):
    id: str
    template_id: str
    kind: str
    name: str
    enabled: bool
    config: dict[str, Any]
    created_at: str


class StartupFileOut(Out):
    id: str
    template_id: str
    path: str
    order_index: int
    mode: str
    created_at: str


class NamedOut(Out):
    template_id: str
    name: str
    created_at: str


class TemplateDetailOut(Out):
    template: TemplateOut
    settings: SettingsOut
    capabilities: list[CapabilityOut]
    startup_files: list[StartupFileOut]
    modules: list[NamedOut]
    libraries: list[NamedOut]


class DeletedOut(Out):
    id: str
    deleted: bool


class SessionOut(Out):
    id: str
    template_id: str
    workspace_id: str
    base_commit_oid: str
    worktree_path: str
    status: str
    created_at: str
    closed_at: str | None
    last_error: str | None


class ExecutionOut(Out):
    id: str
    session_id: str | None
    kind: str
    input: str | None
    path: str | None
    args: dict[str, Any]
    env: dict[str, Any]
    status: str
    started_at: str
    ended_at: str | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    metrics: dict[str, Any]
    session_state: dict[str, Any] | None


class EventOut(Out):
    execution_id: str
    seq: int
    ts: str
    type: str
    payload: dict[str, Any]


class HealthOut(Out):
    status: str


class SummaryOut(Out):
    active_sessions: int
    active_session_ids: list[str]
    memory_bytes: int
    rss_bytes: int | None
    worker_threads: int
    executions_running: int


# ----- the package store (/libraries) ----------------------------------------------------------


class LibraryAdd(Body):
    name: StrictStr
    with_deps: StrictBool = False


class PackageOut(Out):
    id: str
    name: str
    version: str
    integrity: str
    tarball: str
    dependencies: dict[str, str]
    files: int
    unpacked_size: int
    added_at: str


class PackageDetailOut(PackageOut):
    manifest: dict[str, Any]
    paths: list[str]


class DamageOut(Out):
    package: str
    path: str
    sha256: str
    problem: str


class VerifyOut(Out):
    ok: bool
    packages: int
    files: int
    damaged: list[DamageOut]
