"""OpenAI's API: chat, completions, embeddings and responses, routed by the body's `model`; `/v1/models`."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from sparkd.appstate import CATALOGUE, FORWARDER, RUNTIME
from sparkd.budget import tokenize_request
from sparkd.catalogue import Model
from sparkd.errors import OPENAI, ApiError, Envelope
from sparkd.forward import Call, json_object, resolve
from sparkd.plan import Plan, RewriteError
from sparkd.rewrite import rewrite

ENDPOINTS = ("chat/completions", "completions", "embeddings", "responses")


class OpenAIFamily:
    envelope: Envelope = OPENAI

    def rewrite(
        self, document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None
    ) -> Plan:
        try:
            return rewrite(document, model, endpoint, exact_prompt)
        except RewriteError as error:
            raise ApiError(400, str(error), "invalid_field", error.param) from None
        except RecursionError:
            raise ApiError(400, "the request body is nested too deeply", "invalid_json") from None

    def progress_event(self, model: Model, endpoint: str, line: str) -> bytes:
        """With `progress_as_reasoning`, chat clients also see the progress as reasoning text."""
        if not (model.progress_as_reasoning and endpoint == "chat/completions"):
            return b""
        chunk = {
            "id": "sparkd-progress",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model.id,
            "choices": [{"index": 0, "delta": {"reasoning_content": line}, "finish_reason": None}],
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    def tokenize_request(self, document: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
        return tokenize_request(document, endpoint)


FAMILY = OpenAIFamily()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", models)
    for endpoint in ENDPOINTS:
        app.router.add_post(f"/v1/{endpoint}", completions)
    # The original stack's path form: /v1/<model>/<endpoint>.
    app.router.add_post(r"/v1/{model}/{endpoint:" + "|".join(ENDPOINTS) + "}", completions)


async def completions(request: web.Request) -> web.StreamResponse:
    endpoint = request.match_info.get("endpoint") or request.path.removeprefix("/v1/")
    body = await request.read()
    document = json_object(body)
    name = request.match_info.get("model") or document.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "the request body needs a `model` (a string)", "missing_model", "model")
    model = resolve(request.app[CATALOGUE], name)
    return await request.app[FORWARDER].serve(request, Call(FAMILY, model, endpoint, document, body))


async def models(request: web.Request) -> web.Response:
    scheduler = request.app[RUNTIME].scheduler
    data = []
    for model in request.app[CATALOGUE].enabled():
        data.append(
            {
                "id": model.id,
                "object": "model",
                "created": 0,
                "owned_by": "sparkd",
                "state": scheduler.phase(model.id).value,
                "status": model.status.value,
                "role": model.role.value,
                "context_length": model.context_length,
                "max_model_len": model.context_length,
                "client_context": model.client_context or model.context_length,
                "aliases": list(model.aliases),
                "description": model.description,
            }
        )
    return web.json_response({"object": "list", "data": data})
