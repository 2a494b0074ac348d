"""sparkd's gateway and runtime, for real, on loopback, against fake engines and a fake systemd.

The fake systemd answers the way the real one does over D-Bus: a start job
whose end is signalled separately, a unit that turns inactive when stopped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from sparkd.app import Edges, build_app
from sparkd.appstate import RUNTIME
from sparkd.auth import KeyRing
from sparkd.catalogue import Catalogue, load_catalogue
from sparkd.edge import HEADER_LIMIT
from sparkd.memory import MemoryBook
from sparkd.pulls import NoPulls, Pulls
from sparkd.runtime import Runtime
from sparkd.settings import Link, Peer, Settings
from sparkd.systemd import BusEvent, JobDone, UnitChanged
from tests.fake_engine import make_app
from tests.waiting import settled

KEY = "test-key-0123456789abcdef"
UI_SECRET = b"dashboard-session-secret-for-tests"
OTHER_KEY = "other-key-0123456789abcdef"


@dataclass
class FakeUnits:
    """systemd as the runtime sees it: calls in, signals out (on the next loop turn)."""

    on_event: Callable[[BusEvent], None] | None = None
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)  # units whose failures and start count were forgotten
    timers: dict[str, float] = field(default_factory=dict)
    fail_start: set[str] = field(default_factory=set)
    slow_start: set[str] = field(default_factory=set)  # the start job ends only when stopped
    # Runs as a unit starts (a test brings an engine it took down back to life).
    on_start: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    _pending: dict[str, str] = field(default_factory=dict)
    _jobs: itertools.count[int] = field(default_factory=itertools.count)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _signal(self, event: JobDone | UnitChanged) -> None:
        assert self.on_event is not None
        asyncio.get_running_loop().call_soon(self.on_event, event)

    async def start_unit(self, unit: str) -> str:
        job = f"/job/{next(self._jobs)}"
        self.started.append(unit)
        if unit in self.on_start:
            await self.on_start[unit]()
        if unit in self.slow_start:
            self._pending[unit] = job
            self._signal(UnitChanged(unit, "inactive", "dead", "", None))  # as systemd does on load
            return job
        self._signal(JobDone(job, unit, "failed" if unit in self.fail_start else "done"))
        return job

    async def stop_unit(self, unit: str) -> str:
        self.stopped.append(unit)
        self._signal(UnitChanged(unit, "inactive", "dead", "success", 0))
        pending = self._pending.pop(unit, None)
        if pending is not None:  # a stop cancels the start job, whose end is signalled after
            self._signal(JobDone(pending, unit, "canceled"))
        return f"/job/{next(self._jobs)}"

    async def reset_failed_unit(self, unit: str) -> None:
        self.reset.append(unit)

    async def active_units(self, pattern: str) -> list[str]:
        return []

    async def arm_idle_timer(self, model_id: str, seconds: float) -> None:
        self.timers[model_id] = seconds

    async def disarm_idle_timer(self, model_id: str) -> None:
        self.timers.pop(model_id, None)

    async def unit_result(self, unit: str) -> tuple[str, int | None]:
        return ("exit-code", 1) if unit in self.fail_start else ("success", 0)

    async def unit_memory(self, unit: str) -> tuple[int | None, int | None]:
        return (123 * 2**20, None) if unit in self.started and unit not in self.stopped else (None, None)


class NoJournal:
    async def tail(self, unit: str, lines: int) -> str:
        return "fake engine: CUDA out of memory"


@dataclass
class Bed:
    url: str
    units: FakeUnits
    engines: dict[str, web.Application]
    runners: dict[str, web.AppRunner]  # each engine's server, to take one down and bring it back
    runtime: Runtime
    catalogue: Catalogue
    session: aiohttp.ClientSession
    control: Path  # the control socket (a Unix socket: no key needed)

    def headers(self, key: str = KEY) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


EXTRA = {
    # beta: every rewrite off, so its bodies must arrive byte for byte.
    "beta": "progress_as_reasoning = true\n"
    "[models.beta.rewrites]\nfill_max_tokens = false\ncap_max_tokens = false",
    "helper": 'tool_support = "none"',
}


def catalogue_text(ports: dict[str, int], more: dict[str, str] | None = None) -> str:
    """alpha and beta serve both API families, helper only OpenAI's; `more` adds keys to a model."""
    roles = {"alpha": "main", "beta": "main", "helper": "utility"}
    families = {"alpha": '["openai", "anthropic"]', "beta": '["openai", "anthropic"]', "helper": '["openai"]'}
    out = []
    for model_id, port in ports.items():
        out.append(f"""
[models.{model_id}]
engine = "generic"
image = "localhost/fake:latest"
command = ["fake"]
port = {port}
context_length = 4096
role = "{roles.get(model_id, "main")}"
aliases = ["{model_id}-alias"]
start_timeout = "5s"
api_families = {families[model_id]}
{(more or {}).get(model_id, "")}
{EXTRA.get(model_id, "")}
""")
    out.append(
        '[models.off]\nengine = "generic"\nimage = "x"\ncommand = ["x"]\ncontext_length = 1\n'
        'status = "disabled"\n'
    )
    return "\n".join(out)


@asynccontextmanager
async def gateway(
    tmp_path: Path,
    queue_cap: int = 100,
    engine_options: dict[str, dict[str, object]] | None = None,
    max_body: int = 1024 * 1024,
    busy_policy: str = "queue",
    fit_gate: bool = False,
    memory_peaks: dict[str, int] | None = None,
    free_memory: int = 64 * 2**30,
    drop_page_cache: str = "no",
    more: dict[str, str] | None = None,
    max_upload: int = 64 * 1024 * 1024,
    cors_origins: tuple[str, ...] = (),
    peers: tuple[Peer, ...] = (),
    check_settled: bool = True,  # off for a sparkd inside another's block: the outer one checks both
    swap_hold: float | str = 0.0,  # swaps at once here; tests/unit/test_swap_hold.py pins the hold
    link: Link | None = None,
    pulls: Pulls | None = None,
) -> AsyncIterator[Bed]:
    runners: dict[str, web.AppRunner] = {}
    engines: dict[str, web.Application] = {}
    ports: dict[str, int] = {}
    for model_id in ("alpha", "beta", "helper"):
        engine = make_app(model_id, **(engine_options or {}).get(model_id, {}))  # type: ignore[arg-type]
        engine_runner = web.AppRunner(engine)
        await engine_runner.setup()
        await web.TCPSite(engine_runner, "127.0.0.1", 0).start()
        runners[model_id] = engine_runner
        engines[model_id] = engine
        ports[model_id] = engine_runner.addresses[0][1]
    shipped = tmp_path / "catalogue"
    shipped.mkdir(exist_ok=True)
    (shipped / "test.toml").write_text(catalogue_text(ports, more))
    catalogue = load_catalogue(shipped, None)
    keys_file = tmp_path / "api-keys"
    keys_file.write_text(f"me:{KEY}\nother:{OTHER_KEY}\n")
    keys = KeyRing(keys_file)
    keys.load()
    settings = Settings(
        queue_cap=queue_cap,
        busy_policy=busy_policy,  # type: ignore[arg-type]
        swap_hold=swap_hold,  # type: ignore[arg-type]
        fit_gate=fit_gate,
        drop_page_cache=drop_page_cache,  # type: ignore[arg-type]
        max_body_bytes=max_body,
        max_upload_bytes=max_upload,
        cors_origins=cors_origins,
        health_interval=0.02,
        peers=peers,
        link=link,
        secrets_dir=tmp_path / "secrets",
    )
    units = FakeUnits()

    def connect(on_event: Callable[[BusEvent], None]) -> FakeUnits:
        units.on_event = on_event
        return units

    edges = Edges(
        connect_units=connect,
        journal=NoJournal(),
        read_memory=lambda: 64 * 2**30,
        read_free=lambda: free_memory,
        memory=MemoryBook(memory_peaks),
        memory_readings=lambda: {"available": 1.0},
        ui_secret=UI_SECRET,
        pulls=pulls or NoPulls(),
    )
    app = build_app(settings, catalogue, keys, edges)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        max_line_size=HEADER_LIMIT,
        max_field_size=HEADER_LIMIT,
    )
    await runner.setup()
    client = aiohttp.ClientSession()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        control = tmp_path / "control.sock"
        await web.UnixSite(runner, str(control)).start()
        yield Bed(url, units, engines, runners, app[RUNTIME], catalogue, client, control)
    finally:
        await client.close()
        await runner.cleanup()
        for engine_runner in runners.values():
            await engine_runner.cleanup()
    if check_settled:
        await settled()


Scenario = Callable[["Bed"], Awaitable[None]]
CHAT: dict[str, object] = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}


def run(tmp_path: Path, scenario: Scenario, **options: object) -> None:
    async def main() -> None:
        async with gateway(tmp_path, **options) as bed:  # type: ignore[arg-type]
            await asyncio.wait_for(scenario(bed), timeout=30)

    asyncio.run(main())


async def post(
    bed: Bed, path: str, body: object, key: str | None = KEY, headers: dict[str, str] | None = None
) -> tuple[int, Mapping[str, str], dict[str, object]]:
    all_headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with bed.session.post(bed.url + path, data=data, headers=all_headers) as response:
        text = await response.read()
        payload = json.loads(text) if text.startswith(b"{") else {}
        return response.status, CIMultiDict(response.headers), payload


def error_code(payload: dict[str, object]) -> object:
    error = payload["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    return error["code"]
