"""Every error a client sees, in OpenAI's envelope: `{"error": {"message", "type", "param", "code"}}`.

Errors are raised as `ApiError` anywhere in request handling and rendered
once, here, so no client ever receives a body it cannot parse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

_TYPES = {
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

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def to_json(self) -> bytes:
        return json.dumps(self.body()).encode()

    def response(self) -> web.Response:
        return web.Response(
            status=self.status, body=self.to_json(), content_type="application/json", headers=self.headers
        )

    def sse_event(self) -> bytes:
        """The same error as a server-sent event, for a stream that has already begun."""
        return b"data: " + self.to_json() + b"\n\n"
