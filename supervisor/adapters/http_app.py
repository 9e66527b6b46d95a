"""The REST API (docs/api.md) over the supervisor core: decode, validate, call, encode.

Cross-cutting rules live in one ASGI middleware (request ids, bearer token, body size, the
access log) and in the exception handlers (every error as the one envelope, the status from
http_errors' table). Handlers are plain functions run in the thread pool: the core is
synchronous and releases the GIL while a guest runs.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox import SandboxError
from store import StoreError
from supervisor import SupervisorApi
from supervisor.adapters import http_json as out
from supervisor.adapters import http_models as m
from supervisor.adapters.error_codes import api_code
from supervisor.adapters.http_errors import envelope, status_of
from supervisor.adapters.http_event_stream import EventStreams, StreamSettings
from supervisor.adapters.http_run_stream import stream_run, wants_event_stream
from supervisor.errors import NotFound, SupervisorError

log = structlog.get_logger("supervisor.http")

PREFIX = "/api/v1"
DEFAULT_MAX_BODY = 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_EVENT_ID = re.compile(r"[0-9]{1,19}")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.ErrorOut}, 404: {"model": m.ErrorOut}, 409: {"model": m.ErrorOut},
    413: {"model": m.ErrorOut}, 422: {"model": m.ErrorOut}}

class _TooLarge(Exception):
    pass


class RequestContext:
    """Request id (reused when valid), bearer token, body size limit, access log."""

    def __init__(self, app: ASGIApp, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = {"code": 500}
        sent_start = {"done": False}
        rid_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                sent_start["done"] = True
                message = dict(message)
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        async def reply(response: Any) -> None:
            await response(scope, receive, send_with_id)

        try:
            path = scope.get("path", "")
            if self.token is not None and path != f"{PREFIX}/health":
                given = headers.get("authorization", "")
                expected = f"Bearer {self.token}"
                if not hmac.compare_digest(given.encode(), expected.encode()):
                    await reply(envelope("UNAUTHORIZED", "a valid bearer token is required",
                                         headers={"www-authenticate": "Bearer"}))
                    return
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await reply(envelope("PAYLOAD_TOO_LARGE",
                                     f"the request body is larger than {self.max_body} bytes"))
                return
            if scope.get("method") in ("POST", "PATCH", "PUT") and "json" not in headers.get("content-type", ""):
                # Every body is JSON (docs/api.md), whatever the client labelled it (curl -d says
                # form-urlencoded): decode it as JSON rather than refuse a well-formed body.
                scope = dict(scope)
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
                scope["headers"].append((b"content-type", b"application/json"))
            received = {"bytes": 0}

            async def limited_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    received["bytes"] += len(message.get("body", b""))
                    if received["bytes"] > self.max_body:
                        raise _TooLarge
                return message

            try:
                app_receive = await _checked_body(scope, limited_receive, receive, reply)
                if app_receive is not None:
                    await self.app(scope, app_receive, send_with_id)
            except _TooLarge:
                if not sent_start["done"]:
                    await reply(envelope("PAYLOAD_TOO_LARGE",
                                         f"the request body is larger than {self.max_body} bytes"))
        finally:
            log.info("request", method=scope.get("method"), path=scope.get("path"),
                     status=status["code"], duration_ms=round((time.perf_counter() - started) * 1000, 3))
            structlog.contextvars.clear_contextvars()


# Methods whose body a route decodes: each body is checked whole (http_json.check_body)
# before FastAPI sees it.
_BODY_METHODS = ("POST", "PATCH", "PUT")


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (the size limit is the caller's receive), None on disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _checked_body(scope: Scope, limited: Receive, receive: Receive,
                        reply: Callable[[Any], Awaitable[None]]) -> Receive | None:
    """The receive the app gets: for a method with a body, the body read whole and checked
    (refused with 400 INVALID_REQUEST, then None), then replayed. None: nothing to serve."""
    if scope.get("method") not in _BODY_METHODS:
        return limited
    body = await _read_body(limited)
    if body is None:
        return None  # the client went away before sending all of it
    try:
        out.check_body(body)
    except out.BodyProblem as problem:
        await reply(envelope("INVALID_REQUEST", problem.message, problem.details))
        return None
    return _replay(body, receive)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the client's own messages
    (a disconnect) as they come."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


_RANGE_ERRORS = ("less_than_equal", "greater_than_equal")


def _validation_code(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """Malformed JSON, an empty body, unknown fields and wrong types: INVALID_REQUEST; a
    missing field or a bad query/path value: VALIDATION_ERROR (docs/api.md)."""
    for error in errors:
        loc = error.get("loc", ())
        kind = error.get("type", "")
        if loc and loc[0] == "body":
            if kind == "missing" and len(loc) > 1:
                continue
            field = ".".join(str(p) for p in loc[1:]) or "body"
            if kind == "json_invalid":
                return "INVALID_REQUEST", "the request body is not valid JSON"
            if kind == "missing":
                return "INVALID_REQUEST", "the request body is empty"
            if kind == "extra_forbidden":
                return "INVALID_REQUEST", f"unknown field: {field}"
            if kind in _RANGE_ERRORS:  # the right type, a value out of range: an invalid field
                return "VALIDATION_ERROR", f"{field}: {error.get('msg', 'out of range')}"
            return "INVALID_REQUEST", f"{field}: {error.get('msg', 'invalid')}"
    first = errors[0] if errors else {}
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
    if first.get("type") == "missing":
        return "VALIDATION_ERROR", f"{field} is required"
    return "VALIDATION_ERROR", f"{field}: {first.get('msg', 'invalid')}"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        errors = [dict(e) for e in exc.errors()]
        code, message = _validation_code(errors)
        details = {"errors": [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
                              for e in errors]}
        return envelope(code, message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if isinstance(exc.__cause__, _TooLarge):  # a chunked body crossed the limit mid-read
            return envelope("PAYLOAD_TOO_LARGE", "the request body is larger than the limit")
        if exc.status_code == 404:
            return envelope("NOT_FOUND", f"no route {request.method} {request.url.path}")
        if exc.status_code == 405:
            return envelope("METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.url.path}")
        return envelope("INVALID_REQUEST", str(exc.detail))

    async def typed(request: Request, exc: Exception) -> Any:
        code = api_code(exc)
        if status_of(code) >= 500 and not getattr(exc, "public", False):
            log.error("request_failed", code=code, error=repr(exc))
            return envelope("INTERNAL", "internal error")
        details = dict(getattr(exc, "details", {}) or {})
        message = getattr(exc, "message", None) or str(exc)
        return envelope(code, message, details)

    for kind in (SupervisorError, StoreError, SandboxError):
        app.add_exception_handler(kind, typed)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> Any:
        log.error("request_crashed", error=repr(exc), exc_info=exc)
        return envelope("INTERNAL", "internal error")


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
    _install_error_handlers(app)
    for add_routes in (_ops_routes, _template_routes, _session_routes):
        add_routes(app, sup)
    _execution_routes(app, sup, EventStreams(sup, streams))
    app.add_middleware(RequestContext, token=token, max_body=max_body)
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
    def repl(body: m.ReplBody) -> Any:
        return out.JSONBody(out.record(sup.repl(body.session_id, body.input)), status_code=201)

    @app.post(f"{PREFIX}/executions/run-file", status_code=201, response_model=m.ExecutionOut,
              responses=ERRORS, tags=["executions"])
    def run_file(body: m.RunFileBody) -> Any:
        execution = sup.run_file(body.session_id, body.path, body.args, body.env)
        return out.JSONBody(out.record(execution), status_code=201)

    @app.post(f"{PREFIX}/run", status_code=201, response_model=m.ExecutionOut, responses=ERRORS,
              tags=["executions"])
    async def run(body: m.RunBody, request: Request) -> Any:
        if wants_event_stream(request.headers.get("accept", "")):
            return await stream_run(sup, streams, body, PREFIX)
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


def _deleted(found: bool, what: str, ident: str) -> None:
    if not found:
        raise NotFound(f"{what} {ident} not found", id=ident)
