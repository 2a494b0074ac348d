"""OpenAI's API: chat, completions, embeddings and responses, routed by the body's `model`; `/v1/models`."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from sparkd.appstate import CATALOGUE, FORWARDER, PEERS, RESPONSES, RUNTIME
from sparkd.budget import tokenize_request
from sparkd.catalogue import ApiFamily, Model
from sparkd.errors import OPENAI, ApiError, Envelope
from sparkd.forward import Call, checked_rewrite, json_object, resolve
from sparkd.models_list import model_entry, peer_entry
from sparkd.peers import answer_by_peer
from sparkd.plan import Plan
from sparkd.rewrite import rewrite

ENDPOINTS = ("chat/completions", "completions", "embeddings", "responses")


class OpenAIFamily:
    envelope: Envelope = OPENAI

    def rewrite(
        self, document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None
    ) -> Plan:
        return checked_rewrite(lambda: rewrite(document, model, endpoint, exact_prompt))

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

    count_path = "/tokenize"

    def count_request(self, document: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
        return tokenize_request(document, endpoint)

    def counted(self, answer: dict[str, Any]) -> int | None:
        count = answer.get("count")
        return count if isinstance(count, int) else None


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
    try:
        model = resolve(request.app[CATALOGUE], name)
    except ApiError as missing:
        return await answer_by_peer(request, name, body, missing)
    if not model.serves(ApiFamily.OPENAI):
        raise ApiError(400, f"{model.id!r} does not serve OpenAI's API here", "unsupported_api", "model")
    # A stored response is later asked for by its id alone: remember whose it is.
    observe = request.app[RESPONSES].watcher(model.id) if endpoint == "responses" else None
    call = Call(FAMILY, model, endpoint, document, body, observe=observe)
    return await request.app[FORWARDER].serve(request, call)


async def models(request: web.Request) -> web.Response:
    phase = request.app[RUNTIME].scheduler.phase
    data = [model_entry(phase(m.id).value, m) for m in request.app[CATALOGUE].enabled()]
    local = {m["id"] for m in data}
    peers = request.app[PEERS]
    if peers.table.peers:
        table = await peers.fresh()
        data += [peer_entry(p.name, model) for p, model in table.listed() if model not in local]
    return web.json_response({"object": "list", "data": data})
