"""The API's cross-cutting rules, one ASGI middleware each, outermost first (create_app stacks
them in this order):

* `RequestIdAndAccessLog`: the request id (the client's X-Request-Id when valid, else a new one)
  bound to every log line of the request and sent back on every response, and one access log
  line per request, whatever answered it;
* `BearerAuth`: the bearer token, on every path but the open ones (`/health`);
* `BodyLimit`: the body size, by its Content-Length and as it arrives (a chunked body);
* `StrictJsonBody`: every body is JSON, read whole and checked (http/json.py's `check_body`)
  before the app decodes it.

A refusal is the error envelope (http/errors.py) and never reaches the app. Each middleware
passes anything but an HTTP request (the lifespan) straight through.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Collection
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supervisor.adapters.http import json as out
from supervisor.adapters.http.errors import envelope

log = structlog.get_logger("supervisor.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Methods whose body a route decodes: each body is checked whole before FastAPI sees it.
_BODY_METHODS = ("POST", "PATCH", "PUT")


class BodyTooLarge(Exception):
    """A body crossed the size limit while it arrived."""


def _header(scope: Scope, name: bytes) -> str | None:
    """The value of a request header; of a header sent twice, the last (as a dict of them)."""
    found: str | None = None
    for key, value in scope["headers"]:
        if key.lower() == name:
            found = value.decode("latin-1")
    return found


async def _reply(response: Any, scope: Scope, receive: Receive, send: Send) -> None:
    await response(scope, receive, send)


class RequestIdAndAccessLog:
    """Request id (reused when valid) on the response and the log lines; the access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id") or ""
        request_id = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = {"code": 500}
        rid_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = dict(message)
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info("request", method=scope.get("method"), path=scope.get("path"),
                     status=status["code"], duration_ms=round((time.perf_counter() - started) * 1000, 3))
            structlog.contextvars.clear_contextvars()


class BearerAuth:
    """With a token, every request but those to `open_paths` must carry it (401 otherwise)."""

    def __init__(self, app: ASGIApp, token: str | None, open_paths: Collection[str]) -> None:
        self.app = app
        self.token = token
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token is not None and scope.get("path", "") not in self.open_paths:
            given = _header(scope, b"authorization") or ""
            expected = f"Bearer {self.token}"
            # Constant time: how much of a guess matched must not show in how long it took.
            if not hmac.compare_digest(given.encode(), expected.encode()):
                await _reply(envelope("UNAUTHORIZED", "a valid bearer token is required",
                                      headers={"www-authenticate": "Bearer"}), scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """A body larger than `max_body` is 413: refused by its Content-Length before it is read,
    or, sent without one (chunked), once what has arrived crosses the limit."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _reply(self._too_large(), scope, receive, send)
            return
        received = {"bytes": 0}
        started = {"done": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > self.max_body:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["done"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            # Raised while the body was read, before any answer: the answer is 413. (The app
            # reading a body itself turns it into an HTTPException: exception_handlers.py answers that.)
            if not started["done"]:
                await _reply(self._too_large(), scope, receive, send)

    def _too_large(self) -> Any:
        return envelope("PAYLOAD_TOO_LARGE", f"the request body is larger than {self.max_body} bytes")


class StrictJsonBody:
    """Every body is JSON (docs/api.md), read whole and refused with 400 INVALID_REQUEST unless
    strict JSON (`check_body`), then replayed to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if "json" not in (_header(scope, b"content-type") or ""):
            # Whatever the client labelled it (curl -d says form-urlencoded): decode it as JSON
            # rather than refuse a well-formed body.
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
            scope["headers"].append((b"content-type", b"application/json"))
        app_receive = await _checked_body(scope, receive, send)
        if app_receive is not None:
            await self.app(scope, app_receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (BodyLimit bounds it), None on disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _checked_body(scope: Scope, receive: Receive, send: Send) -> Receive | None:
    """The receive the app gets: the body read whole and checked (refused with 400
    INVALID_REQUEST, then None), then replayed. None: nothing to serve."""
    body = await _read_body(receive)
    if body is None:
        return None  # the client went away before sending all of it
    try:
        out.check_body(body)
    except out.BodyProblem as problem:
        await _reply(envelope("INVALID_REQUEST", problem.message, problem.details), scope, receive, send)
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
