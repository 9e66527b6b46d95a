"""A small synchronous client of the vm-system daemon's REST API (docs/api.md, /api/v1).

    from supervisor.adapters.client import Client, ApiError, DaemonUnreachable
    with Client("http://127.0.0.1:3210", token=None) as api:
        template = api.create_template("demo")
        session = api.create_session(template["id"], "ws", "abc123", "/abs/worktree")
        execution = api.repl(session["id"], "console.log('hi'); 1 + 1")
        for event in api.iter_event_stream(execution["id"]):
            ...

One method per route, returning the decoded JSON. An error envelope raises `ApiError(code,
message, details, status)`; a daemon that cannot be reached (refused, unknown host, timed out)
raises `DaemonUnreachable`. `run(..., on_event=callback)` hands over a one-shot run's events
as they happen (POST /run as server-sent events). Importing this module is cheap: httpx is imported when the first
client is made, so `vm-system --help` never pays for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from vocabulary import TERMINAL_EVENT_TYPES

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:3210"
API_PREFIX = "/api/v1"
# A plain request (CRUD, ops) should answer at once; a request that runs JavaScript (an
# execution, a session's startup files, a close that waits for a cancellation) answers when
# the script ends, which the daemon's wall-clock ceiling bounds.
DEFAULT_TIMEOUT_S = 30.0
EXECUTION_TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 5.0


class ClientError(Exception):
    """Base of the client's errors; `one_line()` is what the CLI prints after its error
    prefix."""

    def one_line(self) -> str:
        return str(self)


class ApiError(ClientError):
    """The daemon answered with an error envelope (or, from something in between, a non-JSON
    error: then `code` is `HTTP_<status>`)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None,
                 status: int = 0, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}
        self.status = status
        self.request_id = request_id

    def one_line(self) -> str:
        line = f"{self.code}: {' '.join(self.message.split())}"
        if self.status >= 500 and self.request_id:
            # The daemon logs the details of a 500 under this id, never sends them.
            line += f" (request id {self.request_id})"
        return line


class DaemonUnreachable(ClientError):
    """No answer from the daemon: nothing listens, the host is unknown, or it timed out."""

    def __init__(self, base_url: str, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason
        self.timed_out = timed_out

    def one_line(self) -> str:
        if self.timed_out:
            return (f"the vm-system daemon at {self.base_url} did not answer in time "
                    f"({self.reason})")
        return (f"no vm-system daemon at {self.base_url} ({self.reason}); "
                f"start one with `vm-system serve`, or point --server-url / VM_SYSTEM_URL at it")


def check_base_url(url: str) -> str:
    """The daemon's base URL without a trailing slash; ValueError when it is not http(s)://host."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # reading it raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"invalid server URL {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid server URL {url!r}: expected http://HOST:PORT")
    if parts.query or parts.fragment:
        raise ValueError(f"invalid server URL {url!r}: no query or fragment expected")
    return url.rstrip("/")


# ----- server-sent events ------------------------------------------------------------------


@dataclass(frozen=True)
class SseMessage:
    """One dispatched server-sent event: `event` defaults to "message", `id` is the last id
    seen on the stream (it carries over, as the spec says)."""

    event: str
    data: str
    id: str | None


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Server-sent events from the lines of a stream (without their line ends), following the
    WHATWG event-stream rules: `:` starts a comment, `field: value` loses one space after the
    colon, several `data` lines join with newlines, a blank line dispatches, an event with no
    data is dropped, an unfinished event at the end of the stream is dropped."""
    event_type = ""
    data: list[str] = []
    has_data = False
    last_id: str | None = None
    first = True
    for line in lines:
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        if line == "":
            if has_data:
                yield SseMessage(event_type or "message", "\n".join(data), last_id)
            event_type, data, has_data = "", [], False
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data.append(value)
            has_data = True
        elif name == "id" and "\0" not in value:
            last_id = value
        # `retry` and unknown fields: ignored (we reconnect on our own terms).


def _split_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Lines of a text stream split on CRLF, LF or CR (as the SSE spec requires), across chunks."""
    buffer = ""
    pending_cr = False
    for chunk in chunks:
        if not chunk:
            continue
        if pending_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        pending_cr = False
        buffer += chunk
        start = 0
        i = 0
        n = len(buffer)
        while i < n:
            ch = buffer[i]
            if ch == "\n" or ch == "\r":
                yield buffer[start:i]
                if ch == "\r":
                    if i + 1 < n:
                        if buffer[i + 1] == "\n":
                            i += 1
                    else:
                        pending_cr = True
                start = i + 1
            i += 1
        buffer = buffer[start:]
    if buffer:
        yield buffer


def _events_in(response: httpx.Response) -> Iterator[tuple[str | None, Any]]:
    """The (event id, decoded event) pairs of an event stream, as they arrive."""
    for message in parse_sse(_split_lines(response.iter_text())):
        try:
            event = json.loads(message.data)
        except ValueError as exc:
            raise ApiError("INVALID_RESPONSE", f"an event of the stream is not "
                           f"JSON: {message.data[:80]!r}") from exc
        yield message.id, event


# ----- the client --------------------------------------------------------------------------


def _seg(value: str) -> str:
    """A path segment: everything escaped, so an id or a name can never change the route."""
    return quote(str(value), safe="")


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class Client:
    def __init__(self, base_url: str = DEFAULT_URL, token: str | None = None, *,
                 timeout: float | None = None, connect_timeout: float = CONNECT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        """`timeout` (seconds) applies to every request when given; by default plain requests
        wait DEFAULT_TIMEOUT_S and requests that run JavaScript EXECUTION_TIMEOUT_S."""
        import httpx

        self.base_url = check_base_url(base_url)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        headers = {"Accept": "application/json", "User-Agent": "vm-system-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url + API_PREFIX, headers=headers,
                                  transport=transport, follow_redirects=False, trust_env=False)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ----- plumbing -----

    def _timeouts(self, long: bool) -> httpx.Timeout:
        import httpx

        read = self._timeout if self._timeout is not None else (
            EXECUTION_TIMEOUT_S if long else DEFAULT_TIMEOUT_S)
        return httpx.Timeout(read, connect=min(self._connect_timeout, read))

    def _unreachable(self, exc: Exception) -> DaemonUnreachable:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            kind = {httpx.ConnectTimeout: "connect timeout", httpx.ReadTimeout: "read timeout",
                    httpx.WriteTimeout: "write timeout", httpx.PoolTimeout: "pool timeout"}
            return DaemonUnreachable(self.base_url, kind.get(type(exc), "timeout"),
                                     timed_out=not isinstance(exc, httpx.ConnectTimeout))
        text = str(exc) or type(exc).__name__
        lowered = text.lower()
        if "refused" in lowered:
            reason = "connection refused"
        elif "name or service not known" in lowered or "nodename nor servname" in lowered \
                or "getaddrinfo" in lowered or "name resolution" in lowered:
            reason = "unknown host"
        elif isinstance(exc, httpx.RemoteProtocolError):
            reason = f"the connection broke: {text}"
        else:
            reason = text
        return DaemonUnreachable(self.base_url, reason)

    def _request(self, method: str, path: str, *, body: Any = None,
                 params: dict[str, Any] | None = None, long: bool = False) -> Any:
        import httpx

        params = _drop_none(params or {})
        try:
            response = self._http.request(
                method, path, params=params or None, timeout=self._timeouts(long),
                content=None if body is None else json.dumps(body),
                headers=None if body is None else {"Content-Type": "application/json"})
        except (httpx.TransportError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        request_id = response.headers.get("x-request-id")
        try:
            doc = response.json() if response.content else None
        except ValueError:
            doc = None
            if response.is_success:
                raise ApiError("INVALID_RESPONSE", "the daemon answered with something that is "
                               "not JSON", status=response.status_code, request_id=request_id) from None
        if response.is_success:
            return doc
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            details = error.get("details")
            raise ApiError(error["code"], str(error.get("message", "")),
                           details if isinstance(details, dict) else {},
                           status=response.status_code, request_id=request_id)
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        raise ApiError(f"HTTP_{response.status_code}", text or "unexpected answer",
                       status=response.status_code, request_id=request_id)

    # ----- ops -----

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    def runtime_summary(self) -> dict[str, Any]:
        return self._request("GET", "/runtime/summary")

    # ----- templates -----

    def create_template(self, name: str, engine: str | None = None) -> dict[str, Any]:
        return self._request("POST", "/templates", body=_drop_none({"name": name, "engine": engine}))

    def list_templates(self) -> list[dict[str, Any]]:
        return self._request("GET", "/templates")

    def get_template(self, template_id: str) -> dict[str, Any]:
        return self._request("GET", f"/templates/{_seg(template_id)}")

    def delete_template(self, template_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/templates/{_seg(template_id)}")

    def get_settings(self, template_id: str) -> dict[str, Any]:
        return self._request("GET", f"/templates/{_seg(template_id)}/settings")

    def patch_settings(self, template_id: str, *, limits: dict[str, Any] | None = None,
                       runtime: dict[str, Any] | None = None,
                       resolver: dict[str, Any] | None = None) -> dict[str, Any]:
        body = _drop_none({"limits": limits, "runtime": runtime, "resolver": resolver})
        return self._request("PATCH", f"/templates/{_seg(template_id)}/settings", body=body)

    def add_capability(self, template_id: str, kind: str, name: str, *,
                       enabled: bool | None = None,
                       config: dict[str, Any] | None = None) -> dict[str, Any]:
        body = _drop_none({"kind": kind, "name": name, "enabled": enabled, "config": config})
        return self._request("POST", f"/templates/{_seg(template_id)}/capabilities", body=body)

    def list_capabilities(self, template_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/templates/{_seg(template_id)}/capabilities")

    def delete_capability(self, template_id: str, capability_id: str) -> Any:
        return self._request(
            "DELETE", f"/templates/{_seg(template_id)}/capabilities/{_seg(capability_id)}")

    def add_startup_file(self, template_id: str, path: str, *, order_index: int | None = None,
                         mode: str | None = None) -> dict[str, Any]:
        body = _drop_none({"path": path, "order_index": order_index, "mode": mode})
        return self._request("POST", f"/templates/{_seg(template_id)}/startup-files", body=body)

    def list_startup_files(self, template_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/templates/{_seg(template_id)}/startup-files")

    def delete_startup_file(self, template_id: str, startup_file_id: str) -> Any:
        return self._request(
            "DELETE", f"/templates/{_seg(template_id)}/startup-files/{_seg(startup_file_id)}")

    def add_module(self, template_id: str, name: str) -> dict[str, Any]:
        return self._request("POST", f"/templates/{_seg(template_id)}/modules", body={"name": name})

    def list_modules(self, template_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/templates/{_seg(template_id)}/modules")

    def remove_module(self, template_id: str, name: str) -> Any:
        return self._request("DELETE", f"/templates/{_seg(template_id)}/modules/{_seg(name)}")

    def add_library(self, template_id: str, name: str) -> dict[str, Any]:
        return self._request("POST", f"/templates/{_seg(template_id)}/libraries", body={"name": name})

    def list_libraries(self, template_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/templates/{_seg(template_id)}/libraries")

    def remove_library(self, template_id: str, name: str) -> Any:
        return self._request("DELETE", f"/templates/{_seg(template_id)}/libraries/{_seg(name)}")

    # ----- the package store -----

    def add_package(self, spec: str, *, with_deps: bool = False) -> list[dict[str, Any]]:
        # Fetching from the registry (a closure, with its dependencies) may take a while.
        return self._request("POST", "/libraries", body={"name": spec, "with_deps": with_deps}, long=True)

    def list_packages(self) -> list[dict[str, Any]]:
        return self._request("GET", "/libraries")

    def get_package(self, name: str, version: str) -> dict[str, Any]:
        return self._request("GET", f"/libraries/{_seg(name)}/{_seg(version)}")

    def remove_package(self, name: str, version: str) -> dict[str, Any]:
        return self._request("DELETE", f"/libraries/{_seg(name)}/{_seg(version)}")

    def verify_packages(self) -> dict[str, Any]:
        return self._request("POST", "/libraries/verify", long=True)

    # ----- sessions -----

    def create_session(self, template_id: str, workspace_id: str, base_commit_oid: str,
                       worktree_path: str) -> dict[str, Any]:
        body = {"template_id": template_id, "workspace_id": workspace_id,
                "base_commit_oid": base_commit_oid, "worktree_path": worktree_path}
        return self._request("POST", "/sessions", body=body, long=True)

    def list_sessions(self, status: str | None = None) -> list[dict[str, Any]]:
        return self._request("GET", "/sessions", params={"status": status})

    def get_session(self, session_id: str) -> dict[str, Any]:
        return self._request("GET", f"/sessions/{_seg(session_id)}")

    def close_session(self, session_id: str) -> dict[str, Any]:
        return self._request("POST", f"/sessions/{_seg(session_id)}/close", long=True)

    def delete_session(self, session_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/sessions/{_seg(session_id)}", long=True)

    # ----- executions -----

    def repl(self, session_id: str, input: str) -> dict[str, Any]:
        return self._request("POST", "/executions/repl",
                             body={"session_id": session_id, "input": input}, long=True)

    def run_file(self, session_id: str, path: str, *, args: dict[str, Any] | None = None,
                 env: dict[str, Any] | None = None) -> dict[str, Any]:
        body = _drop_none({"session_id": session_id, "path": path, "args": args, "env": env})
        return self._request("POST", "/executions/run-file", body=body, long=True)

    def run(self, *, code: str | None = None, path: str | None = None,
            template_id: str | None = None, limits: dict[str, Any] | None = None,
            on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """A one-shot run; the finished execution. With `on_event`, each of its events (the
        decoded event JSON) is handed over as the daemon records it."""
        body = _drop_none({"code": code, "path": path, "template_id": template_id, "limits": limits})
        if on_event is None:
            return self._request("POST", "/run", body=body, long=True)
        return self._run_streamed(body, on_event)

    def _run_streamed(self, body: dict[str, Any],
                      on_event: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        import httpx

        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        last: str | None = None
        try:
            # No read timeout, as for any event stream: the daemon sends a heartbeat instead.
            timeout = httpx.Timeout(None, connect=self._connect_timeout)
            with self._http.stream("POST", "/run", content=json.dumps(body), headers=headers,
                                   timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    self._decode(response)
                location = response.headers.get("location", "")
                if not response.headers.get("content-type", "").startswith("text/event-stream") \
                        or "/executions/" not in location:
                    response.read()
                    raise ApiError("INVALID_RESPONSE", "the daemon did not answer the run as an "
                                   "event stream", status=response.status_code,
                                   request_id=response.headers.get("x-request-id"))
                execution_id = location.rsplit("/", 1)[-1]
                try:
                    for message_id, event in _events_in(response):
                        last = message_id if message_id is not None else last
                        on_event(event)
                except (httpx.TransportError, OSError):
                    pass  # resumed below from the last event seen, as any event stream
        except (httpx.TransportError, OSError) as exc:
            raise self._unreachable(exc) from exc
        execution = self.get_execution(execution_id)
        if execution.get("status") == "running":
            # The stream broke (or ended early): the rest of the events from where it stopped.
            for event in self.iter_event_stream(execution_id, last_event_id=last):
                on_event(event)
            execution = self.get_execution(execution_id)
        return execution

    def list_executions(self, session_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self._request("GET", "/executions", params={"session_id": session_id, "limit": limit})

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        return self._request("GET", f"/executions/{_seg(execution_id)}")

    def list_events(self, execution_id: str, after_seq: int | None = None) -> list[dict[str, Any]]:
        return self._request("GET", f"/executions/{_seg(execution_id)}/events",
                             params={"after_seq": after_seq})

    def iter_event_stream(self, execution_id: str, last_event_id: int | str | None = None, *,
                          reconnects: int = 3) -> Iterator[dict[str, Any]]:
        """The execution's events as they happen (GET .../events/stream), each the decoded event
        JSON, starting after `last_event_id` (a seq). The generator ends when the server closes
        the stream, which it does after the terminal event. A stream that breaks before the
        terminal event is resumed from the last seq seen (`Last-Event-ID`), at most `reconnects`
        times in a row."""
        import httpx

        path = f"/executions/{_seg(execution_id)}/events/stream"
        last = None if last_event_id is None else str(last_event_id)
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last is not None:
                headers["Last-Event-ID"] = last
            # No read timeout: a long script may stay silent for a long time.
            timeout = httpx.Timeout(None, connect=self._connect_timeout)
            finished = False
            try:
                with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                    if not response.is_success:
                        response.read()
                        self._decode(response)
                    for message_id, event in _events_in(response):
                        if message_id is not None:
                            last = message_id
                        failures = 0
                        yield event
                        if isinstance(event, dict) and event.get("type") in TERMINAL_EVENT_TYPES:
                            finished = True
                    return  # the server closed the stream: the execution is over
            except (httpx.TransportError, OSError) as exc:
                if finished:
                    return
                connected_before = isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError))
                failures += 1
                if not connected_before or failures > reconnects:
                    raise self._unreachable(exc) from exc
                time.sleep(min(0.2 * failures, 1.0))
