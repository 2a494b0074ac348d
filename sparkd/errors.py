"""Every error a client sees, as `ApiError`, rendered once at the edge in its API family's envelope.

Handlers raise `ApiError` anywhere; `sparkd.edge` turns it into a response
in the envelope of the route's family, so no client ever receives a body it
cannot parse. OpenAI's envelope is `{"error": {"message", "type", "param",
"code"}}`; Anthropic's is `{"type": "error", "error": {"type", "message"}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_error",
}


@dataclass
class ApiError(Exception):
    status: int
    message: str
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self, envelope: Envelope | None = None) -> web.Response:
        body = (envelope or OPENAI).body(self)
        return web.Response(
            status=self.status, body=body, content_type="application/json", headers=self.headers
        )

    def sse_event(self, envelope: Envelope | None = None) -> bytes:
        """The same error as a server-sent event, for a stream that has already begun."""
        return (envelope or OPENAI).sse_event(self)


class Envelope(Protocol):
    """How one API family writes an error: as a JSON body, and as an event in a stream."""

    def body(self, error: ApiError) -> bytes: ...
    def sse_event(self, error: ApiError) -> bytes: ...


class OpenAIEnvelope:
    def document(self, error: ApiError) -> dict[str, object]:
        kind = _OPENAI_TYPES.get(
            error.status, "server_error" if error.status >= 500 else "invalid_request_error"
        )
        return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}

    def body(self, error: ApiError) -> bytes:
        return json.dumps(self.document(error)).encode()

    def sse_event(self, error: ApiError) -> bytes:
        return b"data: " + self.body(error) + b"\n\n"


OPENAI = OpenAIEnvelope()


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",  # a model that starts, or waits its turn: temporary, as Anthropic's 529
    529: "overloaded_error",
}


class AnthropicEnvelope:
    """Anthropic's: `{"type": "error", "error": {"type", "message"}}`; in a stream, an `error` event."""

    def document(self, error: ApiError) -> dict[str, object]:
        fallback = "api_error" if error.status >= 500 else "invalid_request_error"
        kind = _ANTHROPIC_TYPES.get(error.status, fallback)
        return {"type": "error", "error": {"type": kind, "message": error.message}}

    def body(self, error: ApiError) -> bytes:
        return json.dumps(self.document(error)).encode()

    def sse_event(self, error: ApiError) -> bytes:
        return b"event: error\ndata: " + self.body(error) + b"\n\n"


ANTHROPIC = AnthropicEnvelope()
