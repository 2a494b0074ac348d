"""From a granted request to the engine and back: the body out, the answer relayed as it arrives.

Request bodies go out as prepared; SSE answers are written to the client
chunk by chunk. An engine that dies mid-answer ends the client's stream
with an error event; a client that leaves closes the engine's connection,
which makes the engine abort the generation.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from aiohttp import web

from sparkd.accounting import CLIENT_CLOSED, Outcome
from sparkd.catalogue import Model
from sparkd.edge import REQUEST_ID
from sparkd.engine_answer import EngineGone, EngineResponse
from sparkd.errors import ApiError, Envelope
from sparkd.tickets import Tickets
from sparkd.upstream import EnginePool

# Request headers an engine needs; everything else (credentials above all) stays here.
FORWARDED_REQUEST_HEADERS = (
    "Content-Type",
    "Accept",
    "Accept-Encoding",
    "User-Agent",
    "anthropic-version",  # Anthropic's API version and beta features: the engine may honour them
    "anthropic-beta",
)
RELAYED_RESPONSE_HEADERS = (("Content-Type", "content-type"), ("Cache-Control", "cache-control"))

USAGE_BODY_LIMIT = 64 * 1024  # whole answers up to this size are kept for their `usage`


class NoEngine(Exception):
    """No answer from the engine before a single byte: the request may be sent again."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where an answer goes: the client's request, and the stream already begun for it, if any."""

    request: web.Request
    model: Model
    envelope: Envelope
    applied: list[str]  # rewrites, named in X-Sparkd-Rewrites
    early: web.StreamResponse | None
    method: str = "POST"
    # Shown the answer (a JSON body whole, a stream's first chunk): for routes whose answers
    # sparkd must remember something of (a stored response's id).
    observe: Callable[[bytes], None] | None = None


@dataclass
class Relay:
    engines: EnginePool  # the request path's kept-alive connections to engines
    tickets: Tickets

    async def forward(
        self, delivery: Delivery, path: str, body: bytes | IO[bytes], ticket: int, outcome: Outcome
    ) -> web.StreamResponse:
        request, model = delivery.request, delivery.model
        headers = {h: request.headers[h] for h in FORWARDED_REQUEST_HEADERS if h in request.headers}
        headers["X-Request-Id"] = request[REQUEST_ID]
        try:
            upstream = await self.engines.request(delivery.method, model.engine_port, path, headers, body)
        except (OSError, EngineGone) as error:
            raise NoEngine(str(error) or type(error).__name__) from None
        try:
            self.tickets.track(model.id, ticket, upstream)
            relay = {h: upstream.headers[k] for h, k in RELAYED_RESPONSE_HEADERS if k in upstream.headers}
            if delivery.applied:
                relay["X-Sparkd-Rewrites"] = ",".join(delivery.applied)
            outcome.first_byte = time.monotonic()
            if upstream.content_type == "text/event-stream":
                return await self._stream(delivery, upstream, relay, outcome)
            try:
                data = await upstream.read()
            except EngineGone:
                raise ApiError(
                    502, f"{model.id!r} stopped before its answer was complete", "engine_died"
                ) from None
            if delivery.early is not None:
                # The engine refused (a 4xx, say) after the stream had begun.
                status = upstream.status if upstream.status >= 400 else 502
                raise ApiError(status, _engine_message(data), "engine_error")
            outcome.status, outcome.sent = upstream.status, len(data)
            if len(data) <= USAGE_BODY_LIMIT:
                outcome.tail = data
            if delivery.observe is not None and upstream.status == 200:
                delivery.observe(data)
            return web.Response(status=upstream.status, body=data, headers=relay)
        finally:
            self.tickets.untrack(ticket)
            upstream.release()

    async def _stream(
        self, delivery: Delivery, upstream: EngineResponse, relay: dict[str, str], outcome: Outcome
    ) -> web.StreamResponse:
        response = delivery.early
        if response is None:
            response = web.StreamResponse(status=upstream.status, headers=relay)
            await response.prepare(delivery.request)
        while True:
            try:
                chunk = await upstream.readany()
            except EngineGone:
                # The engine went away mid-answer: say so in the stream and end
                # it, rather than leave the client waiting on a silent connection.
                error = ApiError(
                    502, f"{delivery.model.id!r} stopped while streaming its answer", "engine_died"
                )
                with contextlib.suppress(ConnectionError):
                    await response.write(error.sse_event(delivery.envelope))
                outcome.status = 502
                return response
            if not chunk:
                break
            if delivery.observe is not None and outcome.sent == 0:
                delivery.observe(chunk)
            try:
                await response.write(chunk)
            except ConnectionError:
                # The client left; leaving this block closes the engine's connection.
                outcome.status = CLIENT_CLOSED
                return response
            outcome.sent += len(chunk)
            outcome.before_tail, outcome.tail = outcome.tail, chunk  # references only
        await response.write_eof()
        outcome.status = upstream.status
        return response


def _engine_message(data: bytes) -> str:
    try:
        message = json.loads(data)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = data[:500].decode(errors="replace")
    return f"the engine refused the request: {message}"
