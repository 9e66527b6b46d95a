"""What the daemon serves outside /api/: the console's files with their security and cache
headers, `index.html` for client-side routes, 404 for anything else (traversal attempts
among them), the API unchanged beside it; and what the console's sources may not hold."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import httpx
import pytest

from supervisor.adapters.web.assets import load_assets
from supervisor.adapters.web.headers import CONTENT_SECURITY_POLICY
from tests.http.http_daemon import Daemon

STATIC = Path(__file__).resolve().parents[2] / "supervisor" / "adapters" / "web" / "static"


@pytest.fixture(scope="module")
def web(daemon: Daemon) -> httpx.Client:
    with httpx.Client(base_url=daemon.url) as client:
        yield client


def _static_paths(index_html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', index_html)


def _check_security_headers(r: httpx.Response) -> None:
    csp = r.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["object-src"] == "'none'"
    assert "unsafe" not in csp  # no inline script or style, no eval
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/", "/templates", "/sessions/0b3c1e9e-1b7d-4d0e-9d7a-7f1c2b3a4d5e", "/run/"])
def test_client_side_routes_get_index_html_revalidated(web: httpx.Client, path: str) -> None:
    r = web.get(path)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    _check_security_headers(r)
    assert "<script" in r.text and "@STATIC@" not in r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), "index.html holds an inline script"
    assert not re.search(r"\son[a-z]+=", r.text) and "style=" not in r.text


def test_the_files_index_html_names_are_served_immutable_with_their_type(web: httpx.Client) -> None:
    index = web.get("/").text
    paths = _static_paths(index)
    assert any(p.endswith("/main.js") for p in paths) and any(p.endswith(".css") for p in paths)
    version = load_assets().version
    for path in paths:
        assert path.startswith(f"/static/{version}/")
        r = web.get(path)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        _check_security_headers(r)
        expected = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[path.rsplit(".", 1)[1]]
        assert r.headers["content-type"].startswith(expected)
        again = web.get(path, headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    # Every module the console imports is served the same way.
    for module in sorted(p.name for p in STATIC.glob("*.js")):
        assert web.get(f"/static/{version}/{module}").status_code == 200, module


@pytest.mark.parametrize("path", [
    "/..%2f..%2fetc/passwd", "/static/../../x", "/static/..%2f..%2fpyproject.toml", "/%2e%2e/%2e%2e/etc/passwd",
    "/static/", "/static", "/static/main.js", "/static/0000000000000000/main.js", "/index.html", "/favicon.ico",
    "/static/{version}/../assets.py", "/static/{version}/nothere.js", "/static/{version}/index.html",
    "/static/{version}/%2e%2e/app.py", "/sessions/x.js", "/a\\b", "/%00",
])
def test_anything_else_is_404_and_nothing_of_the_disk_is_reached(daemon: Daemon, path: str) -> None:
    url = path.replace("{version}", load_assets().version)
    # Sent byte for byte as written (http.client, unlike httpx, does not remove dot segments).
    host, port = daemon.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", url)
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    assert r.status == 404, (url, r.status)
    assert body == b"not found\n"
    assert r.getheader("content-security-policy") == CONTENT_SECURITY_POLICY
    assert r.getheader("x-content-type-options") == "nosniff"


def test_the_console_answers_only_get_and_head(web: httpx.Client) -> None:
    assert web.head("/").status_code == 200
    r = web.post("/", content=b"{}")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_the_api_beside_it_is_unchanged(web: httpx.Client) -> None:
    r = web.get("/api/v1/health")
    assert r.json() == {"status": "ok"} and r.headers["x-request-id"]
    assert "content-security-policy" not in r.headers
    for path in ("/api", "/api/", "/api/v1/nope", "/api/static/x.js"):
        r = web.get(path)
        assert r.status_code == 404 and set(r.json()["error"]) == {"code", "message", "details"}, path
    openapi = web.get("/api/v1/openapi.json").json()
    assert all(p.startswith("/api/v1/") for p in openapi["paths"])


def test_the_console_is_small_and_all_its_own() -> None:
    assets = load_assets()
    total = len(assets.index.body) + sum(len(a.body) for a in assets.files.values())
    assert total < 200 * 1024, f"the console is {total} bytes: the budget is 200 KB"
    for path in sorted(STATIC.iterdir()):
        text = path.read_text(encoding="utf-8")
        # Its own files only: no CDN, no other origin.
        assert not re.search(r"https?://", text.replace("http://www.w3.org/2000/svg", "")), path.name
        if path.suffix == ".js":
            # Nothing parses markup or code: what a script printed can only be text.
            for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                           "new Function", "DOMParser", "createContextualFragment", "localStorage", "srcdoc"):
                assert banned not in text, f"{path.name} uses {banned}"
