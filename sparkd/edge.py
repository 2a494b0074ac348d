"""The edge every request passes: its id, CORS, auth, and the one place errors become envelopes.

Handlers raise; `Edge.middleware` renders. Which envelope an error is
written in depends on the route's API family: a family module registers
its path prefix and envelope (`Edge.families`), OpenAI's is the default.
`Edge.on_prepare` stamps every response as its headers go out, streams
begun inside a handler included, so no handler sets them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from sparkd.auth import KeyRing, presented_key
from sparkd.errors import OPENAI, ApiError, Envelope
from sparkd.sessions import COOKIE, Sessions

log = logging.getLogger("sparkd.edge")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
KEY_NAME = web.RequestKey("key_name", str)
# Header limits for the HTTP server: long enough that any key reaches sparkd's
# own auth check (and its error envelope) rather than the parser's bare 400.
HEADER_LIMIT = 65536
CORS_ORIGIN = re.compile(r"^(http://localhost(:\d+)?|http://127\.0\.0\.1(:\d+)?|vscode-webview://.+)$")
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "DNT,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
    "Content-Type,Range,Authorization,X-Api-Key",
    "Access-Control-Expose-Headers": "Content-Length,Content-Range,Retry-After,X-Request-Id",
}
OPEN_PATHS = frozenset({"/healthz", "/ui"})  # answered without a key
UI_PAGES = "/ui/"  # the dashboard's pages and its login: open (the data they show is not)
UI_HEADER = "X-Sparkd-UI"  # a dashboard session changes state only with it: no cross-site form sends it


def request_ids() -> Callable[[], str]:
    """Ids unique across restarts (a random prefix) and cheap per request (a counter)."""
    prefix = os.urandom(4).hex()
    counter = iter(range(1, 1 << 62))
    return lambda: f"{prefix}-{next(counter):x}"


@dataclass
class Edge:
    keys: KeyRing
    max_body: int
    families: list[tuple[str, Envelope]] = field(default_factory=list)  # path prefix -> envelope
    cors_origins: frozenset[str] = frozenset()  # allowed besides CORS_ORIGIN's
    sessions: Sessions | None = None  # the dashboard's session cookies, a way in besides keys
    wall_clock: Callable[[], float] = time.time
    _next_id: Callable[[], str] = field(default_factory=request_ids)

    def envelope(self, path: str) -> Envelope:
        return next((envelope for prefix, envelope in self.families if path.startswith(prefix)), OPENAI)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request[REQUEST_ID] = self._next_id()
        try:
            if request.method == "OPTIONS" and request.path.startswith("/v1/"):
                return web.Response(status=204)  # a CORS preflight carries no key
            if request.path not in OPEN_PATHS and not request.path.startswith(UI_PAGES):
                request[KEY_NAME] = self._authenticate(request)
            return await handler(request)
        except ApiError as error:
            return error.response(self.envelope(request.path))
        except web.HTTPRequestEntityTooLarge:
            too_large = ApiError(
                413, f"the request body is larger than {self.max_body} bytes", "body_too_large"
            )
            return too_large.response(self.envelope(request.path))
        except web.HTTPException as http:
            return ApiError(http.status, http.reason, None).response(self.envelope(request.path))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            # A bug of sparkd's own: logged with its traceback, answered in the envelope.
            log.exception("%s: unexpected error", request_id)
            bug = ApiError(500, f"internal error (request {request_id}); see the journal", "internal_error")
            return bug.response(self.envelope(request.path))

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every response's own headers, set as they go out."""
        request_id = request.get(REQUEST_ID)
        if request_id is not None:
            response.headers["X-Request-Id"] = request_id
        origin = request.headers.get("Origin")
        if origin and (origin in self.cors_origins or CORS_ORIGIN.match(origin)):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.update(CORS_HEADERS)

    def _authenticate(self, request: web.Request) -> str:
        if request.query_string and ("key" in request.query or "api_key" in request.query):
            raise ApiError(401, "API keys go in the Authorization header, never in the URL", "key_in_url")
        key = presented_key(request.headers.get("Authorization"), request.headers.get("X-Api-Key"))
        name = self.keys.who(key)
        if name is None and _on_control_socket(request):
            # Only root and the group `sparkd` can connect to it (its mode and group).
            return "local"
        if name is None and key is None:
            name = self._session(request)
        if name is None:
            raise ApiError(
                401,
                "missing or wrong API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
                "invalid_api_key",
            )
        return name

    def _session(self, request: web.Request) -> str | None:
        """The key name of a valid dashboard session (while that key exists); None without one."""
        token = request.cookies.get(COOKIE)
        if self.sessions is None or not token:
            return None
        name = self.sessions.verify(token, self.wall_clock())
        if name is None or not self.keys.has(name):
            return None
        if request.method not in ("GET", "HEAD") and request.headers.get(UI_HEADER) != "1":
            raise ApiError(
                403,
                f"a dashboard session changes nothing without the {UI_HEADER} header "
                "(requests from other sites are refused)",
                "cross_site_refused",
            )
        return name


def _on_control_socket(request: web.Request) -> bool:
    """Did the request come through a Unix socket (sparkd-control.socket), not the network?"""
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    return sock is not None and sock.family == socket.AF_UNIX
