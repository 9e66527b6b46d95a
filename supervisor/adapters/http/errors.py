"""How an error becomes an answer: error codes to HTTP statuses (the one table, docs/api.md),
the error envelope, and the app's exception handlers (every error as that envelope)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox import SandboxError
from store import StoreError
from supervisor.adapters.http.json import JSONBody
from supervisor.errors import SupervisorError

log = structlog.get_logger("supervisor.http")

STATUS_BY_CODE: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "NOT_FOUND": 404,
    "ROUTE_NOT_FOUND": 404,
    "TEMPLATE_NOT_FOUND": 404,
    "SESSION_NOT_FOUND": 404,
    "EXECUTION_NOT_FOUND": 404,
    "FILE_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "SESSION_NOT_READY": 409,
    "SESSION_BUSY": 409,
    "TEMPLATE_EXISTS": 409,
    "CAPABILITY_EXISTS": 409,
    "STARTUP_FILE_EXISTS": 409,
    "MODULE_EXISTS": 409,
    "LIBRARY_EXISTS": 409,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "INVALID_PATH": 422,
    "STARTUP_MODE_UNSUPPORTED": 422,
    "MODULE_NOT_ALLOWED": 422,
    "LIBRARY_NOT_FOUND": 422,
    "ENGINE_UNSUPPORTED": 422,
    "INTERNAL": 500,
    "TOO_MANY_STREAMS": 503,
    "WORKER_LOST": 503,
    "SHUTTING_DOWN": 503,
}

# A 503 is always worth retrying: a stream slot frees, a worker comes back within a second, a
# daemon shutting down is restarted (or another one answers).
RETRY_AFTER_S = 1


def status_of(code: str) -> int:
    return STATUS_BY_CODE.get(code, 500)


def envelope(code: str, message: str, details: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> JSONBody:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    status = status_of(code)
    if status == 503:
        headers = {"retry-after": str(RETRY_AFTER_S), **(headers or {})}
    return JSONBody(body, status_code=status, headers=headers)


class BodyTooLarge(Exception):
    """A body crossed the size limit while it arrived (middleware.BodyLimit raises it)."""


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        errors = [dict(e) for e in exc.errors()]
        code, message = _validation_code(errors)
        details = {"errors": [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
                              for e in errors]}
        return envelope(code, message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if isinstance(exc.__cause__, BodyTooLarge):  # a chunked body crossed the limit mid-read
            return envelope("PAYLOAD_TOO_LARGE", "the request body is larger than the limit")
        if exc.status_code == 404:
            return envelope("NOT_FOUND", f"no route {request.method} {request.url.path}")
        if exc.status_code == 405:
            return envelope("METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.url.path}")
        return envelope("INVALID_REQUEST", str(exc.detail))

    async def typed(request: Request, exc: Exception) -> Any:
        code = getattr(exc, "code", "INTERNAL")
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
