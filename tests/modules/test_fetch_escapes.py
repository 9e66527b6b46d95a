"""Attempts to make `fetch` reach what its policy does not allow, each with the exact error the
script sees. The policy allows one real server by its address (`http://127.0.0.1:P`, with a
secret injected), `localhost` on that port (a name: it resolves for real, to loopback), and a
few names whose DNS answers the test's resolver gives (wrapping the real one). No case may
reach any server but the allowed one, nor show the secret or a private address."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from supervisor.modules.errors import ModuleError
from supervisor.modules.fetch import Fetcher, FetchPolicy, parse_origin, system_resolve

SECRET = "top-secret-injected-value"

# Names the policy allows, and the private answers their (attacker's) DNS gives.
ANSWERS = {
    "mixed.test": ["93.184.215.14", "10.1.2.3"],
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "cgnat.test": ["100.64.0.1"],
    "ula.test": ["fd00::1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.test": ["2002:c0a8:101::1"],
    "rebind.test": ["192.168.1.1"],
}


def resolve(host: str, port: int) -> list[str]:
    return ANSWERS[host] if host in ANSWERS else system_resolve(host, port)


@dataclass
class Target:
    port: int
    closed_port: int
    paths: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            split = urllib.parse.urlsplit(self.path)
            if split.path == "/go":
                location = urllib.parse.parse_qs(split.query)["to"][0]
                self.send_response(302)
                self.send_header("Location", location)
            elif split.path == "/loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        state = Target(httpd.server_address[1], unused.getsockname()[1], seen)
        yield state
    httpd.shutdown()
    httpd.server_close()


def _policy(t: Target) -> FetchPolicy:
    origins = [parse_origin(f"http://127.0.0.1:{t.port}", {"X-Secret": SECRET}),
               parse_origin(f"http://localhost:{t.port}")]
    origins += [parse_origin(f"http://{name}:{t.port}") for name in ANSWERS]
    return FetchPolicy(origins=tuple(origins), max_response_bytes=10_000, timeout_ms=5000, max_requests=100)


def _attempt(t: Target, url: str, **kwargs: Any) -> ModuleError:
    async def go() -> ModuleError:
        fetcher = Fetcher(_policy(t), resolve=resolve)
        try:
            with pytest.raises(ModuleError) as caught:
                await fetcher.fetch(url, deadline=time.monotonic() + 20, **kwargs)
            return caught.value
        finally:
            await fetcher.aclose()
    before = len(t.paths)
    error = asyncio.run(go())
    reached = t.paths[before:]
    assert all(path.startswith(("/go", "/loop")) for path in reached), f"an escape reached {reached}"
    assert SECRET not in error.message
    if error.code == "ERR_FETCH_ADDRESS":  # the refused class is named, never the address the DNS gave
        assert not any(address in error.message for answer in ANSWERS.values() for address in answer)
    return error


def _filled(text: str, t: Target) -> str:
    return text.replace("{P}", str(t.port)).replace("{Q}", str(t.closed_port))


ORIGIN = "ERR_FETCH_ORIGIN"
URL = "ERR_INVALID_URL"

# (the script's URL, the code, what follows "fetch <url>: ")
DIRECT = [
    # Deno CVE-2026-49411's numeric forms of 127.0.0.1: one address, whatever the spelling
    ("http://2130706433:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://0x7f000001:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://0177.0.0.1:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://0x7f.0.0.1:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://127.1:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://127.0.0.1.:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://%31%32%37.0.0.1:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://\uff11\uff12\uff17\u3002\uff10.\uff10.\uff11:{Q}/", ORIGIN,
     "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://2852039166/latest/meta-data/", ORIGIN, "the origin http://169.254.169.254 is not allowed"),
    ("http://0xa9fea9fe/", ORIGIN, "the origin http://169.254.169.254 is not allowed"),
    # IPv6 spellings of loopback and of private IPv4 are other hosts, never the allowed one
    ("http://[::ffff:127.0.0.1]:{P}/", ORIGIN, "the origin http://[::ffff:7f00:1]:{P} is not allowed"),
    ("http://[::ffff:7f00:1]:{P}/", ORIGIN, "the origin http://[::ffff:7f00:1]:{P} is not allowed"),
    ("http://[0:0:0:0:0:0:0:1]:{P}/", ORIGIN, "the origin http://[::1]:{P} is not allowed"),
    ("http://[::127.0.0.1]:{P}/", ORIGIN, "the origin http://[::7f00:1]:{P} is not allowed"),
    ("http://[2002:7f00:1::]:{P}/", ORIGIN, "the origin http://[2002:7f00:1::]:{P} is not allowed"),
    ("http://[64:ff9b::7f00:1]:{P}/", ORIGIN, "the origin http://[64:ff9b::7f00:1]:{P} is not allowed"),
    ("http://[::ffff:169.254.169.254]/", ORIGIN, "the origin http://[::ffff:a9fe:a9fe] is not allowed"),
    ("http://[fe80::1]:{P}/", ORIGIN, "the origin http://[fe80::1]:{P} is not allowed"),
    ("http://[::1%25lo]:{P}/", URL, "invalid URL: an IPv6 zone identifier is not allowed"),
    # the unspecified address reaches loopback on Linux
    ("http://0.0.0.0:{P}/", ORIGIN, "the origin http://0.0.0.0:{P} is not allowed"),
    ("http://0:{P}/", ORIGIN, "the origin http://0.0.0.0:{P} is not allowed"),
    ("http://[::]:{P}/", ORIGIN, "the origin http://[::]:{P} is not allowed"),
    # another scheme or port of the allowed host
    ("https://127.0.0.1:{P}/", ORIGIN, "the origin https://127.0.0.1:{P} is not allowed"),
    ("http://127.0.0.1:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://127.0.0.1/", ORIGIN, "the origin http://127.0.0.1 is not allowed"),
    # credentials and the confusions they allow
    ("http://allowed.example@127.0.0.1:{P}/", "ERR_FETCH_CREDENTIALS",
     "a URL with credentials (user@host) is not allowed"),
    ("http://user:pass@127.0.0.1:{P}/", "ERR_FETCH_CREDENTIALS", "a URL with credentials (user@host) is not allowed"),
    ("http://127.0.0.1:{P}@evil.test/", "ERR_FETCH_CREDENTIALS", "a URL with credentials (user@host) is not allowed"),
    ("http://127.0.0.1:{P}%2F@evil.test/", "ERR_FETCH_CREDENTIALS",
     "a URL with credentials (user@host) is not allowed"),
    # parsing leniencies a browser has and this parser refuses
    ("http:\\\\127.0.0.1:{P}/", URL, "invalid URL: the URL holds a backslash"),
    ("http://127.0.0.1:{P}\\@evil.test/", URL, "invalid URL: the URL holds a backslash"),
    ("http://127.0.0.1:{P}/ x", URL, "invalid URL: the URL holds whitespace or a control character"),
    ("\thttp://127.0.0.1:{P}/", URL, "invalid URL: the URL holds whitespace or a control character"),
    ("http://127.0.0.1:{P}/\n", URL, "invalid URL: the URL holds whitespace or a control character"),
    ("http://127.0.0.1%00.evil.test/", URL, "invalid URL: the host is not a valid name"),
    ("http://127.0.0.1%2f.evil.test/", URL, "invalid URL: the host is not a valid name"),
    ("http:/127.0.0.1:{P}/", URL, "invalid URL: an http: URL must start with http://"),
    ("//127.0.0.1:{P}/", URL, "invalid URL: the URL is not absolute (scheme://host/...)"),
    ("http://127.0.0.1:65536/", URL, "invalid URL: the port is out of range (1 to 65535)"),
    ("http://127.0.0.1:99999999999999999999/", URL, "invalid URL: the port is out of range (1 to 65535)"),
    ("http://127.0.0.1:0/", URL, "invalid URL: the port is out of range (1 to 65535)"),
    ("http://127.0.0.1:+80/", URL, "invalid URL: the port is not a number"),
    ("http://1.2.3.4.5/", URL, "invalid URL: the IPv4 address has more than four parts"),
    ("http://256.0.0.1/", URL, "invalid URL: the IPv4 address is out of range"),
    # other schemes
    ("file:///etc/passwd", "ERR_FETCH_SCHEME", "the scheme file: is not allowed (only http: and https:)"),
    ("gopher://127.0.0.1:{P}/_GET", "ERR_FETCH_SCHEME", "the scheme gopher: is not allowed (only http: and https:)"),
    ("javascript:alert(1)", "ERR_FETCH_SCHEME", "the scheme javascript: is not allowed (only http: and https:)"),
    ("data:text/plain,x", "ERR_FETCH_SCHEME", "the scheme data: is not allowed (only http: and https:)"),
    # allowed names whose addresses are not: localhost for real, the others by their DNS answer
    ("http://localhost:{P}/", "ERR_FETCH_ADDRESS", "localhost resolves to a refused address (loopback)"),
    ("http://LOCALHOST.:{P}/", "ERR_FETCH_ADDRESS", "localhost resolves to a refused address (loopback)"),
    ("http://mixed.test:{P}/", "ERR_FETCH_ADDRESS", "mixed.test resolves to a refused address (private)"),
    ("http://metadata.test:{P}/", "ERR_FETCH_ADDRESS", "metadata.test resolves to a refused address (link-local)"),
    ("http://mapped.test:{P}/", "ERR_FETCH_ADDRESS",
     "mapped.test resolves to a refused address (loopback, embedded in IPv6)"),
    ("http://cgnat.test:{P}/", "ERR_FETCH_ADDRESS",
     "cgnat.test resolves to a refused address (shared address space (CGNAT))"),
    ("http://ula.test:{P}/", "ERR_FETCH_ADDRESS", "ula.test resolves to a refused address (unique local)"),
    ("http://nat64.test:{P}/", "ERR_FETCH_ADDRESS",
     "nat64.test resolves to a refused address (link-local, embedded in IPv6)"),
    ("http://sixtofour.test:{P}/", "ERR_FETCH_ADDRESS",
     "sixtofour.test resolves to a refused address (private, embedded in IPv6)"),
]


@pytest.mark.parametrize(("url", "code", "message"), DIRECT, ids=[case[0] for case in DIRECT])
def test_direct_escape(target: Target, url: str, code: str, message: str) -> None:
    url = _filled(url, target)
    error = _attempt(target, url)
    shown = url.replace("\t", "%09").replace("\n", "%0A").replace(" ", "%20")
    assert (error.code, error.message) == (code, f"fetch {shown}: {_filled(message, target)}")


# (where the allowed server redirects to, the code, what follows "fetch <url> (redirected to <hop>): ")
REDIRECTS = [
    ("http://localhost:{P}/", "http://localhost:{P}/", "ERR_FETCH_ADDRESS",
     "localhost resolves to a refused address (loopback)"),
    ("http://rebind.test:{P}/", "http://rebind.test:{P}/", "ERR_FETCH_ADDRESS",
     "rebind.test resolves to a refused address (private)"),
    ("http://169.254.169.254/latest/meta-data/", "http://169.254.169.254/latest/meta-data/", ORIGIN,
     "the origin http://169.254.169.254 is not allowed"),
    ("http://127.0.0.1:{Q}/", "http://127.0.0.1:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("http://2130706433:{Q}/", "http://2130706433:{Q}/", ORIGIN, "the origin http://127.0.0.1:{Q} is not allowed"),
    ("//[::ffff:127.0.0.1]:{P}/", "http://[::ffff:127.0.0.1]:{P}/", ORIGIN,
     "the origin http://[::ffff:7f00:1]:{P} is not allowed"),
    ("https://127.0.0.1:{P}/", "https://127.0.0.1:{P}/", ORIGIN, "the origin https://127.0.0.1:{P} is not allowed"),
    ("file:///etc/passwd", "file:///etc/passwd", "ERR_FETCH_SCHEME",
     "the scheme file: is not allowed (only http: and https:)"),
    ("gopher://127.0.0.1:{P}/_x", "gopher://127.0.0.1:{P}/_x", "ERR_FETCH_SCHEME",
     "the scheme gopher: is not allowed (only http: and https:)"),
    ("http://user@127.0.0.1:{P}/", "http://user@127.0.0.1:{P}/", "ERR_FETCH_CREDENTIALS",
     "a URL with credentials (user@host) is not allowed"),
]


@pytest.mark.parametrize(("location", "hop", "code", "message"), REDIRECTS, ids=[case[0] for case in REDIRECTS])
def test_redirect_escape(target: Target, location: str, hop: str, code: str, message: str) -> None:
    start = f"http://127.0.0.1:{target.port}/go?to={urllib.parse.quote(_filled(location, target), safe='')}"
    error = _attempt(target, start)
    expected = f"fetch {start} (redirected to {_filled(hop, target)}): {_filled(message, target)}"
    assert (error.code, error.message) == (code, expected)


def test_a_location_with_a_backslash_is_refused(target: Target) -> None:
    location = urllib.parse.quote("/x\\@evil.test/", safe="")
    start = f"http://127.0.0.1:{target.port}/go?to={location}"
    error = _attempt(target, start)
    assert (error.code, error.message) == (
        "ERR_FETCH_BAD_RESPONSE", f"fetch {start}: the redirect's Location is not a valid URL")


def test_a_redirect_loop_stops(target: Target) -> None:
    url = f"http://127.0.0.1:{target.port}/loop"
    error = _attempt(target, url)
    assert (error.code, error.message) == (
        "ERR_FETCH_TOO_MANY_REDIRECTS", f"fetch {url} (redirected to {url}): more than 5 redirects")


# (header name, value, code, what follows "fetch <url>: ")
HEADERS = [
    ("Host", "evil.test", "ERR_FETCH_HEADER", "the header Host may not be set by a script"),
    ("x-secret", "guess", "ERR_FETCH_HEADER", "the header x-secret may not be set by a script"),
    ("X-SECRET", "guess", "ERR_FETCH_HEADER", "the header X-SECRET may not be set by a script"),
    ("Connection", "Upgrade", "ERR_FETCH_HEADER", "the header Connection may not be set by a script"),
    ("Transfer-Encoding", "chunked", "ERR_FETCH_HEADER", "the header Transfer-Encoding may not be set by a script"),
    ("Content-Length", "0", "ERR_FETCH_HEADER", "the header Content-Length may not be set by a script"),
    ("Proxy-Authorization", "x", "ERR_FETCH_HEADER", "the header Proxy-Authorization may not be set by a script"),
    ("Upgrade", "h2c", "ERR_FETCH_HEADER", "the header Upgrade may not be set by a script"),
    ("X-A\r\nX-Injected", "1", "ERR_INVALID_HTTP_TOKEN",
     "the header name X-A%0D%0AX-Injected is not a valid HTTP token"),
    ("X-Value", "a\r\nX-Injected: 1", "ERR_INVALID_CHAR", "the value of header X-Value holds an invalid character"),
]


@pytest.mark.parametrize(("name", "value", "code", "message"), HEADERS, ids=[case[0] for case in HEADERS])
def test_header_escape(target: Target, name: str, value: str, code: str, message: str) -> None:
    url = f"http://127.0.0.1:{target.port}/"
    error = _attempt(target, url, headers=[(name, value)])
    assert (error.code, error.message) == (code, f"fetch {url}: {message}")


@pytest.mark.parametrize(("method", "code", "message"), [
    ("CONNECT", "ERR_FETCH_METHOD", "the method CONNECT is not allowed"),
    ("trace", "ERR_FETCH_METHOD", "the method TRACE is not allowed"),
    ("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET", "ERR_INVALID_HTTP_TOKEN", "the method is not a valid HTTP token"),
])
def test_method_escape(target: Target, method: str, code: str, message: str) -> None:
    url = f"http://127.0.0.1:{target.port}/"
    error = _attempt(target, url, method=method)
    assert (error.code, error.message) == (code, f"fetch {url}: {message}")


def test_the_allowed_server_is_reachable(target: Target) -> None:
    """The corpus's control: the same policy and resolver do reach the allowed origin."""
    async def go() -> int:
        fetcher = Fetcher(_policy(target), resolve=resolve)
        try:
            response = await fetcher.fetch(f"http://127.0.0.1:{target.port}/fine", deadline=time.monotonic() + 20)
            return response.status
        finally:
            await fetcher.aclose()
    assert asyncio.run(go()) == 200
    assert target.paths[-1] == "/fine"
