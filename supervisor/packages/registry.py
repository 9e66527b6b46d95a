"""The npm registry client: a package's metadata, the release to take, its tarball.

    client = RegistryClient("https://registry.npmjs.org")
    release = client.release("lodash", "4.17.21")      # None: the `latest` dist-tag
    data = client.tarball(release)                     # bytes, not yet checked

Bounded: metadata at most `max_metadata_bytes`, a tarball at most `max_tarball_bytes`, each
request `timeout_s`; bodies are read in chunks and dropped once they cross the cap. A tarball
is fetched only from the registry's own origin (the metadata cannot point the daemon at
another host), without redirects. The environment's proxy and CA settings (HTTPS_PROXY,
SSL_CERT_FILE) apply, as they do to npm: the registry is the operator's choice, never a script's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from supervisor.errors import PackageNotFound, RegistryBadResponse, RegistryUnreachable, ValidationError
from supervisor.packages.names import package_id
from supervisor.packages.semver import Range, Version, parse_version

if TYPE_CHECKING:  # imported when the first request is made: opening a daemon need not pay for it
    import httpx

DEFAULT_REGISTRY = "https://registry.npmjs.org"
REGISTRY_ENV = "VM_SYSTEM_NPM_REGISTRY"
MAX_METADATA_BYTES = 32 * 1024 * 1024
MAX_TARBALL_BYTES = 64 * 1024 * 1024
TIMEOUT_S = 30.0
# The abbreviated metadata npm itself installs from: versions, dist and dependencies only.
_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"


def registry_url(configured: str | None = None) -> str:
    """The registry to use: the daemon's setting, else $VM_SYSTEM_NPM_REGISTRY, else npm's."""
    url = (configured or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValidationError(f"the npm registry must be an http(s) URL, got {url!r}", registry=url)
    return url


@dataclass(frozen=True)
class Release:
    name: str
    version: str
    tarball_url: str
    integrity: str
    dependencies: dict[str, Any]


class RegistryClient:
    def __init__(self, base_url: str, *, timeout_s: float = TIMEOUT_S,
                 max_metadata_bytes: int = MAX_METADATA_BYTES, max_tarball_bytes: int = MAX_TARBALL_BYTES,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = registry_url(base_url)
        self._origin = _origin(self.base_url)
        self.max_metadata_bytes = max_metadata_bytes
        self.max_tarball_bytes = max_tarball_bytes
        self._timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.Client | None = None

    @property
    def _http(self) -> httpx.Client:
        # Made on first use: a daemon that never adds a package never opens one.
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=httpx.Timeout(self._timeout_s), follow_redirects=False,
                                        trust_env=True, transport=self._transport,
                                        headers={"User-Agent": "vm-system-packages"})
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # ----- requests -----

    @contextmanager
    def _get(self, url: str, what: str, accept: str) -> Iterator[httpx.Response]:
        import httpx

        try:
            with self._http.stream("GET", url, headers={"Accept": accept}) as response:
                if response.status_code == 404:
                    raise PackageNotFound(f"{what} is not on the registry {self.base_url}", package=what)
                if response.status_code >= 500 or response.status_code == 429:
                    raise RegistryUnreachable(f"the registry {self.base_url} failed ({response.status_code}) "
                                              f"for {what}", registry=self.base_url, status=response.status_code)
                if response.status_code != 200:
                    raise RegistryBadResponse(f"the registry {self.base_url} answered {response.status_code} "
                                              f"for {what}", registry=self.base_url, status=response.status_code)
                yield response
        except httpx.TimeoutException:
            raise RegistryUnreachable(f"the registry {self.base_url} did not answer in time for {what}",
                                      registry=self.base_url) from None
        except httpx.HTTPError as exc:
            raise RegistryUnreachable(f"the registry {self.base_url} is unreachable for {what} "
                                      f"({_reason(exc)})", registry=self.base_url) from None

    def _body(self, response: httpx.Response, cap: int, what: str) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise RegistryBadResponse(f"{what} is larger than {cap} bytes", registry=self.base_url, limit=cap)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise RegistryBadResponse(f"{what} is larger than {cap} bytes", registry=self.base_url, limit=cap)
        return bytes(body)

    def metadata(self, name: str) -> dict[str, Any]:
        """The registry's document of package `name` (a checked npm name)."""
        what = f"the metadata of {name}"
        # A scoped name is one segment: @scope%2fname.
        with self._get(f"{self.base_url}/{quote(name, safe='@')}", name, _ACCEPT) as response:
            body = self._body(response, self.max_metadata_bytes, what)
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryBadResponse(f"{what} from {self.base_url} is not JSON", registry=self.base_url) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("versions"), dict):
            raise RegistryBadResponse(f"{what} from {self.base_url} has no versions", registry=self.base_url)
        return doc

    def release(self, name: str, version: str | None = None, *, within: Range | None = None) -> Release:
        """The release of `name` at `version`; without one, the highest version `within` the
        range, or else the `latest` dist-tag."""
        doc = self.metadata(name)
        versions: dict[str, Any] = doc["versions"]
        if version is None and within is not None:
            chosen = within.best(_versions(versions))
            if chosen is None:
                raise PackageNotFound(f"no version of {name} on the registry satisfies {within.text!r}",
                                      package=name, range=within.text)
            version = next(v for v in versions if _version_or_none(v) == chosen)
        elif version is None:
            tags = doc.get("dist-tags")
            version = tags.get("latest") if isinstance(tags, dict) else None
            if not isinstance(version, str):
                raise RegistryBadResponse(f"the metadata of {name} has no latest dist-tag", registry=self.base_url)
        what = package_id(name, version)
        entry = versions.get(version)
        if entry is None:
            raise PackageNotFound(f"{what} is not on the registry {self.base_url}", package=what)
        dist = entry.get("dist") if isinstance(entry, dict) else None
        tarball = dist.get("tarball") if isinstance(dist, dict) else None
        integrity = dist.get("integrity") if isinstance(dist, dict) else None
        if not isinstance(tarball, str) or not tarball:
            raise RegistryBadResponse(f"the metadata of {what} has no dist.tarball", registry=self.base_url)
        if integrity is None and isinstance(dist, dict) and isinstance(dist.get("shasum"), str):
            integrity = "sha1-(shasum)"  # only a sha1: refused by the integrity check, by name
        if not isinstance(integrity, str) or not integrity:
            raise RegistryBadResponse(f"the metadata of {what} has no dist.integrity", registry=self.base_url)
        deps = entry.get("dependencies") or {}
        return Release(name, version, tarball, integrity, deps if isinstance(deps, dict) else {})

    def tarball(self, release: Release) -> bytes:
        what = f"the tarball of {package_id(release.name, release.version)}"
        if _origin(release.tarball_url) != self._origin:
            raise RegistryBadResponse(f"{what} is not on the registry's origin ({release.tarball_url[:200]})",
                                      registry=self.base_url)
        with self._get(release.tarball_url, package_id(release.name, release.version),
                       "application/octet-stream") as response:
            return self._body(response, self.max_tarball_bytes, what)


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return ("", "", None)
    return parts.scheme, (parts.hostname or "").lower(), port


def _version_or_none(text: str) -> Version | None:
    try:
        return parse_version(text)
    except ValidationError:
        return None


def _versions(versions: dict[str, Any]) -> list[Version]:
    return [v for v in map(_version_or_none, versions) if v is not None]


def _reason(exc: httpx.HTTPError) -> str:
    import httpx

    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "getaddrinfo" in text or "name resolution" in text:
        return "unknown host"
    if "certificate" in text:
        return "its TLS certificate is not trusted"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection broke"
    return type(exc).__name__
