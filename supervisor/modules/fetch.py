"""The host half of `fetch`: HTTP to the origins a template allows, and nowhere else.

A URL is read strictly, its host as a browser would see it (addresses.py), and its origin
must be one the operator listed. The host's addresses are then resolved once, every one of
them checked, and the connection goes to a checked address (the request's URL holds the
address, its Host header and TLS SNI/certificate check hold the name), so a DNS answer
that changes between the check and the connection (rebinding) cannot redirect it. Redirects
are followed here, each hop checked again like the first. The operator's secrets (headers
injected per origin) go to their own origin only, and a script can neither set nor see them.

No proxy, no environment, no cookie jar, no kept-alive connection: each request is its own
connection, closed when the call returns, fails, or is cancelled.
"""

from __future__ import annotations

import asyncio
import errno as errno_names
import ipaddress
import re
import ssl
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import httpx

from supervisor.modules.addresses import Host, HostError, IPAddress, canonical_host, refusal
from supervisor.modules.errors import ModuleError

ResolveFn = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 16 * 1024
# Ceilings on a policy: the body is held in memory and copied into the guest, a call must end
# well within any execution's wall limit, and 20 redirects is the browsers' own limit.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_REQUEST_BYTES = 64 * 1024 * 1024
MAX_TIMEOUT_MS = 10 * 60 * 1000
MAX_REQUESTS = 100_000
MAX_REDIRECTS = 20
_SHOWN_URL_CHARS = 200

# Set by this module, or meaningless on a connection of its own: a script may not set them.
# Accept-Encoding is ours because the decoding (and its bound) is ours.
_FORBIDDEN_HEADERS = frozenset({
    "host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length", "accept-encoding", "expect", "http2-settings",
})
_FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})
_NORMALISED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Dropped with the body when a redirect turns the request into a GET (the fetch standard's
# request-body-header names).
_BODY_HEADERS = frozenset({"content-type", "content-encoding", "content-language", "content-location"})
# Never carried to another origin on a redirect (the fetch standard drops Authorization; the
# cookie belongs to the site that set it).
_CROSS_ORIGIN_DROPPED = frozenset({"authorization", "cookie"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


# --- policy ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Origin:
    """An origin a script may fetch from. `headers` are the operator's secrets, sent with
    every request to this origin: never compared, never shown in a repr."""

    scheme: str
    host: str
    port: int
    headers: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        return _origin_text(self.scheme, canonical_host(_bracketed(self.host)), self.port)

    @property
    def address(self) -> IPAddress | None:
        """The address when the host is an IP literal (then exactly that address is allowed)."""
        return canonical_host(_bracketed(self.host)).address


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_origin(text: str, headers: Mapping[str, str] | None = None) -> Origin:
    """`scheme://host[:port]` (http or https; a lone trailing `/` is allowed), canonical, with
    the headers to inject; ValueError naming what is wrong."""
    if not isinstance(text, str):
        raise ValueError("an origin must be a string")
    try:
        url = _parse_url(text)
    except _UrlError as exc:
        raise ValueError(f"origin {text!r}: {exc.why}") from exc
    after_authority = re.sub(r"^[^:]*://[^/?#]*", "", text)
    if after_authority not in ("", "/"):
        raise ValueError(f"origin {text!r}: only scheme://host[:port], without a path, query or fragment")
    if url.host.address is not None and (url.host.address.is_unspecified or url.host.address.is_multicast
                                         or url.host.text == "255.255.255.255"):
        raise ValueError(f"origin {text!r}: {url.host.text} does not name one host")
    injected: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"origin {text!r}: a header name is not an HTTP token")
        if name.lower() in _FORBIDDEN_HEADERS:
            raise ValueError(f"origin {text!r}: the header {name} cannot be injected")
        if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
            raise ValueError(f"origin {text!r}: the value of header {name} holds an invalid character")
        injected[name] = value
    return Origin(url.scheme, url.host.text, url.port, MappingProxyType(injected))


@dataclass(frozen=True)
class FetchPolicy:
    """What a template's `fetch` may do. `timeout_ms` bounds one `fetch` call, its redirects
    included; `max_requests` counts requests (redirect hops too) per execution;
    `max_request_bytes` bounds what the script sends (URL, its headers and body)."""

    origins: tuple[Origin, ...]
    max_response_bytes: int
    timeout_ms: int
    max_requests: int
    max_redirects: int = 5
    max_request_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name, low, high in (("max_response_bytes", 0, MAX_RESPONSE_BYTES), ("timeout_ms", 1, MAX_TIMEOUT_MS),
                                ("max_requests", 0, MAX_REQUESTS), ("max_redirects", 0, MAX_REDIRECTS),
                                ("max_request_bytes", 0, MAX_REQUEST_BYTES)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer from {low} to {high}")
        if not all(isinstance(origin, Origin) for origin in self.origins):
            raise ValueError("origins must be Origin values (see parse_origin)")

    def origin_of(self, scheme: str, host: str, port: int) -> Origin | None:
        for origin in self.origins:
            if (origin.scheme, origin.host, origin.port) == (scheme, host, port):
                return origin
        return None

    def injected_names(self) -> frozenset[str]:
        return frozenset(name.lower() for origin in self.origins for name in origin.headers)


@dataclass(frozen=True)
class FetchResponse:
    """What the server answered (the last hop's): its headers as sent, names lowercased;
    `url` is the last hop's URL as the script would write it."""

    status: int
    status_text: str
    headers: list[tuple[str, str]]
    body: bytes
    url: str
    redirected: bool


# --- URLs -----------------------------------------------------------------------------------

class _UrlError(Exception):
    def __init__(self, code: str, why: str) -> None:
        super().__init__(why)
        self.code = code
        self.why = why


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: Host
    port: int
    target: str  # path and query, percent-encoded, dot segments removed

    @property
    def text(self) -> str:
        return _origin_text(self.scheme, self.host, self.port) + self.target

    @property
    def host_header(self) -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        return self.host.in_url if default else f"{self.host.in_url}:{self.port}"


def _origin_text(scheme: str, host: Host, port: int) -> str:
    suffix = "" if DEFAULT_PORTS.get(scheme) == port else f":{port}"
    return f"{scheme}://{host.in_url}{suffix}"


def _parse_url(text: str) -> _Url:
    """An absolute http(s) URL, strictly: what a browser would accept, less its leniencies
    (whitespace, backslashes, credentials), in canonical form."""
    if len(text) > MAX_URL_CHARS:
        raise _UrlError("ERR_INVALID_URL", f"the URL is longer than {MAX_URL_CHARS} characters")
    for char in text:
        if char == "\\":
            raise _UrlError("ERR_INVALID_URL", "the URL holds a backslash")
        if ord(char) < 0x21 or 0x7F <= ord(char) <= 0x9F or char.isspace():
            raise _UrlError("ERR_INVALID_URL", "the URL holds whitespace or a control character")
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", text)
    if match is None:
        raise _UrlError("ERR_INVALID_URL", "the URL is not absolute (scheme://host/...)")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise _UrlError("ERR_FETCH_SCHEME", f"the scheme {scheme}: is not allowed (only http: and https:)")
    rest = text[match.end():]
    if not rest.startswith("//"):
        raise _UrlError("ERR_INVALID_URL", f"an {scheme}: URL must start with {scheme}://")
    rest = rest[2:]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        raise _UrlError("ERR_FETCH_CREDENTIALS", "a URL with credentials (user@host) is not allowed")
    host_text, port = _split_port(authority, DEFAULT_PORTS[scheme])
    try:
        host = canonical_host(host_text)
    except HostError as exc:
        raise _UrlError("ERR_INVALID_URL", str(exc)) from exc
    return _Url(scheme, host, port, _target(tail))


def _split_port(authority: str, default: int) -> tuple[str, int]:
    if authority.startswith("["):
        close = authority.find("]")
        host, after = (authority, "") if close < 0 else (authority[: close + 1], authority[close + 1:])
        if after and not after.startswith(":"):
            raise _UrlError("ERR_INVALID_URL", "unexpected characters after the IPv6 address")
        port_text = after[1:] if after else None
    else:
        host, colon, port_text_or_empty = authority.partition(":")
        port_text = port_text_or_empty if colon else None
    if port_text is None or port_text == "":
        return host, default
    if not (port_text.isascii() and port_text.isdigit()):
        raise _UrlError("ERR_INVALID_URL", "the port is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _UrlError("ERR_INVALID_URL", "the port is out of range (1 to 65535)")
    return host, port


def _target(tail: str) -> str:
    """Path and query as sent: fragment dropped, dot segments removed, the rest percent-encoded
    the way a browser sends it."""
    tail = tail.partition("#")[0]
    path, question, query = tail.partition("?")
    segments: list[str] = []
    parts = path.split("/")[1:] if path else [""]
    for index, segment in enumerate(parts):
        last = index == len(parts) - 1
        lowered = segment.lower()
        if lowered in (".", "%2e"):
            if last:
                segments.append("")
        elif lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if segments:
                segments.pop()
            if last:
                segments.append("")
        else:
            segments.append(segment)
    encoded_path = "/" + "/".join(urllib.parse.quote(s, safe=_PATH_SAFE) for s in segments)
    if not question:
        return encoded_path
    return f"{encoded_path}?{urllib.parse.quote(query, safe=_QUERY_SAFE)}"


def _shown(url: str) -> str:
    """A URL as a message shows it: controls percent-encoded, long ones cut."""
    visible = "".join(c if ord(c) >= 0x21 and not 0x7F <= ord(c) <= 0x9F and not c.isspace()
                      else urllib.parse.quote(c, safe="") for c in url)
    return visible if len(visible) <= _SHOWN_URL_CHARS else visible[: _SHOWN_URL_CHARS - 1] + "…"


# --- the request as the script asked for it -------------------------------------------------

@dataclass
class _Call:
    """One `fetch` call: what every error message names, and how it stands."""

    url: str
    hop: str | None = None

    def error(self, code: str, what: str) -> ModuleError:
        where = _shown(self.url) if self.hop is None else f"{_shown(self.url)} (redirected to {_shown(self.hop)})"
        return ModuleError(code, f"fetch {where}: {what}")


def _method(call: _Call, method: object) -> str:
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise call.error("ERR_INVALID_HTTP_TOKEN", "the method is not a valid HTTP token")
    upper = method.upper()
    if upper in _FORBIDDEN_METHODS:
        raise call.error("ERR_FETCH_METHOD", f"the method {upper} is not allowed")
    return upper if upper in _NORMALISED_METHODS else method


def _script_headers(call: _Call, headers: object, injected: frozenset[str]) -> list[tuple[str, str]]:
    if not isinstance(headers, (list, tuple)):
        raise call.error("ERR_INVALID_ARG_TYPE", "headers must be a list of [name, value] pairs")
    checked: list[tuple[str, str]] = []
    for pair in headers:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise call.error("ERR_INVALID_ARG_TYPE", "headers must be a list of [name, value] pairs")
        name, value = pair[0], pair[1].strip(" \t")
        if not _TOKEN.fullmatch(name):
            raise call.error("ERR_INVALID_HTTP_TOKEN", f"the header name {_shown(name)!s} is not a valid HTTP token")
        lowered = name.lower()
        if lowered in _FORBIDDEN_HEADERS or lowered.startswith(("proxy-", "sec-")) or lowered in injected:
            raise call.error("ERR_FETCH_HEADER", f"the header {name} may not be set by a script")
        if not _FIELD_VALUE.fullmatch(value):
            raise call.error("ERR_INVALID_CHAR", f"the value of header {name} holds an invalid character")
        checked.append((name, value))
    return checked


# --- bounded decoding -------------------------------------------------------------------------

class _Decoder:
    """A body's Content-Encoding undone, never producing more than the caller allows: a gzip
    bomb stops at the cap, not after inflating a whole chunk."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._inflater: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes, limit: int) -> bytes:
        """Up to `limit` bytes decoded from `data` (exactly `limit` means: more would follow)."""
        if self._inflater is None:
            return data
        if not self._started and self.encoding == "deflate":
            self._started = True
            try:
                return self._inflater.decompress(data, limit)
            except zlib.error:
                # Some servers send raw deflate without the zlib wrapper the standard asks for.
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._started = True
        return self._inflater.decompress(data, limit)

    def finish(self, limit: int) -> bytes:
        if self._inflater is None:
            return b""
        rest = self._inflater.flush(limit)
        if not self._inflater.eof:
            raise zlib.error("the compressed body ends early")
        return rest


# --- the fetcher ------------------------------------------------------------------------------

def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    import socket

    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


class Fetcher:
    """A template's `fetch`, for one session: call `begin_execution` before each execution,
    `aclose` at the end. Not for concurrent use by several event loops."""

    def __init__(self, policy: FetchPolicy, *, resolve: ResolveFn | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        # ssl_context: the trust store for https origins (an operator's private CA); the
        # default is certifi's, as httpx's.
        self._policy = policy
        self._resolve = resolve or system_resolve
        self._ssl = ssl_context
        self._injected = policy.injected_names()
        self._requests = 0
        self._transport: httpx.AsyncHTTPTransport | None = None
        self._transport_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def begin_execution(self) -> None:
        self._requests = 0

    async def aclose(self) -> None:
        self._closed = True
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()

    async def fetch(self, url: str, *, method: str = "GET", headers: Sequence[tuple[str, str]] = (),
                    body: bytes | None = None, deadline: float) -> FetchResponse:
        """The response to `method url`, redirects followed, or ModuleError; returns or raises
        by min(now + timeout_ms, deadline)."""
        call = _Call(url if isinstance(url, str) else "")
        if not isinstance(url, str):
            raise ModuleError("ERR_INVALID_ARG_TYPE", "fetch: the URL must be a string")
        if self._closed:
            raise call.error("ERR_FETCH_CLOSED", "fetch is no longer available in this session")
        verb = _method(call, method)
        own = _script_headers(call, headers, self._injected)
        if body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            raise call.error("ERR_INVALID_ARG_TYPE", "the body must be bytes")
        content = None if body is None else bytes(body)
        if content is not None and verb in ("GET", "HEAD"):
            raise call.error("ERR_FETCH_BODY", "a GET or HEAD request cannot have a body")
        sent = len(url) + sum(len(n) + len(v) + 4 for n, v in own) + len(content or b"")
        if sent > self._policy.max_request_bytes:
            raise call.error("ERR_FETCH_REQUEST_TOO_LARGE",
                             f"the request exceeds {self._policy.max_request_bytes} bytes")
        ends_by_timeout = time.monotonic() + self._policy.timeout_ms / 1000
        end = min(ends_by_timeout, deadline)
        try:
            async with asyncio.timeout(max(0.0, end - time.monotonic())):
                return await self._follow(call, verb, own, content, end)
        except TimeoutError:
            pass
        if end < ends_by_timeout:
            raise call.error("ETIMEDOUT", "stopped at the execution's time limit")
        raise call.error("ETIMEDOUT", f"timed out after {self._policy.timeout_ms} ms")

    async def _follow(self, call: _Call, method: str, own: list[tuple[str, str]], body: bytes | None,
                      end: float) -> FetchResponse:
        target = self._parsed(call, call.url)
        for hops in range(self._policy.max_redirects + 2):
            origin = self._policy.origin_of(target.scheme, target.host.text, target.port)
            if origin is None:
                shown_origin = _origin_text(target.scheme, target.host, target.port)
                raise call.error("ERR_FETCH_ORIGIN", f"the origin {shown_origin} is not allowed")
            if hops > self._policy.max_redirects:
                raise call.error("ERR_FETCH_TOO_MANY_REDIRECTS", f"more than {self._policy.max_redirects} redirects")
            response = await self._exchange(call, target, origin, method, own, body, end)
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECTS or location is None:
                    return await self._answer(call, target, response, redirected=hops > 0)
            finally:
                await response.aclose()
            # Messages name the hop as the server wrote it (resolved against this hop's URL).
            call.hop = _joined(call, target, location)
            following = self._parsed(call, call.hop)
            method, own, body = _redirected(response.status_code, method, own, body,
                                            same_origin=(following.scheme, following.host, following.port)
                                            == (target.scheme, target.host, target.port))
            target = following
        raise AssertionError("unreachable: the redirect count is checked in the loop")

    def _parsed(self, call: _Call, text: str) -> _Url:
        try:
            return _parse_url(text)
        except _UrlError as exc:
            what = f"invalid URL: {exc.why}" if exc.code == "ERR_INVALID_URL" else exc.why
            raise call.error(exc.code, what) from None

    async def _exchange(self, call: _Call, target: _Url, origin: Origin, method: str,
                        own: list[tuple[str, str]], body: bytes | None, end: float) -> httpx.Response:
        """One request to one checked address; the response's body is still to be read."""
        if self._requests >= self._policy.max_requests:
            raise call.error("ERR_FETCH_TOO_MANY_REQUESTS",
                             f"more than {self._policy.max_requests} requests in this execution")
        self._requests += 1
        addresses = await self._addresses(call, target)
        headers = [("Host", target.host_header), *own, *origin.headers.items()]
        names = {name.lower() for name, _ in headers}
        if "accept" not in names:
            headers.append(("Accept", "*/*"))
        if "user-agent" not in names:
            headers.append(("User-Agent", "vm-system-fetch"))
        headers.append(("Accept-Encoding", "gzip, deflate"))
        failure: ModuleError | None = None
        for address in addresses:
            remaining = max(0.001, end - time.monotonic())
            extensions: dict[str, object] = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), remaining)}
            if target.scheme == "https" and target.host.kind == "name":
                extensions["sni_hostname"] = target.host.text
            # Latin-1, as HTTP/1.1 fields are: httpx would encode text as ASCII and fail on "é".
            request = httpx.Request(method, httpx.URL(scheme=target.scheme, host=str(address), port=target.port,
                                                      raw_path=target.target.encode("ascii")),
                                    headers=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers],
                                    content=body, extensions=extensions)
            try:
                return await self._transport_for_loop().handle_async_request(request)
            except httpx.ConnectError as exc:
                failure = _connect_error(call, target, exc)
            except httpx.TimeoutException:
                raise TimeoutError from None
            except httpx.HTTPError as exc:
                raise _transport_error(call, exc) from None
        assert failure is not None
        raise failure

    def _transport_for_loop(self) -> httpx.AsyncHTTPTransport:
        # The pool's locks belong to the loop that made them; it holds no connection between
        # calls, so a new loop simply gets a new pool (the TLS context, costly to load, is kept).
        loop = asyncio.get_running_loop()
        if self._transport is None or self._transport_loop is not loop:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context(trust_env=False)
            self._transport = httpx.AsyncHTTPTransport(
                verify=self._ssl, trust_env=False, http1=True, http2=False, retries=0,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))
            self._transport_loop = loop
        return self._transport

    async def _addresses(self, call: _Call, target: _Url) -> list[IPAddress]:
        """The addresses to connect to: the allowed literal itself, or every address the name
        resolves to, each one checked."""
        if target.host.address is not None:
            return [target.host.address]
        loop = asyncio.get_running_loop()
        try:
            answers = await loop.run_in_executor(None, self._resolve, target.host.text, target.port)
            addresses = [ipaddress.ip_address(str(a).partition("%")[0]) for a in answers]
        except (OSError, ValueError, UnicodeError):
            addresses = []
        if not addresses:
            raise call.error("ENOTFOUND", f"getaddrinfo ENOTFOUND {target.host.text}")
        for address in addresses:
            why = refusal(address)
            if why is not None:
                # The class, not the address: a private address the operator did not name is
                # itself something a script should not learn.
                raise call.error("ERR_FETCH_ADDRESS", f"{target.host.text} resolves to a refused address ({why})")
        return addresses

    async def _answer(self, call: _Call, target: _Url, response: httpx.Response, *,
                      redirected: bool) -> FetchResponse:
        body = await self._body(call, response)
        reason = response.extensions.get("reason_phrase", b"")
        return FetchResponse(
            status=response.status_code,
            status_text=reason.decode("latin-1") if isinstance(reason, bytes) else "",
            headers=[(name.decode("latin-1").lower(), value.decode("latin-1"))
                     for name, value in response.headers.raw],
            body=body, url=target.text, redirected=redirected)

    async def _body(self, call: _Call, response: httpx.Response) -> bytes:
        cap = self._policy.max_response_bytes
        too_large = call.error("ERR_FETCH_RESPONSE_TOO_LARGE", f"the response body exceeds {cap} bytes")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap and not response.headers.get("content-encoding"):
            raise too_large
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise call.error("ERR_FETCH_BAD_RESPONSE", f"unsupported Content-Encoding {_shown(encoding)}")
        decoder = _Decoder(encoding)
        chunks: list[bytes] = []
        size = 0
        try:
            async for raw in response.aiter_raw():
                chunk = decoder.feed(raw, cap - size + 1)
                size += len(chunk)
                if size > cap:
                    raise too_large
                chunks.append(chunk)
            chunk = decoder.finish(cap - size + 1)
            size += len(chunk)
            chunks.append(chunk)
        except zlib.error:
            raise call.error("ERR_FETCH_BAD_RESPONSE", f"the {encoding} body is corrupt") from None
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise _transport_error(call, exc) from None
        if size > cap:
            raise too_large
        return b"".join(chunks)


def _joined(call: _Call, target: _Url, location: str) -> str:
    for char in location:
        if char == "\\" or ord(char) < 0x21 or 0x7F <= ord(char) <= 0x9F or char.isspace():
            raise call.error("ERR_FETCH_BAD_RESPONSE", "the redirect's Location is not a valid URL")
    return urllib.parse.urljoin(target.text, location)


def _redirected(status: int, method: str, own: list[tuple[str, str]], body: bytes | None, *,
                same_origin: bool) -> tuple[str, list[tuple[str, str]], bytes | None]:
    """The request a browser makes after a redirect (the fetch standard's rules)."""
    if (status in (301, 302) and method == "POST") or (status == 303 and method not in ("GET", "HEAD")):
        method, body = "GET", None
        own = [(n, v) for n, v in own if n.lower() not in _BODY_HEADERS]
    if not same_origin:
        own = [(n, v) for n, v in own if n.lower() not in _CROSS_ORIGIN_DROPPED]
    return method, own, body


def _connect_error(call: _Call, target: _Url, exc: BaseException) -> ModuleError:
    where = f"{target.host.text}:{target.port}"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return call.error(_TLS_CODES.get(cause.verify_code or 0, "ERR_FETCH_TLS"),
                              f"the certificate of {target.host.text} is not valid for it or not trusted")
        if isinstance(cause, ssl.SSLError):
            return call.error("ERR_FETCH_TLS", f"TLS with {target.host.text} failed")
        if isinstance(cause, OSError) and cause.errno is not None and cause.errno in errno_names.errorcode:
            name = errno_names.errorcode[cause.errno]
            return call.error(name, f"connect {name} {where}")
        cause = cause.__cause__ or cause.__context__
    return call.error("ERR_FETCH_CONNECT", f"cannot connect to {where}")


def _transport_error(call: _Call, exc: httpx.HTTPError) -> ModuleError:
    if isinstance(exc, httpx.ConnectError):
        return call.error("ERR_FETCH_CONNECT", "the connection failed")
    if isinstance(exc, httpx.RemoteProtocolError):
        return call.error("ERR_FETCH_BAD_RESPONSE", "the server's response is not valid HTTP/1.1 or ends early")
    return call.error("ERR_FETCH_NETWORK", "the connection failed during the exchange")


# OpenSSL's verification codes under the names Node gives them.
_TLS_CODES = {
    10: "CERT_HAS_EXPIRED",
    18: "DEPTH_ZERO_SELF_SIGNED_CERT",
    19: "SELF_SIGNED_CERT_IN_CHAIN",
    20: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    21: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    62: "ERR_TLS_CERT_ALTNAME_INVALID",
}
