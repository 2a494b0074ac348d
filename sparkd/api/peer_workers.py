"""The worker's side of a split model: `POST /sparkd/peer/workers/<id>`, the peer's lease.

The Spark serving a split model (`sparkd.leases`) asks here for its worker
half. The lease is a request for the half like any request for this Spark's
GPU: it queues behind a busy tenant, swaps, and is granted once the half runs;
from then on it is a request in flight, so the half is never evicted. The
answer streams lines while the lease holds: `queued` at first, `ready` once the
half runs, `wanted`/`free` as someone here starts or stops waiting for the GPU,
a heartbeat (`.`) every few seconds, and `ended: <why>` if the half stops. The
head closing the request ends the lease; the half is then stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiohttp import web

from sparkd import names
from sparkd.appstate import RUNTIME
from sparkd.errors import ApiError
from sparkd.leases import HEARTBEAT

if TYPE_CHECKING:
    from sparkd.runtime import Runtime

LOOK = 1.0  # seconds between looks at whether someone here waits for the GPU


def add_routes(app: web.Application) -> None:
    app.router.add_post("/sparkd/peer/workers/{model}", lease)


class _Ended:
    """Tracked as the lease's running answer: the half stopping (AbortInFlight) releases it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def release(self) -> None:
        self.event.set()


async def lease(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    model = request.match_info["model"]
    half = names.worker_of(model)
    if half not in runtime.scheduler.policies:
        raise ApiError(
            404, f"{model!r} is no split model whose worker half this Spark runs", "model_not_found"
        )
    ticket = runtime.tickets.new()
    waiting = runtime.submit(half, ticket)
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    granted = False
    try:
        if not waiting.done():
            await response.write(b"queued\n")
        try:
            await runtime.wait(waiting, ticket)
        except ApiError as refused:
            await response.write(f"ended: {refused.message}\n".encode())
            return response
        granted = True
        await response.write(b"ready\n")
        await _hold(response, runtime, half, ticket)
    finally:
        if granted:
            runtime.tickets.untrack(ticket)
            runtime.release(ticket)  # the half has no lease left: it stops
        else:
            # The head left before the grant (even before the answer began): no lease may be
            # granted to nobody, which would hold the half, and this GPU, for good.
            runtime.abandon(ticket)
    return response


async def _hold(response: web.StreamResponse, runtime: Runtime, half: str, ticket: int) -> None:
    """Tell the head whether someone waits here for the GPU, until the half ends (or the head leaves:
    aiohttp then cancels this handler)."""
    ended = _Ended()
    runtime.tickets.track(half, ticket, ended)
    loop = asyncio.get_running_loop()
    told, said_at = False, loop.time()
    while not ended.event.is_set():
        wanted = runtime.scheduler.others_want_gpu(half)
        if wanted != told:
            await response.write(b"wanted\n" if wanted else b"free\n")
            told, said_at = wanted, loop.time()
        elif loop.time() - said_at >= HEARTBEAT:
            await response.write(b".\n")
            said_at = loop.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.event.wait(), LOOK)
    view = runtime.scheduler.view(half, runtime.clock())
    why = view.last_failure or f"its unit is {view.phase.value}"
    await response.write(f"ended: {why}\n".encode())
