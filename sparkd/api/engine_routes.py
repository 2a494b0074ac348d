"""The engines' other public routes, routed by the body's `model` and forwarded as they are.

Rerank, score, pooling, classification and the tokenizer are vLLM's public
API (not its admin routes): sparkd schedules, authenticates and accounts
them like chat, and rewrites nothing. Stored responses are found by the
id their answer gave (`sparkd.response_owners`). Dev-mode and admin routes
(/sleep, /wake_up, /collective_rpc, /reset_*, /pause, LoRA loading,
profiling, /server_info) are never routed: they fall through to the 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sparkd.appstate import CATALOGUE, FORWARDER, RESPONSES, RUNTIME
from sparkd.catalogue import Model
from sparkd.errors import OPENAI, ApiError, Envelope
from sparkd.forward import Call, json_object, resolve
from sparkd.models_list import model_entry
from sparkd.plan import Plan

JSON_ROUTES = (
    "/v1/rerank",
    "/rerank",
    "/v2/rerank",
    "/v1/score",
    "/score",
    "/pooling",
    "/classify",
    "/tokenize",
    "/detokenize",
)


class PassThrough:
    """A family whose bodies sparkd reads only for `model`: no rewrite, no count, no progress events."""

    envelope: Envelope = OPENAI
    count_path = ""

    def rewrite(
        self, document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None
    ) -> Plan:
        return Plan(document)

    def progress_event(self, model: Model, endpoint: str, line: str) -> bytes:
        return b""

    def count_request(self, document: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
        return None

    def counted(self, answer: dict[str, Any]) -> int | None:
        return None


FAMILY = PassThrough()


def add_routes(app: web.Application) -> None:
    for path in JSON_ROUTES:
        app.router.add_post(path, by_model)
    app.router.add_get("/v1/responses/{id}", stored_response)
    app.router.add_post("/v1/responses/{id}/cancel", stored_response)
    app.router.add_get("/v1/models/{id}", model_card)


async def by_model(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    document = json_object(body)
    name = document.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(
            400, f"{request.path} needs a `model` (a string) in its body", "missing_model", "model"
        )
    model = resolve(request.app[CATALOGUE], name)
    endpoint = request.path.lstrip("/")
    call = Call(FAMILY, model, endpoint, document, body, path=request.path)
    return await request.app[FORWARDER].serve(request, call)


async def stored_response(request: web.Request) -> web.StreamResponse:
    response_id = request.match_info["id"]
    owner = request.app[RESPONSES].owner(response_id)
    if owner is None:
        raise ApiError(404, f"no response {response_id!r} is known here (sparkd remembers the latest ones)")
    model = resolve(request.app[CATALOGUE], owner)
    endpoint = "responses/cancel" if request.method == "POST" else "responses/get"
    call = Call(FAMILY, model, endpoint, {}, b"", path=request.path, method=request.method)
    return await request.app[FORWARDER].serve(request, call)


async def model_card(request: web.Request) -> web.Response:
    model = resolve(request.app[CATALOGUE], request.match_info["id"])
    return web.json_response(model_entry(request.app[RUNTIME].scheduler.phase(model.id).value, model))
