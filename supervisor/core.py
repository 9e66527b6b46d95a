"""`Supervisor`: the transport-agnostic core the daemon serves and the CLI drives.

    sup = Supervisor.open("vm-system.db", library_dir="libs")
    template = sup.templates.create("demo")
    session = sup.create_session(template.id, "ws", "abc123", "/path/to/worktree")
    execution = sup.repl(session.id, "console.log('x'); 20 + 22")
    sup.close()

Every method validates its input, raises typed errors carrying API codes, and returns store
records. Sessions live in this process; their state is persisted as images and restored when a
supervisor opens the same database again.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, Unpack

import structlog

import store as store_mod
from sandbox import ImageError, Limits, Sandbox
from store import Store
from supervisor.api import RuntimeSummary, SupervisorApi
from supervisor.base_images import BaseImages
from supervisor.boot import BootConfig, OpenOptions, Shard, data_dir, open_database, reconcile
from supervisor.durability import ImageWriter
from supervisor.errors import (
    SessionBusy,
    SessionNotReady,
    SessionStartFailed,
    ShuttingDown,
    SupervisorError,
    ValidationError,
)
from supervisor.host import ExecRequest, InThreadHost
from supervisor.ids import check_uuid, execution_label
from supervisor.imports.entry import commonjs_main, entry_kind
from supervisor.imports.resolution import Package
from supervisor.libraries import LibrarySources, Resolved
from supervisor.live import LiveSession, acquire_for_execution
from supervisor.modules.grants import SessionGrants
from supervisor.packages import open_package_library
from supervisor.pipeline import ExecSpec, Pipeline
from supervisor.process_memory import rss_bytes
from supervisor.reads import StoreReads
from supervisor.settings import Ceilings, effective_limits, validate_patch
from supervisor.templates import Templates
from supervisor.typescript import TypeScript, is_typescript, transpiler_base
from supervisor.worktree import check_worktree, read_worktree_file

log = structlog.get_logger("supervisor")

CLOSE_WAIT_S = 10.0


def _check_json_object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"{name} must be a JSON object", field=name)
    return value


def _check_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or value == "":
        raise ValidationError(f"{name} must be a non-empty string", field=name)
    if "\0" in value:
        raise ValidationError(f"{name} must not contain NUL", field=name)
    return value


def _enabled_capabilities(detail: store_mod.TemplateDetail) -> list[dict[str, Any]]:
    """What a template's enabled capabilities grant, as sessions keep it in their settings."""
    return [{"id": c.id, "kind": c.kind, "name": c.name, "config": c.config}
            for c in detail.capabilities if c.enabled]


def _request(runtime: dict[str, Any], limits: Limits, code: str, filename: str,
             globals_: dict[str, Any] | None = None, *, module: bool = False) -> ExecRequest:
    """What the host runs: a module, a script or a CommonJS file, as `imports.entry` says
    (`module`: an ES module whatever the file's name, as a startup file in mode `import`)."""
    kind = "module" if module else entry_kind(filename, code, esm=bool(runtime.get("esm", True)))
    if kind == "commonjs":
        code = commonjs_main(filename, code)
    return ExecRequest("module" if kind == "module" else "script", code, filename,
                       strict=bool(runtime.get("strict", False)) and kind == "script",
                       globals=globals_ or {}, limits=limits)


class Supervisor(StoreReads):
    def __init__(self, store: Store, *, library_dir: Path | None, ceilings: Ceilings,
                 image_key: bytes, run_root: Path, image_interval: float,
                 data_dir: Path, shard: Shard | None = None, npm_registry: str | None = None) -> None:
        self.store = store
        self.shard = shard
        self.ceilings = ceilings
        self.library_dir = library_dir
        self.run_root = run_root
        self.data_dir = data_dir
        self.packages = open_package_library(store, data_dir, npm_registry)
        self._libraries = LibrarySources(self.packages, library_dir)
        self.templates = Templates(store, ceilings, self._libraries)
        self._pipeline = Pipeline(store)
        self._bases = BaseImages(effective_limits({}, ceilings))
        # TypeScript files are stripped in a sandbox holding a pinned transpiler, fetched from
        # the registry into the data directory on first use; what it strips is kept there too.
        self._typescript = TypeScript(
            transpiler_base(data_dir / "typescript" / "transpiler", lambda: self.packages.registry),
            cache_dir=data_dir / "typescript" / "stripped")
        self._live: dict[str, LiveSession] = {}
        self._live_lock = threading.Lock()
        self._images = ImageWriter(store, image_key, self._live_sessions, image_interval)
        self._closed = False
        # Set by drain(): nothing new starts. One-shot runs' hosts are kept here (under
        # _live_lock) so that drain can cancel them too.
        self._draining = False
        self._oneshots: set[InThreadHost] = set()
        self._oneshots_done = threading.Condition(self._live_lock)
        self._drained = threading.Event()

    @classmethod
    def open(cls, db_path: str | Path, *, shard: Shard | None = None,
             **options: Unpack[OpenOptions]) -> Supervisor:
        """Open the database, reconcile what a previous process left, restore live sessions.

        `image_key` signs session images; by default it is kept in `<db>.key` beside the
        database (created 0600), so the database and its key travel together. With `shard`,
        this supervisor is one worker of a `ShardedSupervisor`: the router has reconciled
        the database already, and only the shard's share of the sessions is restored here.
        """
        return cls.start(BootConfig.of(db_path, **options), shard=shard)

    @classmethod
    def start(cls, config: BootConfig, *, shard: Shard | None = None) -> Supervisor:
        """`open`, from options already gathered (a worker process is handed them)."""
        store, key = open_database(config)
        sup = cls(store, library_dir=config.library_dir, ceilings=config.ceilings, image_key=key,
                  run_root=config.run_root, image_interval=config.image_interval,
                  data_dir=data_dir(config.db_path), shard=shard, npm_registry=config.npm_registry)
        sup._recover()
        sup._images.start()
        return sup

    # ----- start-up ---------------------------------------------------------------------------

    def _recover(self) -> None:
        if self.shard is None:
            reconcile(self.store)
        for session in self.store.list_sessions("ready"):
            if self.shard is not None and not self.shard.owns(session.id):
                continue
            structlog.contextvars.bind_contextvars(session_id=session.id)
            try:
                self._restore(session)
            finally:
                structlog.contextvars.unbind_contextvars("session_id")

    def _restore(self, session: store_mod.Session) -> None:
        try:
            image = self.store.latest_image(session.id)
        except store_mod.StoreReadError as exc:
            self._crash(session.id, f"the session's image could not be read: {exc}")
            return
        limits = effective_limits(session.settings.get("limits", {}), self.ceilings)
        if image is None:
            self._crash(session.id, "no image of this session was persisted before the daemon stopped")
            return
        grants = self._grants(session.id, session.template_id, session.worktree_path,
                              session.settings)
        try:
            sandbox = Sandbox.from_image(image.data, key=self._images_key, context=session.id,
                                         limits=limits, auto_checkpoint=True,
                                         checkpoint_label=image.execution_id or "spawn",
                                         functions=grants.functions(), modules=grants.loader())
        except ImageError as exc:
            self._crash(session.id, f"the session's image failed its integrity check: {exc}")
            return
        grants.attach(sandbox)
        self._add_live(LiveSession(session.id, session.template_id, session.worktree_path,
                                   InThreadHost(sandbox, grants.begin_execution), limits,
                                   session.settings.get("runtime", {}),
                                   last_execution_id=image.execution_id, grants=grants))
        log.info("session_restored", image_bytes=image.size)

    def _grants(self, session_id: str, template_id: str, worktree: str,
                settings: dict[str, Any], packages: dict[str, Package] | None = None) -> SessionGrants:
        """What the session's modules may do: as the settings it was spawned with say (its
        packages: those just resolved at spawn, else the ones its settings name)."""
        return SessionGrants(settings.get("modules") or [], settings.get("capabilities") or [],
                             worktree=worktree, session_id=session_id, template_id=template_id,
                             data_dir=self.data_dir, resolver=settings.get("resolver"),
                             packages=(packages if packages is not None
                                       else self._libraries.packages_of(settings.get("packages") or [])),
                             transform=self._typescript.transform)

    def _javascript(self, relative: str, code: str) -> str:
        """The code a file runs: a TypeScript file's, stripped of its types."""
        return self._typescript.javascript(code, relative) if is_typescript(relative) else code

    @property
    def _images_key(self) -> bytes:
        return self._images.key

    def _crash(self, session_id: str, reason: str) -> None:
        log.error("session_crashed", reason=reason)
        self._set_status(session_id, "crashed", last_error=reason)

    def _set_status(self, session_id: str, status: str, last_error: str | None = None) -> store_mod.Session:
        """A session status write, retried once: a session must not stay `starting`, or
        `ready` without being live, because of one failed write."""
        try:
            return self.store.set_session_status(session_id, status, last_error=last_error)
        except store_mod.StoreWriteError as exc:
            log.error("session_status_write_failed", status=status, error=str(exc), retry=True)
            return self.store.set_session_status(session_id, status, last_error=last_error)

    # ----- sessions ---------------------------------------------------------------------------

    def _live_sessions(self) -> list[LiveSession]:
        with self._live_lock:
            return list(self._live.values())

    def _add_live(self, live: LiveSession) -> None:
        with self._live_lock:
            self._live[live.id] = live

    def _get_live(self, session_id: str) -> LiveSession:
        session_id = check_uuid(session_id, "session_id")
        with self._live_lock:
            live = self._live.get(session_id)
        if live is None:
            session = self.store.get_session(session_id)  # SESSION_NOT_FOUND
            raise SessionNotReady(f"session {session_id} is {session.status}", session_id=session_id,
                                  status=session.status)
        return live

    def create_session(self, template_id: str, workspace_id: Any, base_commit_oid: Any,
                       worktree_path: Any) -> store_mod.Session:
        """Spawn: base image → startup files in order (each a recorded `startup` execution) → ready.

        A failure leaves the session `crashed` with `last_error`, nothing live, and raises the
        error with the session id in its details.
        """
        template_id = check_uuid(template_id, "template_id")
        _check_text(workspace_id, "workspace_id")
        _check_text(base_commit_oid, "base_commit_oid")
        worktree = str(check_worktree(worktree_path))
        self._refuse_if_draining()
        detail = self.store.get_template_detail(template_id)
        # The modules and their grants are taken now, with the settings: a session keeps what
        # it was spawned with (also across restarts), whatever the template says later.
        settings: dict[str, Any] = {"limits": detail.settings.limits, "runtime": detail.settings.runtime,
                    "resolver": detail.settings.resolver,
                    "modules": [m.name for m in detail.modules],
                    "capabilities": _enabled_capabilities(detail)}
        # The packages too (name@version, dependencies included), so that a session restored
        # later imports what it was spawned with. A library that cannot be had is the
        # session's failure, recorded as for any other.
        resolved: Resolved | SupervisorError
        try:
            resolved = self._libraries.resolve([lib.name for lib in detail.libraries])
        except SupervisorError as exc:
            resolved = exc
        settings["packages"] = resolved.package_ids if isinstance(resolved, Resolved) else []
        session = self.store.create_session(template_id, workspace_id, base_commit_oid, worktree,
                                            settings=settings)
        structlog.contextvars.bind_contextvars(session_id=session.id)
        live: LiveSession | None = None
        try:
            if isinstance(resolved, SupervisorError):
                raise resolved
            limits = effective_limits(settings["limits"], self.ceilings)
            grants = self._grants(session.id, template_id, worktree, settings, resolved.packages)
            sandbox = self._bases.sandbox(resolved, limits, grants)
            live = LiveSession(session.id, template_id, worktree,
                               InThreadHost(sandbox, grants.begin_execution), limits,
                               settings["runtime"], grants=grants)
            for startup in detail.startup_files:
                self._run_startup(live, startup.path, startup.mode)
            # The first image is written by the background writer, woken now: spawning stays
            # a memory copy. A daemon killed in the next few milliseconds brings this session
            # back `crashed` (no image), never wrong.
            live.dirty, live.dirty_since = True, time.monotonic()
            self._add_live(live)
            ready = self._set_status(session.id, "ready")
            self._images.wake()
            log.info("session_ready", template_id=template_id)
            return ready
        except Exception as exc:
            with self._live_lock:
                self._live.pop(session.id, None)
            if live is not None:
                live.host.close()
                if live.grants is not None:
                    live.grants.discard()
            reason = (getattr(exc, "reason", None) or exc.message if isinstance(exc, SupervisorError)
                      else f"{type(exc).__name__}: {exc}")
            self._crash(session.id, reason)
            if isinstance(exc, SupervisorError):
                exc.details.setdefault("session_id", session.id)
                raise
            raise SupervisorError("the session failed to start", session_id=session.id) from exc
        finally:
            structlog.contextvars.unbind_contextvars("session_id")

    def _run_startup(self, live: LiveSession, path: str, mode: str = "eval") -> None:
        relative, code = read_worktree_file(live.worktree_path, path)
        spec = ExecSpec("startup", live.id, None, relative, {}, {}, relative)
        request = _request(live.runtime, live.limits, self._javascript(relative, code), relative,
                           module=mode == "import")
        with live.lock:
            execution = self._pipeline.execute(spec, live.host, request)
            live.last_execution_id = execution_label(live.host.checkpoint_label())
        if execution.status != "ok":
            message = (execution.error or {}).get("message", execution.status)
            raise SessionStartFailed(f"startup file {relative} failed ({execution.status}): {message}",
                                     execution_id=execution.id)

    def close_session(self, session_id: str) -> store_mod.Session:
        """Close (idempotent). A running execution is interrupted and ends `cancelled`."""
        session_id = check_uuid(session_id, "session_id")
        with self._live_lock:
            live = self._live.get(session_id)
        if live is None:
            self.store.get_session(session_id)  # SESSION_NOT_FOUND
            return self._set_status(session_id, "closed")
        live.closing = True
        live.host.cancel()
        acquired = live.lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            # The store first: if it cannot record the close, the session stays live and
            # ready (consistent), and the caller gets the error to retry. A pending
            # execution end is recorded before: a closed session never runs again.
            try:
                self._pipeline.finish_all_leftovers()
                closed = self._set_status(session_id, "closed")
            except store_mod.StoreError:
                live.closing = False
                live.host.resume()
                raise
            live.host.close()
            if live.grants is not None:
                live.grants.discard()
            with self._live_lock:
                self._live.pop(session_id, None)
        finally:
            if acquired:
                live.lock.release()
        log.info("session_closed", session_id=session_id)
        return closed

    # ----- executions -------------------------------------------------------------------------

    @staticmethod
    def _request(live: LiveSession, code: str, filename: str,
                 globals_: dict[str, Any] | None = None) -> ExecRequest:
        return _request(live.runtime, live.limits, code, filename, globals_)

    def _refuse_if_draining(self) -> None:
        if self._draining:
            raise ShuttingDown("the daemon is shutting down: it starts no new executions")

    def _execute_in(self, live: LiveSession, spec: ExecSpec, request: ExecRequest,
                    execution_id: str | None = None) -> store_mod.Execution:
        if not acquire_for_execution(live):
            raise SessionBusy(f"session {live.id} is running another execution", session_id=live.id)
        structlog.contextvars.bind_contextvars(session_id=live.id)
        try:
            # Checked under the session's lock: drain() waits for that lock, so an execution
            # either is refused or is one drain sees (and cancels if it overstays).
            self._refuse_if_draining()
            if live.closing:
                raise SessionNotReady(f"session {live.id} is closing", session_id=live.id)
            execution = self._pipeline.execute(spec, live.host, request, closed=lambda: live.closing,
                                               execution_id=execution_id)
            self._images.note_execution(live)
            return execution
        finally:
            structlog.contextvars.unbind_contextvars("session_id")
            live.lock.release()

    def repl(self, session_id: str, input: Any, execution_id: str | None = None) -> store_mod.Execution:
        """`execution_id` (a new one by default) lets the caller follow the events while it runs
        (`POST /executions/repl` as a stream)."""
        live = self._get_live(session_id)
        if not isinstance(input, str):
            raise ValidationError("input must be a string", field="input")
        spec = ExecSpec("repl", live.id, input, None, {}, {}, input)
        return self._execute_in(live, spec, self._request(live, input, "<repl>"), execution_id)

    def run_file(self, session_id: str, path: Any, args: Any = None, env: Any = None) -> store_mod.Execution:
        """Run a file of the worktree; the path is checked, and the file read, before any row exists."""
        live = self._get_live(session_id)
        args = _check_json_object(args, "args")
        env = _check_json_object(env, "env")
        relative, code = read_worktree_file(live.worktree_path, path)
        spec = ExecSpec("run_file", live.id, None, relative, args, env, relative)
        request = self._request(live, self._javascript(relative, code), relative,
                                {"args": args, "env": env})
        return self._execute_in(live, spec, request)

    def run(self, *, code: Any = None, path: Any = None, template_id: str | None = None,
            limits: Any = None, execution_id: str | None = None) -> store_mod.Execution:
        """A one-shot execution in an ephemeral sandbox, thrown away afterwards.

        `path` is relative to the supervisor's run root (the daemon's working directory by
        default) and checked like a worktree path. `execution_id` (a new one by default) lets
        the caller follow the execution's events while it runs (`POST /run` as a stream).
        """
        if (code is None) == (path is None):
            raise ValidationError("give exactly one of code and path", field="code")
        runtime: dict[str, Any] = {"strict": False, "esm": True}
        libraries: list[str] = []
        limit_values: dict[str, Any] = {}
        modules: list[str] = []
        capabilities: list[dict[str, Any]] = []
        resolver: dict[str, Any] | None = None
        if template_id is not None:
            template_id = check_uuid(template_id, "template_id")
            detail = self.store.get_template_detail(template_id)
            runtime = detail.settings.runtime
            libraries = [lib.name for lib in detail.libraries]
            limit_values = dict(detail.settings.limits)
            modules = [m.name for m in detail.modules]
            capabilities = _enabled_capabilities(detail)
            resolver = detail.settings.resolver
        if limits is not None:
            limit_values.update(validate_patch({"limits": limits}, self.ceilings).get("limits", {}))
        if code is not None:
            code = _check_text(code, "code")
            filename, echo, stored_path = "<run>", code, None
        else:
            filename, code = read_worktree_file(str(self.run_root), path)
            echo, stored_path = filename, filename
            code = self._javascript(filename, code)
        effective = effective_limits(limit_values, self.ceilings)
        resolved = self._libraries.resolve(libraries)
        # The worktree of a one-shot run (its imports, its modules) is the run root; its
        # private database is its own, and goes with it.
        grants = SessionGrants(modules, capabilities, worktree=str(self.run_root),
                               session_id=f"run-{uuid.uuid4()}", template_id=template_id,
                               data_dir=self.data_dir, resolver=resolver, packages=resolved.packages,
                               transform=self._typescript.transform)
        try:
            sandbox = self._bases.sandbox(resolved, effective, grants)
        except BaseException:
            grants.discard()
            raise
        sandbox.auto_checkpoint = False
        host = InThreadHost(sandbox, grants.begin_execution)
        spec = ExecSpec("run", None, code if stored_path is None else None, stored_path, {}, {}, echo)
        try:
            with self._live_lock:
                self._oneshots.add(host)
                self._refuse_if_draining()  # under the lock drain() cancels the one-shots with
            return self._pipeline.execute(spec, host, _request(runtime, effective, code, filename),
                                          execution_id=execution_id)
        finally:
            with self._live_lock:
                self._oneshots.discard(host)
                self._oneshots_done.notify_all()
            host.close()
            grants.discard()

    # ----- ops --------------------------------------------------------------------------------

    def runtime_summary(self) -> RuntimeSummary:
        live = self._live_sessions()
        with self._live_lock:
            oneshots = len(self._oneshots)
        # Running: the sessions' executions and the one-shot runs.
        return RuntimeSummary(len(live), sorted(s.id for s in live),
                              sum(s.host.memory_size() for s in live), rss_bytes(),
                              threading.active_count(),
                              sum(1 for s in live if s.lock.locked()) + oneshots)

    def flush_images(self) -> None:
        """Persist the state of every session that changed since its last image."""
        self._images.flush()

    def drain(self, grace: float = 0.0) -> None:
        """The first half of a shutdown: start nothing new (SHUTTING_DOWN), let running
        executions finish for up to `grace` seconds, then cancel the rest (they end
        `cancelled`, and their callers get that execution). Reads still work; `close` follows.

        The daemon drains before its server stops waiting for requests in flight, so that
        every such request is answered by the supervisor, never cut off by the server."""
        with self._live_lock:
            first = not self._draining
            self._draining = True
        if not first:  # another thread drains: its end is this call's end too
            self._drained.wait()
            return
        try:
            self._drain(grace)
        finally:
            self._drained.set()

    def _drain(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        live = self._live_sessions()
        for session in live:  # wait for running executions, up to the grace period
            remaining = max(0.0, deadline - time.monotonic())
            if session.lock.acquire(timeout=remaining):
                session.lock.release()
        with self._live_lock:
            self._oneshots_done.wait_for(lambda: not self._oneshots,
                                         timeout=max(0.0, deadline - time.monotonic()))
            oneshots = list(self._oneshots)
        for host in oneshots:
            host.cancel()
        for session in live:
            session.host.cancel()
        log.info("supervisor_drained", sessions=len(live), cancelled_runs=len(oneshots))

    def close(self, grace: float = 0.0) -> None:
        """Stop: drain (running executions get up to `grace` seconds, then are cancelled),
        persist every session's state, release everything.

        Live sessions stay `ready` in the store: the next supervisor restores them."""
        if self._closed:
            return
        self._closed = True
        self.drain(grace)
        with self._live_lock:  # cancelled one-shot runs record their end before the store closes
            self._oneshots_done.wait_for(lambda: not self._oneshots, timeout=CLOSE_WAIT_S)
        live = self._live_sessions()
        self._pipeline.finish_all_leftovers()
        self._images.stop()
        self._images.flush()
        for session in live:
            acquired = session.lock.acquire(timeout=CLOSE_WAIT_S)
            session.host.close()
            if session.grants is not None:
                session.grants.close()
            if acquired:
                session.lock.release()
        with self._live_lock:
            self._live.clear()
        self._bases.close()
        self._typescript.close()
        self.packages.close()
        self.store.close()
        log.info("supervisor_closed", sessions=len(live))

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# mypy checks here that `Supervisor` offers the whole contract.
_CONTRACT: type[SupervisorApi] = Supervisor

__all__ = ["Supervisor"]
