"""The app's exception handlers: every error, whoever raised it (FastAPI's validation, starlette's
routing, the core, the store, the engine, a bug), answered as the one error envelope with the
status of its code (errors.py)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox import SandboxError
from supervisor import StoreError, SupervisorError
from supervisor.adapters.error_codes import api_code
from supervisor.adapters.http.errors import envelope, status_of
from supervisor.adapters.http.middleware import BodyTooLarge

log = structlog.get_logger("supervisor.http")


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
            return envelope("ROUTE_NOT_FOUND", f"no route {request.method} {request.url.path}")
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
