"""The one path every model-bound request takes, whatever its API family.

resolve the model → rewrite (before anything is woken: a body the rewrites
refuse costs nothing) → wait for a grant, telling a streaming client how
the start goes → forward and relay → account. A family (`sparkd.api.*`)
brings its body's meaning: how to rewrite it, how to show progress, which
envelope its errors use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

import aiohttp
from aiohttp import web

from sparkd import describe
from sparkd.accounting import CLIENT_CLOSED, Accounting, Outcome
from sparkd.catalogue import Catalogue, Model
from sparkd.edge import KEY_NAME, REQUEST_ID
from sparkd.effects import Grant
from sparkd.errors import ApiError, Envelope
from sparkd.plan import Plan, RewriteError
from sparkd.relay import Delivery, NoEngine, Relay
from sparkd.runtime import Runtime

log = logging.getLogger("sparkd.forward")
PROGRESS_INTERVAL = 1.0  # seconds between loading-progress lines
COUNT_TIMEOUT = aiohttp.ClientTimeout(total=30)


class Family(Protocol):
    """What an API family brings to the shared path."""

    envelope: Envelope

    def rewrite(
        self, document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None
    ) -> Plan: ...

    def progress_event(self, model: Model, endpoint: str, line: str) -> bytes:
        """An event a streaming client shows while it waits, besides the SSE comment (b"" for none)."""
        ...

    count_path: str  # the engine's route that counts a prompt's tokens exactly

    def count_request(self, document: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
        """The body that asks `count_path` for this request's prompt; None when it cannot be counted."""
        ...

    def counted(self, answer: dict[str, Any]) -> int | None:
        """The count in `count_path`'s answer."""
        ...


@dataclass(frozen=True, slots=True)
class Call:
    """One request for an engine, as its family's handler read it."""

    family: Family
    model: Model
    endpoint: str  # what the journal and the rewrites know the route by ("chat/completions", "rerank")
    document: dict[str, Any]
    body: bytes  # as received: forwarded unchanged unless a rewrite changed the document
    path: str = ""  # the engine's route; "": /v1/<endpoint>
    method: str = "POST"
    observe: Callable[[bytes], None] | None = None  # see relay.Delivery
    upload: IO[bytes] | None = None  # a body spooled to a file (an audio upload), sent as it is

    @property
    def engine_path(self) -> str:
        return self.path or f"/v1/{self.endpoint}"


@dataclass
class Forwarder:
    runtime: Runtime
    relay: Relay
    accounting: Accounting
    session: aiohttp.ClientSession  # for an engine's /tokenize
    loading_progress: bool = True

    async def serve(self, request: web.Request, call: Call) -> web.StreamResponse:
        model = call.model
        outcome = Outcome(
            request[REQUEST_ID], model.id, call.endpoint, time.monotonic(), request.get(KEY_NAME)
        )
        plan = call.family.rewrite(call.document, model, call.endpoint, None)
        ticket = self.runtime.tickets.new()
        future = self.runtime.submit(model.id, ticket)
        early: web.StreamResponse | None = None  # an SSE answer begun while the model loads
        try:
            if not future.done() and self.loading_progress and call.document.get("stream") is True:
                early = await _begin_stream(request, plan.applied)
            outcome.grant = await self._granted(future, ticket, call, early)
            body = await self._final_body(call, plan)
            envelope = call.family.envelope
            delivery = Delivery(request, model, envelope, plan.applied, early, call.method, call.observe)
            path = call.engine_path
            try:
                return await self.relay.forward(delivery, path, body, ticket, outcome)
            except NoEngine as missing:
                # The engine never saw the request (it died, or hangs, and
                # systemd has not said so yet): wait for the model brought
                # back, and send it once more.
                outcome.grant = None
                future = self.runtime.engine_unreachable(model.id, ticket, missing.cause)
                outcome.grant = await self._granted(future, ticket, call, early)
                try:
                    return await self.relay.forward(delivery, path, body, ticket, outcome)
                except NoEngine as again:
                    raise ApiError(
                        502, f"{model.id!r} did not answer, twice: {again.cause}", "engine_unreachable"
                    ) from None
        except ApiError as error:
            outcome.status = error.status
            if early is None:
                raise
            # The stream has begun: the failure arrives as an event, then the stream ends.
            with contextlib.suppress(ConnectionError):
                await early.write(error.sse_event(call.family.envelope))
            return early
        except ConnectionError:
            outcome.status = CLIENT_CLOSED
            return early or web.Response(status=CLIENT_CLOSED)
        finally:
            if outcome.grant is not None:
                self.runtime.release(ticket)
            # Accounted once the answer is on its way: not part of the client's wait.
            asyncio.get_running_loop().call_soon(self.accounting.record, outcome, time.monotonic())

    async def _final_body(self, call: Call, plan: Plan) -> bytes | IO[bytes]:
        """The bytes to send: the client's own, unless a rewrite (or an exact count) changed them."""
        if call.upload is not None:
            return call.upload
        if call.method != "POST":
            return call.body
        if plan.wants_exact_count:
            plan = await self._recount(call, plan)
        if plan.document.get("model") != call.model.id:
            # The engine knows a model only by its id (its served name).
            plan.document["model"] = call.model.id
            plan.applied.append("model_name")
        if not plan.changed:
            return call.body
        log.debug("rewrote %s", ", ".join(plan.applied))
        return json.dumps(plan.document).encode()

    async def _granted(
        self, future: asyncio.Future[Grant], ticket: int, call: Call, early: web.StreamResponse | None
    ) -> Grant:
        """The grant for `ticket`; a stream already begun hears how the model's start goes.

        SSE comment lines are ignored by SDKs but keep proxies and clients
        from timing out; a family may show the progress in its own events too.
        """
        if early is None:
            return await self.runtime.wait(future, ticket)
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=PROGRESS_INTERVAL)
                if done:
                    return future.result()
                runtime = self.runtime
                pull = runtime.pulls.progress(call.model.id)
                line = describe.waiting_for(runtime.scheduler, call.model.id, runtime.clock(), pull)
                await early.write(f": sparkd: {line}\n\n".encode())
                event = call.family.progress_event(call.model, call.endpoint, line + "\n")
                if event:
                    await early.write(event)
        except (asyncio.CancelledError, ConnectionError):
            if not future.done():
                self.runtime.abandon(ticket)
            elif not future.cancelled() and future.exception() is None:
                self.runtime.release(ticket)  # granted just as the client left
            raise

    async def _recount(self, call: Call, plan: Plan) -> Plan:
        """The prompt is close to the context: let the engine's own tokenizer count it, then budget again."""
        family = call.family
        count_request = family.count_request(plan.document, call.endpoint)
        if count_request is None:
            return plan
        count_request["model"] = call.model.id
        url = f"http://127.0.0.1:{call.model.engine_port}{family.count_path}"
        try:
            async with self.session.post(url, json=count_request, timeout=COUNT_TIMEOUT) as response:
                answer = await response.json() if response.status == 200 else None
            counted = family.counted(answer) if isinstance(answer, dict) else None
        except (aiohttp.ClientError, OSError, ValueError, TimeoutError):
            counted = None
        if not isinstance(counted, int):
            return plan  # no exact count to be had: the estimate stands
        return call.family.rewrite(call.document, call.model, call.endpoint, counted)


def resolve(catalogue: Catalogue, name: str) -> Model:
    """The enabled model `name` (an id or an alias) stands for; a 404 with close matches if none."""
    model = catalogue.resolve(name)
    if model is None or not model.enabled:
        hints = catalogue.close_matches(name)
        hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        why = "is disabled" if model is not None else "does not exist"
        raise ApiError(
            404, f"model {name!r} {why}{hint} (GET /v1/models lists them)", "model_not_found", "model"
        )
    return model


async def _begin_stream(request: web.Request, applied: list[str]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    if applied:
        response.headers["X-Sparkd-Rewrites"] = ",".join(applied)
    await response.prepare(request)
    return response


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; a 400 that says what is wrong otherwise."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply", "invalid_json") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}", "invalid_json") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the request body must be a JSON object", "invalid_json")
    return document


def checked_rewrite(rewrite: Callable[[], Plan]) -> Plan:
    """A family's rewrite, with a body it refuses turned into the 400 that names the field."""
    try:
        return rewrite()
    except RewriteError as error:
        raise ApiError(400, str(error), "invalid_field", error.param) from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply", "invalid_json") from None
