"""The console's ASGI app, and the daemon's whole app: the API under `/api/`, the console
everywhere else.

The console answers GET and HEAD only. A client-side route (`/`, `/sessions`, `/sessions/<id>`:
segments of letters, digits, `-` and `_`) gets `index.html`; a versioned file
(`/static/<version>/app.js`) gets that file; anything else, a dot segment or an encoded
character among them, is 404. Nothing here reads the file system after start-up (assets.py).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from supervisor.adapters.web.assets import Asset, Assets, load_assets
from supervisor.adapters.web.headers import SecurityHeaders

API_PREFIX = "/api"
_CLIENT_ROUTE = re.compile(r"(/[A-Za-z0-9_-]+)*/?")
# index.html names the current files' version: a browser must ask again every time. The
# versioned files never change under their name.
INDEX_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"


class Console:
    """Serves `assets`: `index.html` for client-side routes, the versioned files, 404 else."""

    def __init__(self, assets: Assets) -> None:
        self.assets = assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        response = self.answer(Request(scope, receive))
        await response(scope, receive, send)

    def answer(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse("method not allowed\n", status_code=405, headers={"allow": "GET, HEAD"})
        raw = request.scope.get("raw_path") or request.url.path.encode()
        # The raw path decides: `%2f` or `%2e` decoded into the path must not make a route of it.
        path = raw.decode("latin-1").split("?", 1)[0]
        prefix = self.assets.static_prefix
        if path.startswith(prefix) and path[len(prefix):] in self.assets.files:
            return _served(self.assets.files[path[len(prefix):]], ASSET_CACHE, request)
        if _CLIENT_ROUTE.fullmatch(path) and not (path + "/").startswith("/static/"):
            return _served(self.assets.index, INDEX_CACHE, request)
        return PlainTextResponse("not found\n", status_code=404, headers={"cache-control": "no-cache"})


def _served(asset: Asset, cache: str, request: Request) -> Response:
    headers = {"cache-control": cache, "etag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def create_console_app(assets: Assets | None = None) -> ASGIApp:
    """The console with its security headers; the files from the package data by default."""
    return SecurityHeaders(Console(assets or load_assets()))


class ApiAndConsole:
    """Paths under `/api` (and the lifespan) go to the API app, everything else to the console:
    the API answers exactly as it would alone, its auth and envelope included."""

    def __init__(self, api: ASGIApp, console: ASGIApp) -> None:
        self.api = api
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "lifespan" or path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await self.api(scope, receive, send)
        else:
            await self.console(scope, receive, send)


def with_console(api: ASGIApp) -> ASGIApp:
    """The daemon's app: `api` under `/api/`, the console at `/` and every other path."""
    return ApiAndConsole(api, create_console_app())
