"""Anthropic's Messages API: `/v1/messages` and `/v1/messages/count_tokens`, routed by the body's `model`.

The engines (vLLM, SGLang) serve these routes themselves; sparkd adds what
it adds to chat: auth (`x-api-key` or a bearer token), scheduling with
progress for a streaming client that waits (SSE comments, which every
Anthropic client skips), the rewrites in their Messages form, accounting,
and errors in Anthropic's envelope (`sparkd.errors.ANTHROPIC`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sparkd.appstate import CATALOGUE, FORWARDER
from sparkd.catalogue import ApiFamily, Model
from sparkd.errors import ANTHROPIC, ApiError, Envelope
from sparkd.forward import Call, checked_rewrite, json_object, resolve
from sparkd.peers import answer_by_peer
from sparkd.plan import Plan
from sparkd.rewrite_messages import COUNT_TOKENS, MESSAGES, count_request, rewrite_messages

PREFIX = "/v1/messages"


class AnthropicFamily:
    envelope: Envelope = ANTHROPIC
    count_path = "/v1/messages/count_tokens"

    def rewrite(
        self, document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None
    ) -> Plan:
        return checked_rewrite(lambda: rewrite_messages(document, model, endpoint, exact_prompt))

    def progress_event(self, model: Model, endpoint: str, line: str) -> bytes:
        return b""  # no event of the format can carry it: the SSE comments say it

    def count_request(self, document: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
        return count_request(document) if endpoint == MESSAGES else None

    def counted(self, answer: dict[str, Any]) -> int | None:
        count = answer.get("input_tokens")
        return count if isinstance(count, int) else None


FAMILY = AnthropicFamily()


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX, messages)
    app.router.add_post(f"{PREFIX}/count_tokens", messages)


async def messages(request: web.Request) -> web.StreamResponse:
    endpoint = COUNT_TOKENS if request.path.endswith("/count_tokens") else MESSAGES
    body = await request.read()
    document = json_object(body)
    name = document.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "the request body needs a `model` (a string)", "missing_model", "model")
    try:
        model = resolve(request.app[CATALOGUE], name)
    except ApiError as missing:
        return await answer_by_peer(request, name, body, missing)
    if not model.serves(ApiFamily.ANTHROPIC):
        raise ApiError(
            400,
            f"{model.id!r} does not serve Anthropic's Messages API here; send it to /v1/chat/completions",
            "unsupported_api",
            "model",
        )
    return await request.app[FORWARDER].serve(request, Call(FAMILY, model, endpoint, document, body))
