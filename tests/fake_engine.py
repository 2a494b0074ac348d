"""A fake OpenAI engine with fixed, known behaviour: a real aiohttp application.

In-process (loopback tests): `make_app(...)` and read what it received from
`app[RECEIVED]`. As a program (inside a podman container in system tests):

    python fake_engine.py --port 18100 --model fake-a [--start-delay 1] [--fail-at-start]

It answers /health once `start_delay` has passed, chat and text completions
(plain or SSE, `chunks` pieces `interval` seconds apart), Anthropic messages
(plain or SSE) and their token count, embeddings, the other public routes
of vLLM (rerank, score, pooling, classify, tokenize, stored responses, audio)
with an echo of what they received, and admin routes that sparkd must never
forward (each answers 200 here, so a leak would show).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict


@dataclass
class Received:
    record: bool = True
    requests: list[tuple[str, CIMultiDict[str], bytes]] = field(default_factory=list)
    cancelled: int = 0
    completed: int = 0

    def add(self, path: str, headers: CIMultiDict[str], body: bytes) -> None:
        if self.record:
            self.requests.append((path, headers, body))


RECEIVED = web.AppKey("received", Received)


def catalogue_entry(model_id: str, port: int, flags: str = "", extra: str = "") -> str:
    """This program as a sparkd model: a generic engine in the demo image, run from this checkout.

    `flags` are more of its arguments as TOML list items (`', "--chunks", "1"'`); `extra`
    is more of the model's keys. Called on the host, never in the container.
    """
    tests = Path(__file__).resolve().parent
    return f"""
[models.{model_id}]
engine = "generic"
image = "localhost/sparkd-demo:latest"
command = ["/opt/sparkd-demo/venv/bin/python", "/opt/sparkd-tests/fake_engine.py",
           "--port", "{{port}}", "--model", "{{model_id}}"{flags}]
volumes = ["/usr:/usr:ro", "/etc:/etc:ro", "{{state}}/demo:/opt/sparkd-demo:ro",
           "{tests}:/opt/sparkd-tests:ro"]
gpu = false
# An init as PID 1: a stop that comes while Python still starts (before the
# SIGTERM handler) would otherwise be ignored, and the unit killed 10 s later.
run_init = true
port = {port}
context_length = 4096
stop_timeout = "10s"
{extra}
"""


SETTINGS = web.AppKey("settings", dict)


def make_app(
    model: str,
    start_delay: float = 0.0,
    chunks: int = 5,
    interval: float = 0.01,
    die_after: int | None = None,
    record: bool = True,
) -> web.Application:
    """`die_after`: end the connection abruptly after that many chunks of a stream.

    `record`: keep every request in `app[RECEIVED]` for the test to read. As a
    program nobody reads them, and under a benchmark's millions of requests
    they would grow the engine without bound (and its collector's pauses with it).
    """
    app = web.Application(client_max_size=128 * 1024 * 1024)
    app[RECEIVED] = Received(record=record)
    app[SETTINGS] = {
        "model": model,
        "ready_at": time.monotonic() + start_delay,
        "chunks": chunks,
        "interval": interval,
        "die_after": die_after,
    }
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", completion)
    app.router.add_post("/v1/completions", completion)
    app.router.add_post("/v1/responses", completion)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    for path in PUBLIC_ROUTES:
        app.router.add_post(path, echo)
    app.router.add_get("/v1/responses/{id}", echo)
    app.router.add_post("/v1/responses/{id}/cancel", echo)
    for path in ADMIN_ROUTES:
        app.router.add_post(path, admin)
    return app


PUBLIC_ROUTES = (
    "/v1/rerank",
    "/rerank",
    "/v2/rerank",
    "/v1/score",
    "/score",
    "/pooling",
    "/classify",
    "/tokenize",
    "/detokenize",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
)
ADMIN_ROUTES = ("/sleep", "/wake_up", "/collective_rpc", "/reset_prefix_cache", "/pause", "/server_info")


async def health(request: web.Request) -> web.Response:
    if time.monotonic() < request.app[SETTINGS]["ready_at"]:
        return web.Response(status=503)
    return web.Response(text="")


async def models(request: web.Request) -> web.Response:
    # The names (never the values) of the test bed's variables it was given: a secret arrived.
    given = sorted(name for name in os.environ if name.startswith("BED_"))
    return web.json_response(
        {"object": "list", "data": [{"id": request.app[SETTINGS]["model"]}], "env": given}
    )


async def admin(request: web.Request) -> web.Response:
    request.app[RECEIVED].add(request.path, CIMultiDict(request.headers), await request.read())
    return web.json_response({"admin": request.path})


async def echo(request: web.Request) -> web.Response:
    """What a public route received: its path, model (JSON or form field) and body size."""
    body = await request.read()
    request.app[RECEIVED].add(request.path, CIMultiDict(request.headers), body)
    model = request.app[SETTINGS]["model"]
    if request.path == "/tokenize":
        return web.json_response({"count": 3, "max_model_len": 4096, "tokens": [1, 2, 3]})
    return web.json_response({"object": "echo", "path": request.path, "model": model, "bytes": len(body)})


async def count_tokens(request: web.Request) -> web.Response:
    body = await request.read()
    request.app[RECEIVED].add(request.path, CIMultiDict(request.headers), body)
    return web.json_response({"input_tokens": 7})


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + json.dumps({"type": kind, **data}).encode() + b"\n\n"


async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic's Messages API, as vLLM serves it: one text block, plain or as its event stream."""
    settings, received = request.app[SETTINGS], request.app[RECEIVED]
    body = await request.read()
    received.add(request.path, CIMultiDict(request.headers), body)
    document: dict[str, Any] = json.loads(body)
    if document.get("model") != settings["model"]:
        error = {"type": "not_found_error", "message": f"model {document.get('model')!r} not served"}
        return web.json_response({"type": "error", "error": error}, status=404)
    words = [f"word{i} " for i in range(settings["chunks"])]
    message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": settings["model"]}
    usage = {"input_tokens": 3, "output_tokens": len(words)}
    if not document.get("stream"):
        await asyncio.sleep(settings["interval"])
        received.completed += 1
        content = [{"type": "text", "text": "".join(words)}]
        return web.json_response({**message, "content": content, "stop_reason": "end_turn", "usage": usage})
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    try:
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 0}}
        await response.write(_event("message_start", {"message": start}))
        block = {"index": 0, "content_block": {"type": "text", "text": ""}}
        await response.write(_event("content_block_start", block))
        for index, word in enumerate(words):
            if settings["die_after"] is not None and index == settings["die_after"]:
                assert request.transport is not None
                request.transport.abort()
                return response
            delta = {"index": 0, "delta": {"type": "text_delta", "text": word}}
            await response.write(_event("content_block_delta", delta))
            await asyncio.sleep(settings["interval"])
        await response.write(_event("content_block_stop", {"index": 0}))
        stop = {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": usage}
        await response.write(_event("message_delta", stop))
        await response.write(_event("message_stop", {}))
        received.completed += 1
    except (asyncio.CancelledError, ConnectionError):
        received.cancelled += 1
        raise
    return response


async def embeddings(request: web.Request) -> web.Response:
    body = await request.read()
    request.app[RECEIVED].add(request.path, CIMultiDict(request.headers), body)
    return web.json_response(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
            "model": request.app[SETTINGS]["model"],
        }
    )


async def completion(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    received = request.app[RECEIVED]
    body = await request.read()
    received.add(request.path, CIMultiDict(request.headers), body)
    document: dict[str, Any] = json.loads(body)
    if document.get("model") != settings["model"]:
        return web.json_response(
            {
                "error": {
                    "message": f"model {document.get('model')!r} not served",
                    "type": "NotFoundError",
                    "code": 404,
                }
            },
            status=404,
        )
    chat = request.path.endswith("chat/completions")
    chunks = settings["chunks"]
    if not document.get("stream"):
        await asyncio.sleep(settings["interval"])
        received.completed += 1
        text = "".join(f"word{i} " for i in range(chunks))
        choice = {
            "index": 0,
            "finish_reason": "stop",
            **({"message": {"role": "assistant", "content": text}} if chat else {"text": text}),
        }
        stored = request.path.endswith("/responses")  # vLLM names stored responses resp_...
        return web.json_response(
            {
                "id": "resp_fake1" if stored else "fake-1",
                "object": "chat.completion" if chat else "text_completion",
                "created": 0,
                "model": settings["model"],
                "choices": [choice],
                "usage": {
                    "prompt_tokens": 3,
                    "completion_tokens": chunks,
                    "total_tokens": 3 + chunks,
                },
            }
        )
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    try:
        for index in range(chunks):  # a benchmark's stream is 100,000 chunks: made one at a time
            word = f"word{index} "
            if settings["die_after"] is not None and index == settings["die_after"]:
                assert request.transport is not None
                request.transport.abort()  # an engine that crashes mid-answer
                return response
            delta = {"content": word} if chat else None
            choice = {"index": 0, "finish_reason": None, **({"delta": delta} if chat else {"text": word})}
            event = {
                "id": "fake-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": settings["model"],
                "choices": [choice],
            }
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            await asyncio.sleep(settings["interval"])
        await response.write(b"data: [DONE]\n\n")
        received.completed += 1
    except (asyncio.CancelledError, ConnectionError):
        # The client (sparkd) hung up: a real engine aborts the generation here.
        received.cancelled += 1
        raise
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--fail-at-start", action="store_true")
    parser.add_argument("--never-healthy", action="store_true")
    # In vLLM's place (the two-Spark Ray test): it answers as the served name and lets the
    # rest of vLLM's flags (--max-model-len, --tensor-parallel-size, ...) pass, printed.
    parser.add_argument("--served-model-name")
    args, vllm_flags = parser.parse_known_args()
    if vllm_flags:
        print(f"fake engine: vLLM's flags, not used here: {' '.join(vllm_flags)}", flush=True)
    if args.served_model_name:
        args.model = args.served_model_name
    if args.fail_at_start:
        print("fake engine: failing at start on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    # As a container's PID 1, a process gets no default SIGTERM action.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"fake engine {args.model} on {args.host}:{args.port}", flush=True)
    # Never healthy: /health answers 503 for as long as the engine runs.
    start_delay = float("inf") if args.never_healthy else args.start_delay
    web.run_app(
        make_app(args.model, start_delay, args.chunks, args.interval, record=False),
        host=args.host,
        port=args.port,
        print=None,
        handle_signals=False,
    )


if __name__ == "__main__":
    main()
