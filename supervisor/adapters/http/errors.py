"""Error codes to HTTP statuses: the one table (docs/api.md), and the error envelope."""

from __future__ import annotations

from typing import Any

from supervisor.adapters.http.json import JSONBody

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
    "PACKAGE_NOT_FOUND": 404,
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
    "INVALID_CAPABILITY": 422,
    "INTEGRITY_MISMATCH": 422,
    "PACKAGE_REFUSED": 422,
    "INTERNAL": 500,
    "REGISTRY_UNREACHABLE": 502,
    "REGISTRY_BAD_RESPONSE": 502,
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
