"""The REST API (docs/api.md) over the supervisor core: decode, validate, call, encode.

Cross-cutting rules live in the ASGI middleware (middleware.py: request id and access log,
bearer token, body size, strict JSON bodies, one concern each) and in the exception handlers
(exception_handlers.py: every error as the one envelope, its status from errors.py's table).
Route handlers are plain functions run in the thread pool: the core is synchronous and
releases the GIL while a guest runs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from supervisor import NotFound, SupervisorApi
from supervisor.adapters.http import json as out
from supervisor.adapters.http import models as m
from supervisor.adapters.http.event_stream import EventStreams, StreamSettings
from supervisor.adapters.http.exception_handlers import install_error_handlers
from supervisor.adapters.http.middleware import BearerAuth, BodyLimit, RequestIdAndAccessLog, StrictJsonBody
from supervisor.adapters.http.packages import add_package_routes
from supervisor.adapters.http.run_stream import stream_run, wants_event_stream

PREFIX = "/api/v1"
DEFAULT_MAX_BODY = 1024 * 1024
_EVENT_ID = re.compile(r"[0-9]{1,19}")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.ErrorOut}, 404: {"model": m.ErrorOut}, 409: {"model": m.ErrorOut},
    413: {"model": m.ErrorOut}, 422: {"model": m.ErrorOut}}
# The package store's add reaches the registry: a registry down or answering nonsense is a 502.
REGISTRY_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 502: {"model": m.ErrorOut}}

def create_app(sup: SupervisorApi, *, token: str | None = None, max_body: int = DEFAULT_MAX_BODY,
               streams: StreamSettings | None = None,
               close_supervisor: Callable[[], Awaitable[None]] | None = None) -> FastAPI:
    """The ASGI app. `close_supervisor` runs at shutdown (the daemon passes its graceful close);
    `streams` sets the event streams' cap and pace."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        if close_supervisor is not None:
            await close_supervisor()

    app = FastAPI(title="vm-system", version="1", openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=f"{PREFIX}/docs", redoc_url=None, lifespan=lifespan)
    install_error_handlers(app)
    for add_routes in (_ops_routes, _template_routes, _session_routes):
        add_routes(app, sup)
    _execution_routes(app, sup, EventStreams(sup, streams))
    add_package_routes(app, sup, PREFIX, ERRORS, REGISTRY_ERRORS)
    # Starlette runs the middleware added last first: this is innermost to outermost.
    app.add_middleware(StrictJsonBody)
    app.add_middleware(BodyLimit, max_body=max_body)
    app.add_middleware(BearerAuth, token=token, open_paths=(f"{PREFIX}/health",))
    app.add_middleware(RequestIdAndAccessLog)
    return app


def _ops_routes(app: FastAPI, sup: SupervisorApi) -> None:
    @app.get(f"{PREFIX}/health", response_model=m.HealthOut, tags=["ops"])
    def health() -> Any:
        return out.JSONBody({"status": "ok"})

    @app.get(f"{PREFIX}/runtime/summary", response_model=m.SummaryOut, tags=["ops"])
    def runtime_summary() -> Any:
        return out.JSONBody(out.record(sup.runtime_summary()))


def _template_routes(app: FastAPI, sup: SupervisorApi) -> None:
    tpl = sup.templates

    @app.post(f"{PREFIX}/templates", status_code=201, response_model=m.TemplateOut, responses=ERRORS,
              tags=["templates"])
    def create_template(body: m.TemplateCreate) -> Any:
        return out.JSONBody(out.record(tpl.create(body.name, body.engine)), status_code=201)

    @app.get(f"{PREFIX}/templates", response_model=list[m.TemplateOut], tags=["templates"])
    def list_templates() -> Any:
        return out.JSONBody(out.record(tpl.list()))

    @app.get(f"{PREFIX}/templates/{{template_id}}", response_model=m.TemplateDetailOut,
             responses=ERRORS, tags=["templates"])
    def get_template(template_id: str) -> Any:
        return out.JSONBody(out.template_detail(tpl.get(template_id)))

    @app.delete(f"{PREFIX}/templates/{{template_id}}", response_model=m.DeletedOut, responses=ERRORS,
                tags=["templates"])
    def delete_template(template_id: str) -> Any:
        tpl.delete(template_id)
        return out.JSONBody({"id": template_id, "deleted": True})

    @app.get(f"{PREFIX}/templates/{{template_id}}/settings", response_model=m.SettingsOut,
             responses=ERRORS, tags=["templates"])
    def get_settings(template_id: str) -> Any:
        return out.JSONBody(out.record(tpl.settings(template_id)))

    @app.patch(f"{PREFIX}/templates/{{template_id}}/settings", response_model=m.SettingsOut,
               responses=ERRORS, tags=["templates"])
    def patch_settings(template_id: str, body: m.SettingsPatchBody) -> Any:
        patch = body.model_dump(exclude_none=True)
        return out.JSONBody(out.record(tpl.patch_settings(template_id, patch)))

    @app.post(f"{PREFIX}/templates/{{template_id}}/capabilities", status_code=201,
              response_model=m.CapabilityOut, responses=ERRORS, tags=["templates"])
    def add_capability(template_id: str, body: m.CapabilityCreate) -> Any:
        cap = tpl.add_capability(template_id, body.kind, body.name, body.enabled, body.config)
        return out.JSONBody(out.record(cap), status_code=201)

    @app.get(f"{PREFIX}/templates/{{template_id}}/capabilities", response_model=list[m.CapabilityOut],
             responses=ERRORS, tags=["templates"])
    def list_capabilities(template_id: str) -> Any:
        return out.JSONBody(out.record(tpl.list_capabilities(template_id)))

    @app.delete(f"{PREFIX}/templates/{{template_id}}/capabilities/{{capability_id}}",
                response_model=m.DeletedOut, responses=ERRORS, tags=["templates"])
    def delete_capability(template_id: str, capability_id: str) -> Any:
        _deleted(tpl.delete_capability(template_id, capability_id), "capability", capability_id)
        return out.JSONBody({"id": capability_id, "deleted": True})

    @app.post(f"{PREFIX}/templates/{{template_id}}/startup-files", status_code=201,
              response_model=m.StartupFileOut, responses=ERRORS, tags=["templates"])
    def add_startup_file(template_id: str, body: m.StartupFileCreate) -> Any:
        startup = tpl.add_startup_file(template_id, body.path, body.order_index, body.mode)
        return out.JSONBody(out.record(startup), status_code=201)

    @app.get(f"{PREFIX}/templates/{{template_id}}/startup-files", response_model=list[m.StartupFileOut],
             responses=ERRORS, tags=["templates"])
    def list_startup_files(template_id: str) -> Any:
        return out.JSONBody(out.record(tpl.list_startup_files(template_id)))

    @app.delete(f"{PREFIX}/templates/{{template_id}}/startup-files/{{startup_file_id}}",
                response_model=m.DeletedOut, responses=ERRORS, tags=["templates"])
    def delete_startup_file(template_id: str, startup_file_id: str) -> Any:
        _deleted(tpl.delete_startup_file(template_id, startup_file_id), "startup file", startup_file_id)
        return out.JSONBody({"id": startup_file_id, "deleted": True})

    for kind in ("modules", "libraries"):
        _named_routes(app, sup, kind)


def _session_routes(app: FastAPI, sup: SupervisorApi) -> None:
    @app.post(f"{PREFIX}/sessions", status_code=201, response_model=m.SessionOut, responses=ERRORS,
              tags=["sessions"])
    def create_session(body: m.SessionCreate) -> Any:
        session = sup.create_session(body.template_id, body.workspace_id, body.base_commit_oid,
                                     body.worktree_path)
        return out.JSONBody(out.session(session), status_code=201)

    @app.get(f"{PREFIX}/sessions", response_model=list[m.SessionOut], responses=ERRORS, tags=["sessions"])
    def list_sessions(status: str | None = None) -> Any:
        return out.JSONBody([out.session(s) for s in sup.list_sessions(status)])

    @app.get(f"{PREFIX}/sessions/{{session_id}}", response_model=m.SessionOut, responses=ERRORS,
             tags=["sessions"])
    def get_session(session_id: str) -> Any:
        return out.JSONBody(out.session(sup.get_session(session_id)))

    @app.post(f"{PREFIX}/sessions/{{session_id}}/close", response_model=m.SessionOut, responses=ERRORS,
              tags=["sessions"])
    def close_session(session_id: str) -> Any:
        return out.JSONBody(out.session(sup.close_session(session_id)))

    @app.delete(f"{PREFIX}/sessions/{{session_id}}", response_model=m.SessionOut, responses=ERRORS,
                tags=["sessions"])
    def delete_session(session_id: str) -> Any:
        return out.JSONBody(out.session(sup.close_session(session_id)))


def _execution_routes(app: FastAPI, sup: SupervisorApi, streams: EventStreams) -> None:
    @app.post(f"{PREFIX}/executions/repl", status_code=201, response_model=m.ExecutionOut,
              responses=ERRORS, tags=["executions"])
    async def repl(body: m.ReplBody, request: Request) -> Any:
        if wants_event_stream(request.headers.get("accept", "")):
            return await stream_run(sup, streams, lambda eid: sup.repl(body.session_id, body.input, eid), PREFIX)
        execution = await run_in_threadpool(sup.repl, body.session_id, body.input)
        return out.JSONBody(out.record(execution), status_code=201)

    @app.post(f"{PREFIX}/executions/run-file", status_code=201, response_model=m.ExecutionOut,
              responses=ERRORS, tags=["executions"])
    def run_file(body: m.RunFileBody) -> Any:
        execution = sup.run_file(body.session_id, body.path, body.args, body.env)
        return out.JSONBody(out.record(execution), status_code=201)

    @app.post(f"{PREFIX}/run", status_code=201, response_model=m.ExecutionOut, responses=ERRORS,
              tags=["executions"])
    async def run(body: m.RunBody, request: Request) -> Any:
        if wants_event_stream(request.headers.get("accept", "")):
            def start(execution_id: str) -> Any:
                return sup.run(code=body.code, path=body.path, template_id=body.template_id,
                               limits=body.limits, execution_id=execution_id)

            return await stream_run(sup, streams, start, PREFIX)
        execution = await run_in_threadpool(sup.run, code=body.code, path=body.path,
                                            template_id=body.template_id, limits=body.limits)
        return out.JSONBody(out.record(execution), status_code=201)

    @app.get(f"{PREFIX}/executions", response_model=list[m.ExecutionOut], responses=ERRORS,
             tags=["executions"])
    def list_executions(session_id: str, limit: int = 50) -> Any:
        return out.JSONBody(out.record(sup.list_executions(session_id, limit)))

    @app.get(f"{PREFIX}/executions/{{execution_id}}", response_model=m.ExecutionOut, responses=ERRORS,
             tags=["executions"])
    def get_execution(execution_id: str) -> Any:
        return out.JSONBody(out.record(sup.get_execution(execution_id)))

    @app.get(f"{PREFIX}/executions/{{execution_id}}/events", response_model=list[m.EventOut],
             responses=ERRORS, tags=["executions"])
    def list_events(execution_id: str, after_seq: int = Query(0, le=m.SQL_INT_MAX)) -> Any:
        return out.JSONBody(out.record(sup.list_events(execution_id, after_seq)))

    @app.get(f"{PREFIX}/executions/{{execution_id}}/events/stream", responses=ERRORS,
             tags=["executions"], response_class=StreamingResponse)
    async def stream_events(execution_id: str, request: Request) -> Any:
        last = request.headers.get("last-event-id", "0")
        # Only what an event id can be (ASCII digits, within SQLite's integers); anything else
        # is no cursor at all.
        after = int(last) if _EVENT_ID.fullmatch(last) and int(last) <= m.SQL_INT_MAX else 0
        await streams.read(sup.get_execution, execution_id)  # 400/404 before the stream starts
        return streams.response(streams.reserve(), execution_id, after)


def _named_routes(app: FastAPI, sup: SupervisorApi, kind: str) -> None:
    tpl = sup.templates
    add = tpl.add_module if kind == "modules" else tpl.add_library
    lister = tpl.list_modules if kind == "modules" else tpl.list_libraries
    remove = tpl.remove_module if kind == "modules" else tpl.remove_library

    def create(template_id: str, body: m.NameBody) -> Any:
        return out.JSONBody(out.record(add(template_id, body.name)), status_code=201)

    def listing(template_id: str) -> Any:
        return out.JSONBody(out.record(lister(template_id)))

    def delete(template_id: str, name: str) -> Any:
        _deleted(remove(template_id, name), kind[:-1] if kind == "modules" else "library", name)
        return out.JSONBody({"id": name, "deleted": True})

    base = f"{PREFIX}/templates/{{template_id}}/{kind}"
    app.add_api_route(base, create, methods=["POST"], status_code=201, response_model=m.NamedOut,
                      responses=ERRORS, tags=["templates"], name=f"add_{kind}")
    app.add_api_route(base, listing, methods=["GET"], response_model=list[m.NamedOut],
                      responses=ERRORS, tags=["templates"], name=f"list_{kind}")
    app.add_api_route(f"{base}/{{name}}", delete, methods=["DELETE"], response_model=m.DeletedOut,
                      responses=ERRORS, tags=["templates"], name=f"remove_{kind}")
    if kind == "libraries":
        # A scoped package's name holds a `/` (`@scope/name@1.0.0`), as in /libraries.
        def delete_scoped(template_id: str, scope: str, name: str) -> Any:
            return delete(template_id, f"@{scope}/{name}")

        app.add_api_route(f"{base}/@{{scope}}/{{name}}", delete_scoped, methods=["DELETE"],
                          response_model=m.DeletedOut, responses=ERRORS, tags=["templates"],
                          name="remove_scoped_library")


def _deleted(found: bool, what: str, ident: str) -> None:
    if not found:
        raise NotFound(f"{what} {ident} not found", id=ident)
