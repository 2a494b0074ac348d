"""sparkd's own routes: `/healthz`, `/metrics`, `/sparkd/status`, model control and logs, and the 404."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from aiohttp import web

from sparkd import journal, names
from sparkd.appstate import CATALOGUE, METRICS, PEERS, RUNTIME, STARTED_AT
from sparkd.duration import parse_seconds
from sparkd.engine_log import loading_progress
from sparkd.errors import ApiError
from sparkd.forward import resolve
from sparkd.lifecycle import Phase, StartStep
from sparkd.status import Disk, snapshot
from sparkd.systemd import SystemdError

if TYPE_CHECKING:
    from sparkd.catalogue import Catalogue
    from sparkd.runtime import Runtime


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/sparkd/status", status)
    app.router.add_post(r"/sparkd/models/{model}/{action:start|stop|keep-warm|pull}", control)
    app.router.add_get("/sparkd/logs/{name}", logs)


def add_fallback(app: web.Application) -> None:
    """Last of all routes: anything else is a 404 in the envelope (never aiohttp's bare page)."""
    app.router.add_route("*", "/{tail:.*}", not_found)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def prometheus(request: web.Request) -> web.Response:
    request.app[RUNTIME].sample_memory()
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8")


async def status(request: web.Request) -> web.Response:
    runtime, catalogue = request.app[RUNTIME], request.app[CATALOGUE]
    unit_memory = {}
    for model in catalogue.enabled():
        if runtime.scheduler.phase(model.id) is not Phase.STOPPED:
            with contextlib.suppress(Exception):
                unit_memory[model.id] = await runtime.units.unit_memory(model.unit_name)
    try:
        available: int | None = runtime.read_memory()
    except (OSError, ValueError):
        available = None
    now = time.monotonic()
    disk = await _disk(runtime, catalogue, now)
    started = request.app[STARTED_AT]
    document = snapshot(
        runtime.scheduler, catalogue, now, started, runtime.memory, available, unit_memory, disk
    )
    peers = request.app[PEERS]
    if peers.table.peers:
        document["peers"] = (await peers.fresh()).report()
    return web.json_response(document)


async def _disk(runtime: Runtime, catalogue: Catalogue, now: float) -> Disk:
    """Downloads under way, what starting engines' logs say, and pulled weights' sizes."""
    pulls, loading, pulled = {}, {}, {}
    for model in catalogue.enabled():
        size = runtime.pulls.pulled_bytes(model.id)
        if size is not None:
            pulled[model.id] = size
        step = runtime.scheduler.view(model.id, now).start_step
        if step is StartStep.PULLING:
            progress = runtime.pulls.progress(model.id)
            if progress is not None:
                pulls[model.id] = progress
        elif step in (StartStep.JOB, StartStep.PROBING):
            with contextlib.suppress(Exception):
                said = loading_progress((await runtime.journal.tail(model.unit_name, 40)).splitlines())
                if said:
                    loading[model.id] = said
    not_pulled = frozenset(m.id for m in catalogue.enabled() if runtime.pulls.missing(m.id))
    return Disk(pulls, loading, pulled, not_pulled)


async def control(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    model = resolve(request.app[CATALOGUE], request.match_info["model"])
    action = request.match_info["action"]
    if action == "start":
        runtime.manual_start(model.id)
    elif action == "stop":
        runtime.manual_stop(model.id)
    elif action == "pull":
        if not runtime.pulls.missing(model.id):
            raise ApiError(409, f"{model.id!r} has its weights (or needs none)", "nothing_to_pull")
        try:
            await runtime.pull_now(model.id)
        except SystemdError as error:
            raise ApiError(503, f"systemd refused the download: {error}", "pull_refused") from None
        return web.json_response(
            {"model": model.id, "action": action, "unit": names.pull_unit(model.id)}, status=202
        )
    else:
        try:
            seconds = parse_seconds(request.query.get("for", ""))
        except ValueError as error:
            raise ApiError(
                400, f"keep-warm needs ?for=<duration>: {error}", "invalid_duration", "for"
            ) from None
        runtime.keep_warm(model.id, seconds)
    holder = runtime.scheduler.tenant()
    body = {
        "model": model.id,
        "action": action,
        "phase": runtime.scheduler.phase(model.id).value,
        "tenant": holder,
    }
    if action != "stop" and model.role.value != "utility" and holder not in (None, model.id):
        body["note"] = f"{holder!r} is answering requests; {model.id!r} starts when it is idle"
    return web.json_response(body, status=202)


async def logs(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    unit = names.DAEMON_UNIT if name == "sparkd" else resolve(request.app[CATALOGUE], name).unit_name
    argv = names.journalctl(
        unit,
        _whole(request.query.get("lines", "100"), "lines"),
        since=request.query.get("since") or None,
        follow=request.query.get("follow") in ("1", "true", "yes"),
    )
    async with journal.Stream(argv) as lines:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        async for line in lines:
            await response.write(line)
        await response.write_eof()
    return response


async def not_found(request: web.Request) -> web.Response:
    raise ApiError(404, f"no route {request.method} {request.path}", "unknown_route")


def _whole(value: str, name: str) -> int:
    if not value.isdigit():
        raise ApiError(400, f"`{name}` must be a whole number", "invalid_query", name)
    return int(value)
