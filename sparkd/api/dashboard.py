"""The web dashboard: its pages (static files from the package), its login, and its live events.

`/ui/` serves sparkd/ui/ as it ships: no build step, nothing fetched from
elsewhere at run time (its Content-Security-Policy allows this origin only).
A person pastes an API key once: `POST /ui/login` answers with a signed,
expiring, HttpOnly, SameSite=Strict session cookie, which the edge accepts
like a key (state changes also need the `X-Sparkd-UI` header, which no
cross-site form can send). `/sparkd/events` is one server-sent-events stream
of state changes, finished requests and memory samples, the recent ones first.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aiohttp import web

from sparkd.appstate import EVENTS, KEYS, SESSIONS
from sparkd.errors import ApiError
from sparkd.sessions import COOKIE, LIFETIME

PAGES = Path(__file__).resolve().parent.parent / "ui"
HEARTBEAT = 15.0  # seconds between SSE comments on a quiet stream
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FILES = {"index.html", "app.js", "app.css"}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ui", to_pages)
    app.router.add_get("/ui/", page)
    app.router.add_get("/ui/{file}", page)
    app.router.add_post("/ui/login", login)
    app.router.add_post("/ui/logout", logout)
    app.router.add_get("/sparkd/events", events)


async def to_pages(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui/")


async def page(request: web.Request) -> web.FileResponse:
    name = request.match_info.get("file", "index.html")
    if name not in FILES:
        raise ApiError(404, f"no page {request.path}", "unknown_route")
    return web.FileResponse(PAGES / name, headers=PAGE_HEADERS)


async def login(request: web.Request) -> web.Response:
    try:
        document = await request.json()
    except ValueError:
        raise ApiError(400, 'send {"key": "<API key>"}', "invalid_json") from None
    key = document.get("key") if isinstance(document, dict) else None
    name = request.app[KEYS].who(key if isinstance(key, str) else None)
    if name is None:
        raise ApiError(401, "that is not an API key of this sparkd", "invalid_api_key")
    token = request.app[SESSIONS].issue(name, time.time())
    response = web.json_response({"name": name, "expires_in": LIFETIME})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def logout(request: web.Request) -> web.Response:
    response = web.json_response({"signed_out": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `recent` once (the history), then each event as it happens."""
    hub = request.app[EVENTS]
    queue = hub.subscribe()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        await response.write(_sse("recent", hub.recent()))
        while True:
            try:
                kind, data = await asyncio.wait_for(queue.get(), HEARTBEAT)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            await response.write(_sse(kind, data))
    except ConnectionError:
        return response  # the page closed or reloaded
    finally:
        hub.unsubscribe(queue)


def _sse(kind: str, data: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
