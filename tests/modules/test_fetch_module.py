"""The host half of `fetch` against real servers on 127.0.0.1 (and, for what needs a public
address, real servers in a network namespace of their own): what it sends, what it returns,
its caps, timeouts and cancellation, and that it leaves no connection behind."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supervisor.modules.errors import ModuleError
from supervisor.modules.fetch import (
    MAX_RESPONSE_BYTES,
    Fetcher,
    FetchPolicy,
    FetchResponse,
    Origin,
    parse_origin,
    system_resolve,
)

SECRET = "s3cr3t-token-value"
Route = Callable[["_Handler"], None]


# --- a real server ----------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Server:
    host: str = "127.0.0.1"
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    peer_closed: threading.Event = field(default_factory=threading.Event)
    body_started: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    _httpd: http.server.ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> Server:
        server = self

        class Bound(_Handler):
            owner = server

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Httpd(http.server.ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self._httpd = Httpd((self.host, port), Bound)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def wrap_tls(self, context: ssl.SSLContext) -> None:
        assert self._httpd is not None
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    owner: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.partition("?")[0]
        self.owner.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
        route = self.owner.routes.get(path)
        if route is None:
            self.reply(404, b"no such route")
        else:
            route(self)
        self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def reply(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def query(self, name: str) -> str:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)[name][0]

    def wait_for_close(self) -> None:
        """Blocks until the client closes its end (it sends nothing more, so a read returning
        nothing means that), then tells the test."""
        self.connection.settimeout(20)
        try:
            closed = self.connection.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except OSError:
            closed = False
        if closed:
            self.owner.peer_closed.set()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server().start()
    yield running
    running.stop()


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def policy(*origins: Origin, **limits: int) -> FetchPolicy:
    values = {"max_response_bytes": 1024 * 1024, "timeout_ms": 5000, "max_requests": 50, **limits}
    return FetchPolicy(origins=origins, **values)


async def fetch_once(fetch_policy: FetchPolicy, url: str, **kwargs: Any) -> FetchResponse:
    fetcher = Fetcher(fetch_policy)
    try:
        fetcher.begin_execution()
        return await fetcher.fetch(url, deadline=time.monotonic() + 30, **kwargs)
    finally:
        await fetcher.aclose()


def fails(fetch_policy: FetchPolicy, url: str, **kwargs: Any) -> ModuleError:
    with pytest.raises(ModuleError) as caught:
        run(fetch_once(fetch_policy, url, **kwargs))
    assert SECRET not in caught.value.message
    return caught.value


def echo(handler: _Handler) -> None:
    handler.reply(200, json.dumps({"method": handler.command, "path": handler.path}).encode(),
                  [("Content-Type", "application/json"), ("X-Reply", "yes")])


# --- origins and policies ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("HTTP://ExAmple.COM", ("http", "example.com", 80)),
    ("https://example.com:443/", ("https", "example.com", 443)),
    ("https://API.example.com.:8443", ("https", "api.example.com", 8443)),
    ("http://bücher.de", ("http", "xn--bcher-kva.de", 80)),
    ("http://2130706433:8080", ("http", "127.0.0.1", 8080)),
    ("http://[::FFFF:127.0.0.1]:81", ("http", "::ffff:7f00:1", 81)),
    ("http://[0:0:0:0:0:0:0:1]", ("http", "::1", 80)),
    ("http://localhost:", ("http", "localhost", 80)),
])
def test_parse_origin_is_canonical(text: str, expected: tuple[str, str, int]) -> None:
    origin = parse_origin(text)
    assert (origin.scheme, origin.host, origin.port) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("http://example.com/path", "only scheme://host[:port], without a path, query or fragment"),
    ("http://example.com?q", "only scheme://host[:port], without a path, query or fragment"),
    ("http://example.com#f", "only scheme://host[:port], without a path, query or fragment"),
    ("http://user@example.com", "a URL with credentials (user@host) is not allowed"),
    ("ftp://example.com", "the scheme ftp: is not allowed (only http: and https:)"),
    ("http://example.com:70000", "the port is out of range (1 to 65535)"),
    ("example.com", "the URL is not absolute (scheme://host/...)"),
    ("http://0.0.0.0", "0.0.0.0 does not name one host"),
    ("http://[::]", ":: does not name one host"),
])
def test_parse_origin_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_origin(text)
    assert str(caught.value) == f"origin {text!r}: {why}"


@pytest.mark.parametrize(("headers", "why"), [
    ({"Host": "x"}, "the header Host cannot be injected"),
    ({"Bad Name": "x"}, "a header name is not an HTTP token"),
    ({"X-Key": "a\r\nX-Other: b"}, "the value of header X-Key holds an invalid character"),
])
def test_parse_origin_refuses_bad_injected_headers(headers: dict[str, str], why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_origin("https://api.example.com", headers)
    assert str(caught.value) == f"origin 'https://api.example.com': {why}"


def test_an_origin_never_shows_its_secret() -> None:
    origin = parse_origin("https://api.example.com", {"Authorization": f"Bearer {SECRET}"})
    fetch_policy = policy(origin)
    assert SECRET not in repr(origin) + str(origin) + repr(fetch_policy)
    assert origin == parse_origin("HTTPS://API.EXAMPLE.COM:443")  # the headers are no part of equality


@pytest.mark.parametrize(("field_name", "value"), [
    ("max_response_bytes", MAX_RESPONSE_BYTES + 1), ("max_response_bytes", -1), ("timeout_ms", 0),
    ("max_requests", -1), ("max_redirects", 21), ("max_request_bytes", -5),
])
def test_policy_ceilings(field_name: str, value: int) -> None:
    values: dict[str, Any] = {"max_response_bytes": 1000, "timeout_ms": 1000, "max_requests": 1, field_name: value}
    with pytest.raises(ValueError, match=f"^{field_name} must be an integer from"):
        FetchPolicy(origins=(), **values)


# --- what is sent and returned ----------------------------------------------------------------

def test_get_returns_the_servers_answer_and_sends_the_origins_headers(server: Server) -> None:
    server.routes["/hello"] = echo
    origin = parse_origin(server.origin, {"X-Api-Key": SECRET})
    response = run(fetch_once(policy(origin), f"{server.origin}/hello?a=1#frag",
                              headers=[("X-Mine", " mine ")]))
    assert (response.status, response.status_text, response.redirected) == (200, "OK", False)
    assert response.url == f"{server.origin}/hello?a=1"
    assert json.loads(response.body) == {"method": "GET", "path": "/hello?a=1"}
    assert ("x-reply", "yes") in response.headers and ("content-type", "application/json") in response.headers
    assert SECRET not in repr(response.headers)
    sent = dict(server.seen[0].headers)
    assert sent["Host"] == f"127.0.0.1:{server.port}"
    assert (sent["X-Api-Key"], sent["X-Mine"], sent["Accept-Encoding"]) == (SECRET, "mine", "gzip, deflate")


def test_post_sends_its_body(server: Server) -> None:
    server.routes["/in"] = echo
    response = run(fetch_once(policy(parse_origin(server.origin)), f"{server.origin}/in", method="post",
                              headers=[("Content-Type", "text/plain")], body=b"payload"))
    assert json.loads(response.body)["method"] == "POST"
    assert (server.seen[0].method, server.seen[0].body) == ("POST", b"payload")


@pytest.mark.parametrize("spelling", ["0x7f000001", "2130706433", "127.1", "0177.0.0.1", "127.0.0.1."])
def test_other_spellings_of_an_allowed_address_are_that_origin(server: Server, spelling: str) -> None:
    server.routes["/"] = echo
    response = run(fetch_once(policy(parse_origin(server.origin)), f"http://{spelling}:{server.port}/./a/../"))
    assert (response.status, response.url) == (200, f"{server.origin}/")
    assert server.seen[0].path == "/"


def test_no_cookie_is_kept_between_calls(server: Server) -> None:
    server.routes["/set"] = lambda h: h.reply(200, b"", [("Set-Cookie", "session=abc; Path=/")])
    server.routes["/check"] = echo

    async def both() -> FetchResponse:
        fetcher = Fetcher(policy(parse_origin(server.origin)))
        try:
            first = await fetcher.fetch(f"{server.origin}/set", deadline=time.monotonic() + 30)
            assert ("set-cookie", "session=abc; Path=/") in first.headers
            return await fetcher.fetch(f"{server.origin}/check", deadline=time.monotonic() + 30)
        finally:
            await fetcher.aclose()

    run(both())
    assert "Cookie" not in dict(server.seen[1].headers)


def test_proxy_variables_of_the_daemon_do_not_apply(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = Server().start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(name, proxy.origin)
        monkeypatch.delenv("NO_PROXY", raising=False)
        server.routes["/"] = echo
        assert run(fetch_once(policy(parse_origin(server.origin)), f"{server.origin}/")).status == 200
        assert proxy.seen == [] and len(server.seen) == 1
    finally:
        proxy.stop()


def test_latin1_header_values_are_sent_as_latin1(server: Server) -> None:
    server.routes["/"] = echo
    run(fetch_once(policy(parse_origin(server.origin)), f"{server.origin}/", headers=[("X-Name", "café")]))
    assert dict(server.seen[0].headers)["X-Name"] == "café"  # http.server reads fields as Latin-1


def test_one_fetcher_serves_executions_on_different_event_loops(server: Server) -> None:
    server.routes["/"] = echo
    fetcher = Fetcher(policy(parse_origin(server.origin)))

    async def once() -> int:
        fetcher.begin_execution()
        return (await fetcher.fetch(f"{server.origin}/", deadline=time.monotonic() + 30)).status

    assert [run(once()), run(once())] == [200, 200]
    run(fetcher.aclose())
    with pytest.raises(ModuleError) as caught:
        run(once())
    assert (caught.value.code, caught.value.message) == (
        "ERR_FETCH_CLOSED", f"fetch {server.origin}/: fetch is no longer available in this session")


# --- redirects ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "method", "expect_method", "expect_body"), [
    (301, "POST", "GET", b""), (302, "POST", "GET", b""), (303, "PUT", "GET", b""),
    (307, "POST", "POST", b"data"), (308, "PUT", "PUT", b"data"), (302, "DELETE", "DELETE", b""),
])
def test_redirect_methods_follow_the_fetch_standard(server: Server, status: int, method: str,
                                                    expect_method: str, expect_body: bytes) -> None:
    server.routes["/from"] = lambda h: h.reply(status, b"", [("Location", "/to")])
    server.routes["/to"] = echo
    body = None if method == "DELETE" else b"data"
    response = run(fetch_once(policy(parse_origin(server.origin)), f"{server.origin}/from", method=method,
                              headers=[("Content-Type", "text/plain")], body=body))
    assert (response.redirected, response.url) == (True, f"{server.origin}/to")
    last = server.seen[-1]
    assert (last.method, last.body) == (expect_method, expect_body)
    assert ("Content-Type" in dict(last.headers)) == (expect_method != "GET")


def test_each_origin_gets_only_its_own_injected_headers(server: Server) -> None:
    other = Server().start()
    try:
        other.routes["/end"] = echo
        server.routes["/start"] = lambda h: h.reply(302, b"", [("Location", f"{other.origin}/end")])
        fetch_policy = policy(parse_origin(server.origin, {"X-First-Key": SECRET}),
                              parse_origin(other.origin, {"X-Second-Key": "second"}))
        response = run(fetch_once(fetch_policy, f"{server.origin}/start",
                                  headers=[("Authorization", "Basic mine"), ("X-Mine", "1")]))
        assert (response.status, response.url) == (200, f"{other.origin}/end")
        first, second = dict(server.seen[0].headers), dict(other.seen[0].headers)
        assert (first["X-First-Key"], first["Authorization"]) == (SECRET, "Basic mine")
        assert "X-Second-Key" not in first
        assert second["X-Second-Key"] == "second" and second["X-Mine"] == "1"
        assert "X-First-Key" not in second and "Authorization" not in second
        assert SECRET not in json.dumps(second)
    finally:
        other.stop()


def test_a_redirect_without_location_is_the_answer(server: Server) -> None:
    server.routes["/r"] = lambda h: h.reply(302, b"moved?")
    response = run(fetch_once(policy(parse_origin(server.origin)), f"{server.origin}/r"))
    assert (response.status, response.body, response.redirected) == (302, b"moved?", False)


# --- caps ---------------------------------------------------------------------------------------

def _stream_until_closed(handler: _Handler) -> None:
    handler.send_response(200)
    handler.end_headers()  # no length: the body runs until the connection closes
    try:
        for _ in range(100_000):
            handler.wfile.write(b"x" * 4096)
            handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        handler.owner.peer_closed.set()


@pytest.mark.parametrize(("route", "code", "message"), [
    ("declared", "ERR_FETCH_RESPONSE_TOO_LARGE", "the response body exceeds 1000 bytes"),
    ("streamed", "ERR_FETCH_RESPONSE_TOO_LARGE", "the response body exceeds 1000 bytes"),
    ("bomb", "ERR_FETCH_RESPONSE_TOO_LARGE", "the response body exceeds 1000 bytes"),
    ("short", "ERR_FETCH_BAD_RESPONSE", "the server's response is not valid HTTP/1.1 or ends early"),
    ("corrupt", "ERR_FETCH_BAD_RESPONSE", "the gzip body is corrupt"),
    ("brotli", "ERR_FETCH_BAD_RESPONSE", "unsupported Content-Encoding br"),
])
def test_response_caps_and_bad_bodies(server: Server, route: str, code: str, message: str) -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    server.routes["/declared"] = lambda h: h.reply(200, b"y" * 5000)
    server.routes["/streamed"] = _stream_until_closed
    server.routes["/bomb"] = lambda h: h.reply(200, bomb, [("Content-Encoding", "gzip")])
    server.routes["/short"] = lambda h: h.reply(200, b"only ten b", [("Content-Length", "900")])
    server.routes["/corrupt"] = lambda h: h.reply(200, b"not gzip at all", [("Content-Encoding", "gzip")])
    server.routes["/brotli"] = lambda h: h.reply(200, b"\x1b\x00", [("Content-Encoding", "br")])
    error = fails(policy(parse_origin(server.origin), max_response_bytes=1000), f"{server.origin}/{route}")
    assert (error.code, error.message) == (code, f"fetch {server.origin}/{route}: {message}")
    if route == "streamed":
        assert server.peer_closed.wait(20), "the connection was not dropped at the cap"


def test_a_lying_short_content_length_gives_only_that_many_bytes(server: Server) -> None:
    server.routes["/lie"] = lambda h: h.reply(200, b"z" * 5000, [("Content-Length", "10")])
    response = run(fetch_once(policy(parse_origin(server.origin), max_response_bytes=1000), f"{server.origin}/lie"))
    assert response.body == b"z" * 10


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_bodies_are_decoded(server: Server, encoding: str) -> None:
    text = b"hello " * 100
    if encoding == "gzip":
        payload = gzip.compress(text)
    elif encoding == "deflate":
        payload = zlib.compress(text)
    else:
        squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        payload = squeezer.compress(text) + squeezer.flush()
    name = "deflate" if encoding == "raw-deflate" else encoding
    server.routes["/z"] = lambda h: h.reply(200, payload, [("Content-Encoding", name)])
    response = run(fetch_once(policy(parse_origin(server.origin), max_response_bytes=len(text)), f"{server.origin}/z"))
    assert response.body == text


def test_request_size_is_capped_before_sending(server: Server) -> None:
    server.routes["/in"] = echo
    error = fails(policy(parse_origin(server.origin), max_request_bytes=100), f"{server.origin}/in",
                  method="POST", body=b"b" * 200)
    assert (error.code, error.message) == ("ERR_FETCH_REQUEST_TOO_LARGE",
                                           f"fetch {server.origin}/in: the request exceeds 100 bytes")
    assert server.seen == []


def test_max_requests_counts_per_execution_and_hops_count(server: Server) -> None:
    server.routes["/ok"] = echo
    server.routes["/hop"] = lambda h: h.reply(302, b"", [("Location", "/ok")])

    async def scenario() -> list[str]:
        fetcher = Fetcher(policy(parse_origin(server.origin), max_requests=2))
        outcomes = []
        try:
            for execution in (["/ok", "/ok", "/ok"], ["/hop", "/ok"]):
                fetcher.begin_execution()
                for path in execution:
                    try:
                        await fetcher.fetch(f"{server.origin}{path}", deadline=time.monotonic() + 30)
                        outcomes.append("ok")
                    except ModuleError as exc:
                        outcomes.append(f"{exc.code}: {exc.message}")
        finally:
            await fetcher.aclose()
        return outcomes

    too_many = f"ERR_FETCH_TOO_MANY_REQUESTS: fetch {server.origin}/ok: more than 2 requests in this execution"
    assert run(scenario()) == ["ok", "ok", too_many, "ok", too_many]


# --- failures of the network ------------------------------------------------------------------

def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connecting is refused
        error = fails(policy(parse_origin(f"http://127.0.0.1:{port}")), f"http://127.0.0.1:{port}/x")
    assert (error.code, error.message) == (
        "ECONNREFUSED", f"fetch http://127.0.0.1:{port}/x: connect ECONNREFUSED 127.0.0.1:{port}")


@pytest.mark.timeout(60)  # hang guard: the system resolver answers .invalid at once
def test_a_name_that_does_not_resolve() -> None:
    error = fails(policy(parse_origin("http://nothing.invalid")), "http://nothing.invalid/")
    assert (error.code, error.message) == (
        "ENOTFOUND", "fetch http://nothing.invalid/: getaddrinfo ENOTFOUND nothing.invalid")


def _trickle(handler: _Handler) -> None:
    """A byte every 50 ms, forever: no single read ever waits long, so only a bound on the
    whole call stops it."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.flush()
    handler.owner.body_started.set()
    for _ in range(2000):
        try:
            handler.wfile.write(b".")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.owner.peer_closed.set()
            return
        readable, _, _ = select.select([handler.connection], [], [], 0.05)
        if readable and handler.connection.recv(1) == b"":
            handler.owner.peer_closed.set()
            return


@pytest.mark.parametrize(("timeout_ms", "deadline_s", "message"), [
    (400, 30.0, "timed out after 400 ms"),
    (30_000, 0.4, "stopped at the execution's time limit"),
])
def test_a_trickling_server_is_stopped_and_its_socket_closed(server: Server, timeout_ms: int, deadline_s: float,
                                                            message: str) -> None:
    server.routes["/slow"] = _trickle

    async def scenario() -> ModuleError:
        fetcher = Fetcher(policy(parse_origin(server.origin), timeout_ms=timeout_ms))
        started = time.monotonic()
        try:
            with pytest.raises(ModuleError) as caught:
                await fetcher.fetch(f"{server.origin}/slow", deadline=started + deadline_s)
            assert time.monotonic() - started >= 0.4  # a lower bound: it cannot stop before its limit
            return caught.value
        finally:
            await fetcher.aclose()

    error = run(scenario())
    assert (error.code, error.message) == ("ETIMEDOUT", f"fetch {server.origin}/slow: {message}")
    assert server.peer_closed.wait(20), "the server still holds an open connection"


def test_cancelled_mid_body_closes_the_socket_and_leaves_nothing_running(server: Server) -> None:
    def partial(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"first part")
        handler.wfile.flush()
        handler.owner.body_started.set()
        handler.wait_for_close()

    server.routes["/part"] = partial

    async def scenario() -> int:
        fetcher = Fetcher(policy(parse_origin(server.origin)))
        task = asyncio.create_task(fetcher.fetch(f"{server.origin}/part", deadline=time.monotonic() + 30))
        await asyncio.to_thread(server.body_started.wait, 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        others = len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
        await fetcher.aclose()
        assert server.peer_closed.wait(20), "the cancelled fetch left its connection open"
        return others

    assert run(scenario()) == 0


def test_a_completed_fetch_keeps_no_connection(server: Server) -> None:
    def then_wait(handler: _Handler) -> None:
        handler.reply(200, b"done")
        handler.wfile.flush()
        handler.wait_for_close()

    server.routes["/w"] = then_wait

    async def scenario() -> bytes:
        fetcher = Fetcher(policy(parse_origin(server.origin)))
        response = await fetcher.fetch(f"{server.origin}/w", deadline=time.monotonic() + 30)
        assert server.peer_closed.wait(20), "the connection was kept after the call returned"
        await fetcher.aclose()
        return response.body

    assert run(scenario()) == b"done"


# --- a public address, TLS and rebinding, in a network namespace of their own -------------------
#
# A name must resolve to a public address to be fetched at all, and the tests must never reach
# the internet: a fresh network namespace has only its loopback device, to which the test adds
# the "public" address 1.2.3.4, so the servers on it are real and nothing leaves the machine.

NETNS_ADDRESS = "1.2.3.4"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_certificates(folder: Path) -> None:
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA",
             cwd=folder)
    _openssl("req", *key, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=api.test", cwd=folder)
    (folder / "leaf.ext").write_text("subjectAltName=DNS:api.test\nbasicConstraints=CA:FALSE\n"
                                     "authorityKeyIdentifier=keyid,issuer\nkeyUsage=digitalSignature\n"
                                     "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext", cwd=folder)


def _in_netns(folder: Path) -> dict[str, Any]:
    """Runs in the namespace: real servers on 1.2.3.4 and 127.0.0.1, the Fetcher against them."""
    public = Server(host=NETNS_ADDRESS).start()
    private = Server(host="127.0.0.1").start(public.port)  # where a rebinding would land
    tls = Server(host=NETNS_ADDRESS).start()
    public.routes["/"] = lambda h: h.reply(200, b"public")
    private.routes["/"] = lambda h: h.reply(200, b"private")
    tls.routes["/"] = echo
    sni: list[str | None] = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(folder / "leaf.pem", folder / "leaf.key")

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name)

    server_context.sni_callback = record_sni
    tls.wrap_tls(server_context)
    client_context = ssl.create_default_context(cafile=str(folder / "ca.pem"))

    answers: list[list[str]] = []

    def resolve(host: str, port: int) -> list[str]:
        if host == "rebind.test":  # the attacker's DNS: public when checked, private after
            answer = [NETNS_ADDRESS] if not answers else ["127.0.0.1"]
        elif host in ("api.test", "wrong.test"):
            answer = [NETNS_ADDRESS]
        else:
            answer = system_resolve(host, port)
        answers.append(answer)
        return answer

    fetch_policy = policy(parse_origin(f"http://rebind.test:{public.port}"),
                          parse_origin(f"https://api.test:{tls.port}", {"X-Key": SECRET}),
                          parse_origin(f"https://wrong.test:{tls.port}"))

    async def scenario() -> dict[str, Any]:
        fetcher = Fetcher(fetch_policy, resolve=resolve, ssl_context=client_context)
        found: dict[str, Any] = {}
        try:
            for name, url in (("rebind_first", f"http://rebind.test:{public.port}/"),
                              ("rebind_second", f"http://rebind.test:{public.port}/"),
                              ("tls", f"https://api.test:{tls.port}/"),
                              ("tls_wrong_name", f"https://wrong.test:{tls.port}/")):
                try:
                    response = await fetcher.fetch(url, deadline=time.monotonic() + 20)
                    found[name] = {"status": response.status, "body": response.body.decode()}
                except ModuleError as exc:
                    found[name] = {"code": exc.code, "message": exc.message}
        finally:
            await fetcher.aclose()
        return found

    found = run(scenario())
    found["answers"] = answers
    found["private_requests"] = len(private.seen)
    found["sni"] = sni
    found["tls_headers"] = dict(tls.seen[0].headers) if tls.seen else {}
    found["tls_port"] = tls.port
    found["public_port"] = public.port
    return found


@pytest.mark.timeout(120)  # hang guard: openssl key generation and a subprocess
def test_public_address_tls_and_rebinding_in_a_network_namespace(tmp_path: Path) -> None:
    assert shutil.which("unshare") and shutil.which("ip") and shutil.which("openssl"), \
        "this test needs unshare, ip and openssl (util-linux, iproute2, openssl)"
    _make_certificates(tmp_path)
    setup = f"ip link set lo up && ip addr add {NETNS_ADDRESS}/32 dev lo && exec \"$0\" \"$@\""
    child = subprocess.run(["unshare", "--net", "sh", "-c", setup, sys.executable, __file__, "--netns", str(tmp_path)],
                           capture_output=True, text=True, timeout=100)
    assert child.returncode == 0, child.stderr
    found = json.loads(child.stdout)
    port, tls_port = found["public_port"], found["tls_port"]
    # The first answer was checked and connected to; the name was not resolved again for the
    # connection (one answer per fetch), and the rebinding answer of the next fetch is refused.
    assert found["rebind_first"] == {"status": 200, "body": "public"}
    assert found["rebind_second"] == {
        "code": "ERR_FETCH_ADDRESS",
        "message": f"fetch http://rebind.test:{port}/: rebind.test resolves to a refused address (loopback)"}
    assert found["answers"][:2] == [[NETNS_ADDRESS], ["127.0.0.1"]]
    assert found["private_requests"] == 0
    # TLS goes to the checked address with the name's SNI, Host header and certificate check.
    assert found["tls"]["status"] == 200
    assert found["sni"][0] == "api.test"
    assert found["tls_headers"]["Host"] == f"api.test:{tls_port}" and found["tls_headers"]["X-Key"] == SECRET
    assert found["tls_wrong_name"] == {
        "code": "ERR_TLS_CERT_ALTNAME_INVALID",
        "message": f"fetch https://wrong.test:{tls_port}/: the certificate of wrong.test is not valid for it or "
                   "not trusted"}


if __name__ == "__main__" and sys.argv[1:2] == ["--netns"]:
    sys.stdout.write(json.dumps(_in_netns(Path(sys.argv[2]))))
