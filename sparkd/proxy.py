"""The OpenAI-compatible HTTP edge: auth, routing by model, forwarding, streaming.

Only the routes below reach an engine; an engine's own admin routes
(/tokenize, /sleep, /collective_rpc, /metrics ...) are never forwarded.
Request bodies are forwarded as the bytes the client sent unless sparkd has
to change them (a path-style or alias model name), and SSE answers are
relayed chunk by chunk as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from sparkd.auth import KeyRing, presented_key
from sparkd.catalogue import Catalogue, Model
from sparkd.duration import parse_seconds
from sparkd.errors import ApiError
from sparkd.logs import RequestLog
from sparkd.metrics import Metrics
from sparkd.rewrite import Plan, RewriteError, rewrite, tokenize_request
from sparkd.runtime import Runtime
from sparkd.scheduler import Grant, Phase
from sparkd.status import snapshot
from sparkd.upstream import EngineGone, EnginePool, EngineResponse

log = logging.getLogger("sparkd.proxy")

ENDPOINTS = ("chat/completions", "completions", "embeddings", "responses")
# Request headers an engine needs; everything else (credentials above all) stays here.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "Accept-Encoding", "User-Agent")
RELAYED_RESPONSE_HEADERS = (("Content-Type", "content-type"), ("Cache-Control", "cache-control"))
CORS_ORIGIN = re.compile(r"^(http://localhost(:\d+)?|http://127\.0\.0\.1(:\d+)?|vscode-webview://.+)$")
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "DNT,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
    "Content-Type,Range,Authorization,X-Api-Key",
    "Access-Control-Expose-Headers": "Content-Length,Content-Range,Retry-After,X-Request-Id",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Header limits for the HTTP server: long enough that any key reaches sparkd's
# own auth check (and its error envelope) rather than the parser's bare 400.
HEADER_LIMIT = 65536
REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_CLOSED = 499  # logged when the client hung up before the answer was complete
PROGRESS_INTERVAL = 1.0  # seconds between loading-progress lines
KEY_NAME = web.RequestKey("key_name", str)


def _request_ids() -> Callable[[], str]:
    prefix = os.urandom(4).hex()
    counter = iter(range(1, 1 << 62))
    return lambda: f"{prefix}-{next(counter):x}"


@dataclass
class Gateway:
    catalogue: Catalogue
    runtime: Runtime
    keys: KeyRing
    session: aiohttp.ClientSession
    max_body: int
    metrics: Metrics
    loading_progress: bool = True
    engines: EnginePool = field(default_factory=EnginePool)  # the request path's connections to engines

    def __post_init__(self) -> None:
        self._next_id = _request_ids()
        self._started_at = time.monotonic()
        self.request_log = RequestLog()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body, middlewares=[self._edge])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/v1/models", self.models)
        for endpoint in ENDPOINTS:
            app.router.add_post(f"/v1/{endpoint}", self.openai)
        # The original stack's path form: /v1/<model>/<endpoint>.
        app.router.add_post(
            r"/v1/{model}/{endpoint:chat/completions|completions|embeddings|responses}", self.openai
        )
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/sparkd/status", self.status)
        app.router.add_post(r"/sparkd/models/{model}/{action:start|stop|keep-warm}", self.control)
        app.router.add_get("/sparkd/logs/{name}", self.logs)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        return app

    # Middleware: request id, CORS, auth, and the one place errors become envelopes.

    @web.middleware
    async def _edge(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = self._next_id()
        request[REQUEST_ID] = request_id
        origin = request.headers.get("Origin")
        cors = (
            {"Access-Control-Allow-Origin": origin, **CORS_HEADERS}
            if origin and CORS_ORIGIN.match(origin)
            else {}
        )
        try:
            if request.method == "OPTIONS" and request.path.startswith("/v1/"):
                response: web.StreamResponse = web.Response(status=204)
            else:
                if request.path != "/healthz":
                    self._authenticate(request)
                response = await handler(request)
        except ApiError as error:
            response = error.response()
        except web.HTTPRequestEntityTooLarge:
            response = ApiError(
                413, f"the request body is larger than {self.max_body} bytes", "body_too_large"
            ).response()
        except web.HTTPException as http:
            response = ApiError(http.status, http.reason, None).response()
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            # A bug of sparkd's own: logged with its traceback, answered in the envelope.
            log.exception("%s: unexpected error", request_id)
            response = ApiError(
                500, f"internal error (request {request_id}); see the journal", "internal_error"
            ).response()
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
            response.headers.update(cors)
        return response

    def _authenticate(self, request: web.Request) -> None:
        if request.query_string and ("key" in request.query or "api_key" in request.query):
            raise ApiError(401, "API keys go in the Authorization header, never in the URL", "key_in_url")
        key = presented_key(request.headers.get("Authorization"), request.headers.get("X-Api-Key"))
        name = self.keys.who(key)
        if name is None:
            raise ApiError(
                401,
                "missing or wrong API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
                "invalid_api_key",
            )
        request[KEY_NAME] = name

    # Routes -----------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def prometheus(self, request: web.Request) -> web.Response:
        self.runtime.sample_memory()
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")

    async def status(self, request: web.Request) -> web.Response:
        running = [m for m, st in self.runtime.scheduler.states.items() if st.phase is not Phase.STOPPED]
        unit_memory = {}
        for model_id in running:
            with contextlib.suppress(Exception):
                unit_memory[model_id] = await self.runtime.units.unit_memory(
                    self.catalogue.models[model_id].unit_name
                )
        try:
            available: int | None = self.runtime.read_memory()
        except (OSError, ValueError):
            available = None
        document = snapshot(
            self.runtime.scheduler,
            self.catalogue,
            time.monotonic(),
            self._started_at,
            self.runtime.memory,
            available,
            unit_memory,
        )
        return web.json_response(document)

    async def control(self, request: web.Request) -> web.Response:
        model = self._resolve(request.match_info["model"])
        action = request.match_info["action"]
        if action == "start":
            self.runtime.manual_start(model.id)
        elif action == "stop":
            self.runtime.manual_stop(model.id)
        else:
            try:
                seconds = parse_seconds(request.query.get("for", ""))
            except ValueError as error:
                raise ApiError(
                    400, f"keep-warm needs ?for=<duration>: {error}", "invalid_duration", "for"
                ) from None
            self.runtime.keep_warm(model.id, seconds)
        state = self.runtime.scheduler.states[model.id]
        holder = self.runtime.scheduler.tenant()
        body = {"model": model.id, "action": action, "phase": state.phase.value, "tenant": holder}
        if action != "stop" and model.role.value != "utility" and holder not in (None, model.id):
            body["note"] = f"{holder!r} is answering requests; {model.id!r} starts when it is idle"
        return web.json_response(body, status=202)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        unit = "sparkd.service" if name == "sparkd" else self._resolve(name).unit_name
        argv = [
            "journalctl",
            "-u",
            unit,
            "--no-pager",
            "-o",
            "short-iso",
            "-n",
            str(_whole(request.query.get("lines", "100"), "lines")),
        ]
        if request.query.get("since"):
            argv += ["--since", request.query["since"]]
        if request.query.get("follow") in ("1", "true", "yes"):
            argv.append("--follow")
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        response.headers["X-Request-Id"] = request[REQUEST_ID]
        await response.prepare(request)
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                await response.write(line)
            await response.write_eof()
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        return response

    async def not_found(self, request: web.Request) -> web.Response:
        raise ApiError(404, f"no route {request.method} {request.path}", "unknown_route")

    async def models(self, request: web.Request) -> web.Response:
        data = []
        for model in self.catalogue.enabled():
            state = self.runtime.scheduler.states.get(model.id)
            data.append(
                {
                    "id": model.id,
                    "object": "model",
                    "created": 0,
                    "owned_by": "sparkd",
                    "state": state.phase.value if state else "stopped",
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

    async def openai(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        endpoint = request.match_info.get("endpoint") or request.path.removeprefix("/v1/")
        body = await request.read()
        document = _json_object(body)
        name = request.match_info.get("model") or document.get("model")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "the request body needs a `model` (a string)", "missing_model", "model")
        model = self._resolve(name)
        # Rewrites come before any model is woken: a body they refuse costs nothing.
        plan = self._rewrite(document, model, endpoint)
        request_id = request[REQUEST_ID]
        ticket = self.runtime.new_request_id()
        future = self.runtime.submit(model.id, ticket)
        early: web.StreamResponse | None = None  # an SSE answer begun while the model loads
        grant: Grant | None = None
        status, first_byte, sent = 0, None, 0
        try:
            if not future.done() and self.loading_progress and document.get("stream") is True:
                early = await self._begin_stream(request, plan.applied)
            grant = await self._granted(future, ticket, model, endpoint, early)
            if plan.wants_exact_count:
                plan = await self._recount(document, model, endpoint, plan)
            if plan.document.get("model") != model.id:
                # The engine knows a model only by its id (its served name).
                plan.document["model"] = model.id
                plan.applied.append("model_name")
            if plan.changed:
                body = json.dumps(plan.document).encode()
                log.debug("%s: rewrote %s", request_id, ", ".join(plan.applied))
            try:
                status, first_byte, sent, response = await self._forward(
                    request, model, endpoint, body, ticket, plan.applied, early
                )
            except _NoEngine as missing:
                # The engine never saw the request (it died, or hangs, and
                # systemd has not said so yet): wait for the model brought
                # back, and send it once more.
                grant = None
                future = self.runtime.engine_unreachable(model.id, ticket, missing.cause)
                grant = await self._granted(future, ticket, model, endpoint, early)
                try:
                    status, first_byte, sent, response = await self._forward(
                        request, model, endpoint, body, ticket, plan.applied, early
                    )
                except _NoEngine as again:
                    raise ApiError(
                        502, f"{model.id!r} did not answer, twice: {again.cause}", "engine_unreachable"
                    ) from None
            return response
        except ApiError as error:
            status = error.status
            if early is None:
                raise
            # The stream has begun: the failure arrives as an event, then the stream ends.
            with contextlib.suppress(ConnectionError):
                await early.write(error.sse_event())
            return early
        except ConnectionError:
            status = CLIENT_CLOSED
            return early or web.Response(status=CLIENT_CLOSED)
        finally:
            if grant is not None:
                self.runtime.release(ticket)
            # Accounted once the answer is on its way: the journal entry and the
            # metrics are not part of the client's wait.
            asyncio.get_running_loop().call_soon(
                self._account,
                request,
                model.id,
                endpoint,
                status,
                started,
                time.monotonic(),
                first_byte,
                sent,
                grant,
            )

    def _account(
        self,
        request: web.Request,
        model_id: str,
        endpoint: str,
        status: int,
        started: float,
        finished: float,
        first_byte: float | None,
        sent: int,
        grant: Grant | None,
    ) -> None:
        """One metrics update and one structured journal entry per request."""
        waited = grant.waited if grant else finished - started
        self.metrics.request_done(
            model_id, status, finished - started, first_byte - started if first_byte else None, waited
        )
        request_id = request[REQUEST_ID]
        self.request_log.write(
            f"{request_id} {model_id} {endpoint} {status}",
            {
                "request_id": request_id,
                "model": model_id,
                "endpoint": endpoint,
                "status": status,
                "duration_ms": round((finished - started) * 1000, 1),
                "ttfb_ms": round((first_byte - started) * 1000, 1) if first_byte else None,
                "queue_ms": round(waited * 1000, 1),
                "cold_start": "yes" if grant and grant.cold else "no",
                "bytes": sent,
                "key": request.get(KEY_NAME),
            },
        )

    async def _begin_stream(self, request: web.Request, applied: list[str]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        response.headers["X-Request-Id"] = request[REQUEST_ID]
        if applied:
            response.headers["X-Sparkd-Rewrites"] = ",".join(applied)
        origin = request.headers.get("Origin")
        if origin and CORS_ORIGIN.match(origin):
            response.headers.update({"Access-Control-Allow-Origin": origin, **CORS_HEADERS})
        await response.prepare(request)
        return response

    async def _granted(
        self,
        future: asyncio.Future[Grant],
        ticket: int,
        model: Model,
        endpoint: str,
        early: web.StreamResponse | None,
    ) -> Grant:
        """The grant for `ticket`; a stream already begun hears how the model's start goes."""
        if early is None:
            return await self.runtime.wait(future, ticket)
        return await self._wait_with_progress(early, model, endpoint, future, ticket)

    async def _wait_with_progress(
        self,
        response: web.StreamResponse,
        model: Model,
        endpoint: str,
        future: asyncio.Future[Grant],
        ticket: int,
    ) -> Grant:
        """Wait for the model, telling the client what it waits for once a second.

        SSE comment lines are ignored by SDKs but keep proxies and clients from
        timing out; with `progress_as_reasoning` chat clients also see the
        progress as reasoning text.
        """
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=PROGRESS_INTERVAL)
                if done:
                    return future.result()
                line = self.runtime.progress(model.id)
                await response.write(f": sparkd: {line}\n\n".encode())
                if model.progress_as_reasoning and endpoint == "chat/completions":
                    await response.write(_reasoning_event(model.id, line + "\n"))
        except (asyncio.CancelledError, ConnectionError):
            if not future.done():
                self.runtime.abandon(ticket)
            elif not future.cancelled() and future.exception() is None:
                self.runtime.release(ticket)  # granted just as the client left
            raise

    # Forwarding -----------------------------------------------------------------

    def _resolve(self, name: str) -> Model:
        model = self.catalogue.resolve(name)
        if model is None or not model.enabled:
            hints = self.catalogue.close_matches(name)
            hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
            why = "is disabled" if model is not None else "does not exist"
            raise ApiError(
                404, f"model {name!r} {why}{hint} (GET /v1/models lists them)", "model_not_found", "model"
            )
        return model

    def _rewrite(
        self, document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None = None
    ) -> Plan:
        try:
            return rewrite(document, model, endpoint, exact_prompt)
        except RewriteError as error:
            raise ApiError(400, str(error), "invalid_field", error.param) from None
        except RecursionError:
            raise ApiError(400, "the request body is nested too deeply", "invalid_json") from None

    async def _recount(self, document: dict[str, Any], model: Model, endpoint: str, plan: Plan) -> Plan:
        """The prompt is close to the context: let the engine's own tokenizer count it."""
        count_request = tokenize_request(plan.document, endpoint)
        if count_request is None:
            return plan
        count_request["model"] = model.id
        url = f"http://127.0.0.1:{model.engine_port}/tokenize"
        try:
            async with self.session.post(
                url, json=count_request, timeout=aiohttp.ClientTimeout(total=30)
            ) as response:
                counted = (await response.json()).get("count") if response.status == 200 else None
        except (aiohttp.ClientError, OSError, ValueError, TimeoutError):
            counted = None
        if not isinstance(counted, int):
            return plan  # no exact count to be had: the estimate stands
        return self._rewrite(document, model, endpoint, counted)

    async def _forward(
        self,
        request: web.Request,
        model: Model,
        endpoint: str,
        body: bytes,
        ticket: int,
        applied: list[str],
        early: web.StreamResponse | None = None,
    ) -> tuple[int, float | None, int, web.StreamResponse]:
        headers = {h: request.headers[h] for h in FORWARDED_REQUEST_HEADERS if h in request.headers}
        headers["X-Request-Id"] = request[REQUEST_ID]
        try:
            upstream = await self.engines.post(model.engine_port, f"/v1/{endpoint}", headers, body)
        except (OSError, EngineGone) as error:
            raise _NoEngine(str(error) or type(error).__name__) from None
        try:
            self.runtime.track(model.id, ticket, upstream)
            relay = {h: upstream.headers[k] for h, k in RELAYED_RESPONSE_HEADERS if k in upstream.headers}
            if applied:
                relay["X-Sparkd-Rewrites"] = ",".join(applied)
            first_byte = time.monotonic()
            if upstream.content_type == "text/event-stream":
                return await self._stream(request, model, upstream, relay, first_byte, early)
            try:
                data = await upstream.read()
            except EngineGone:
                raise ApiError(
                    502, f"{model.id!r} stopped before its answer was complete", "engine_died"
                ) from None
            if early is not None:
                # The engine refused (a 4xx, say) after the stream had begun.
                raise ApiError(
                    upstream.status if upstream.status >= 400 else 502, _engine_message(data), "engine_error"
                )
            response = web.Response(status=upstream.status, body=data, headers=relay)
            return upstream.status, first_byte, len(data), response
        finally:
            upstream.release()

    async def _stream(
        self,
        request: web.Request,
        model: Model,
        upstream: EngineResponse,
        relay: dict[str, str],
        first_byte: float,
        early: web.StreamResponse | None,
    ) -> tuple[int, float | None, int, web.StreamResponse]:
        if early is not None:
            response = early
        else:
            response = web.StreamResponse(status=upstream.status, headers=relay)
            response.headers["X-Request-Id"] = request[REQUEST_ID]
            origin = request.headers.get("Origin")
            if origin and CORS_ORIGIN.match(origin):
                response.headers.update({"Access-Control-Allow-Origin": origin, **CORS_HEADERS})
            await response.prepare(request)
        sent = 0
        while True:
            try:
                chunk = await upstream.readany()
            except EngineGone:
                # The engine went away mid-answer: say so in the stream and end
                # it, rather than leave the client waiting on a silent connection.
                error = ApiError(502, f"{model.id!r} stopped while streaming its answer", "engine_died")
                with contextlib.suppress(ConnectionError):
                    await response.write(error.sse_event())
                return 502, first_byte, sent, response
            if not chunk:
                break
            try:
                await response.write(chunk)
            except ConnectionError:
                # The client left; leaving this block closes the engine's
                # connection, which makes the engine abort the generation.
                return CLIENT_CLOSED, first_byte, sent, response
            sent += len(chunk)
        await response.write_eof()
        return upstream.status, first_byte, sent, response


class _NoEngine(Exception):
    """No answer from the engine before a single byte: it may be sent again."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _reasoning_event(model_id: str, text: str) -> bytes:
    chunk = {
        "id": "sparkd-progress",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "delta": {"reasoning_content": text}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _engine_message(data: bytes) -> str:
    try:
        message = json.loads(data)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = data[:500].decode(errors="replace")
    return f"the engine refused the request: {message}"


def _whole(value: str, name: str) -> int:
    if not value.isdigit():
        raise ApiError(400, f"`{name}` must be a whole number", "invalid_query", name)
    return int(value)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply", "invalid_json") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}", "invalid_json") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the request body must be a JSON object", "invalid_json")
    return document
