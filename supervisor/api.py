"""The supervisor contract: what every supervisor offers its adapters.

`Supervisor` (sessions in this process, `core.py`) and `ShardedSupervisor` (sessions in worker
processes, `shards.py`) both implement `SupervisorApi`, checked by mypy where each is defined
and by tests/supervisor/test_contract.py. The HTTP app, the daemon and the benchmarks see
only this protocol, so a further implementation (sessions on a cluster) plugs in without
touching them: it is opened by `supervisor.opening.open_supervisor`.

The protocol is split along the resources of the REST API (docs/api.md); `SupervisorApi`
composes them with the lifecycle. Arguments typed `Any` come straight from a client and are
checked by the implementation (a wrong one is a `ValidationError`, never a crash). Every
implementation raises the typed errors of `supervisor.errors` and returns store records.

This module imports nothing at run time: the CLI's `--help` must stay light.
"""

from __future__ import annotations

import builtins  # `TemplatesApi.list` shadows the builtin in its class body's annotations
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    import store as store_mod
    from supervisor.packages import StoredPackage, VerifyReport


@dataclass(frozen=True)
class RuntimeSummary:
    active_sessions: int
    active_session_ids: list[str]
    memory_bytes: int  # the live sessions' guest memory
    rss_bytes: int | None  # the whole process (Linux); with workers, theirs summed with it
    worker_threads: int  # the process's Python threads (request workers, writer, ticker)
    executions_running: int


class TemplatesApi(Protocol):
    """Templates and their sub-resources (settings, capabilities, startup files, modules,
    libraries): each input checked, then stored."""

    def create(self, name: Any, engine: Any = "quickjs") -> store_mod.Template: ...

    def get(self, template_id: str) -> store_mod.TemplateDetail: ...

    def list(self) -> builtins.list[store_mod.Template]: ...

    def delete(self, template_id: str) -> None: ...

    def settings(self, template_id: str) -> store_mod.TemplateSettings: ...

    def patch_settings(self, template_id: str, patch: Any) -> store_mod.TemplateSettings: ...

    def add_capability(self, template_id: str, kind: Any, name: Any, enabled: Any = True,
                       config: Any = None) -> store_mod.Capability: ...

    def list_capabilities(self, template_id: str) -> builtins.list[store_mod.Capability]: ...

    def delete_capability(self, template_id: str, capability_id: str) -> bool: ...

    def add_startup_file(self, template_id: str, path: Any, order_index: Any = 0,
                         mode: Any = "eval") -> store_mod.StartupFile: ...

    def list_startup_files(self, template_id: str) -> builtins.list[store_mod.StartupFile]: ...

    def delete_startup_file(self, template_id: str, startup_file_id: str) -> bool: ...

    def add_module(self, template_id: str, name: Any) -> store_mod.TemplateModule: ...

    def list_modules(self, template_id: str) -> builtins.list[store_mod.TemplateModule]: ...

    def remove_module(self, template_id: str, name: str) -> bool: ...

    def add_library(self, template_id: str, name: Any) -> store_mod.TemplateLibrary: ...

    def list_libraries(self, template_id: str) -> builtins.list[store_mod.TemplateLibrary]: ...

    def remove_library(self, template_id: str, name: str) -> bool: ...


class SessionsApi(Protocol):
    def create_session(self, template_id: str, workspace_id: Any, base_commit_oid: Any,
                       worktree_path: Any) -> store_mod.Session:
        """Spawn a session of the template; it is `ready` when this returns, or `crashed`
        (with `last_error`) and the error raised."""
        ...

    def get_session(self, session_id: str) -> store_mod.Session: ...

    def list_sessions(self, status: str | None = None) -> list[store_mod.Session]: ...

    def close_session(self, session_id: str) -> store_mod.Session:
        """Close (idempotent); a running execution ends `cancelled`."""
        ...


class ExecutionsApi(Protocol):
    def run(self, *, code: Any = None, path: Any = None, template_id: str | None = None,
            limits: Any = None, execution_id: str | None = None) -> store_mod.Execution:
        """A one-shot execution in an ephemeral sandbox (exactly one of `code` and `path`)."""
        ...

    def repl(self, session_id: str, input: Any, execution_id: str | None = None) -> store_mod.Execution:
        """`execution_id` (a new one by default) lets the caller follow the events while it runs."""
        ...

    def run_file(self, session_id: str, path: Any, args: Any = None,
                 env: Any = None) -> store_mod.Execution: ...

    def get_execution(self, execution_id: str) -> store_mod.Execution: ...

    def list_executions(self, session_id: str, limit: Any = 50) -> list[store_mod.Execution]: ...


class EventsApi(Protocol):
    def list_events(self, execution_id: str, after_seq: Any = 0,
                    limit: int | None = None) -> list[store_mod.Event]:
        """Events after `after_seq`; at most `limit` of them (a page), or all."""
        ...

    def execution_progress(self, execution_ids: list[str]) -> dict[str, store_mod.ExecutionProgress]:
        """How far each execution that exists has got (ids that are not UUIDs are left out)."""
        ...


class PackagesApi(Protocol):
    """The npm package store (supervisor/packages): only `add` reaches the registry."""

    def add(self, spec: Any, with_deps: bool = False) -> builtins.list[StoredPackage]: ...

    def list(self) -> builtins.list[StoredPackage]: ...

    def get(self, name: str, version: str) -> StoredPackage | None: ...

    def remove(self, name: str, version: str) -> bool: ...

    def verify(self) -> VerifyReport: ...


class SupervisorApi(SessionsApi, ExecutionsApi, EventsApi, Protocol):
    # Read-only: an implementation may hold any object that answers `TemplatesApi`.
    @property
    def templates(self) -> TemplatesApi: ...

    @property
    def packages(self) -> PackagesApi: ...

    def runtime_summary(self) -> RuntimeSummary: ...

    def flush_images(self) -> None:
        """Persist the state of every session that changed since its last image."""
        ...

    def drain(self, grace: float = 0.0) -> None:
        """Start nothing new (SHUTTING_DOWN), let running executions finish for up to `grace`
        seconds, then cancel the rest. Reads still work; `close` follows."""
        ...

    def close(self, grace: float = 0.0) -> None:
        """Drain, persist every session's state, release everything (idempotent)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...
