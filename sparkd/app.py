"""The application factory: sparkd's aiohttp app, built from its configuration and its edges.

`build_app` makes every long-lived piece (HTTP session, D-Bus thread,
runtime, engine pool, request log) and ties each one's start and stop to
the app's `cleanup_ctx`, in order: a failure at any step of start-up stops
what had started, and shutdown runs in reverse. The daemon and the loopback
tests build the same app; they differ only in `Edges` (the real systemd or
a fake one).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiohttp import web

from sparkd import names
from sparkd.accounting import Accounting
from sparkd.api import admin, anthropic, dashboard, engine_routes, openai, peer_workers, uploads
from sparkd.appstate import (
    CATALOGUE,
    ENGINES,
    EVENTS,
    FORWARDER,
    KEYS,
    METRICS,
    PEERS,
    RESPONSES,
    RUNTIME,
    SESSIONS,
    SETTINGS,
    STARTED_AT,
)
from sparkd.auth import KeyRing
from sparkd.catalogue import Catalogue
from sparkd.edge import Edge
from sparkd.events import EventHub
from sparkd.forward import Forwarder
from sparkd.journal import JournalctlTail
from sparkd.leases import WorkerLeases
from sparkd.lifecycle import Policy
from sparkd.logs import RequestLog
from sparkd.memory import MemoryBook, mem_available, mem_free
from sparkd.metrics import Metrics
from sparkd.peers import Peers, PeerTable
from sparkd.pulls import NoPulls, Pulls
from sparkd.relay import Relay
from sparkd.response_owners import ResponseOwners
from sparkd.runtime import HttpHealthProbe, Runtime
from sparkd.scheduler import Scheduler
from sparkd.sessions import Sessions
from sparkd.settings import Peer, Settings
from sparkd.start_actions import JournalTail, UnitControl
from sparkd.systemd import BusEvent
from sparkd.upstream import EnginePool


class Bus(UnitControl, Protocol):
    """systemd as the app uses it: started with the app, closed after it."""

    def start(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class Edges:
    """The outside world the app talks to; the daemon's real one, or the tests' fakes."""

    connect_units: Callable[[Callable[[BusEvent], None]], Bus]  # called with where its events go
    journal: JournalTail = field(default_factory=JournalctlTail)
    read_memory: Callable[[], int] = mem_available
    read_free: Callable[[], int] = mem_free
    memory: MemoryBook = field(default_factory=MemoryBook)  # each model's recorded need
    memory_readings: Callable[[], dict[str, float]] | None = None  # for /metrics; None: none
    host_has_gpu: bool = True
    # Signs the dashboard's session cookies; the daemon's is kept in the state directory.
    ui_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    pulls: Pulls = field(default_factory=NoPulls)  # which models' weights are still to download


def build_app(settings: Settings, catalogue: Catalogue, keys: KeyRing, edges: Edges) -> web.Application:
    """The whole app, not yet started (call inside the running event loop)."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10),
        auto_decompress=False,
    )
    bus, runtime = _runtime(settings, catalogue, edges, session)
    engines = EnginePool()
    request_log = RequestLog()
    events = EventHub()
    sessions = Sessions(edges.ui_secret)
    forwarder = Forwarder(
        runtime,
        Relay(engines, runtime.tickets),
        Accounting(runtime.metrics, request_log, events),
        session,
        loading_progress=settings.loading_progress,
    )

    edge = Edge(
        keys,
        settings.max_body_bytes,
        families=[(anthropic.PREFIX, anthropic.FAMILY.envelope)],
        cors_origins=frozenset(settings.cors_origins),
        sessions=sessions,
    )
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[edge.middleware])
    app.on_response_prepare.append(edge.on_prepare)
    app[SETTINGS], app[CATALOGUE], app[RUNTIME] = settings, catalogue, runtime
    app[METRICS], app[ENGINES], app[FORWARDER] = runtime.metrics, engines, forwarder
    app[STARTED_AT], app[RESPONSES] = time.monotonic(), ResponseOwners()
    app[EVENTS], app[KEYS], app[SESSIONS] = events, keys, sessions
    # A connection per request to a peer: an answer takes seconds, a LAN handshake microseconds, and
    # a peer that restarted never leaves a dead pooled connection behind.
    peer_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    app[PEERS] = Peers(
        PeerTable(settings.peers), peer_session, key_of=lambda peer: secret_value(settings, peer)
    )

    async def http_session(app: web.Application) -> AsyncIterator[None]:
        yield
        await session.close()
        await peer_session.close()

    async def systemd(app: web.Application) -> AsyncIterator[None]:
        try:
            bus.start()
            await runtime.start()
            yield
        finally:
            await runtime.close()
            bus.close()

    async def request_path(app: web.Application) -> AsyncIterator[None]:
        yield
        request_log.flush()
        engines.close()

    app.cleanup_ctx.extend([http_session, systemd, request_path])
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    """Every route family, each its own module; the 404 in the envelope last."""
    for family in (openai, anthropic, engine_routes, uploads, admin, peer_workers, dashboard):
        family.add_routes(app)
    admin.add_fallback(app)


def _runtime(
    settings: Settings, catalogue: Catalogue, edges: Edges, session: aiohttp.ClientSession
) -> tuple[Bus, Runtime]:
    """The scheduler for the enabled models, and the runtime that acts for it through `edges`."""
    policies = {m.id: Policy.of(m, edges.host_has_gpu) for m in catalogue.enabled()}
    split = [m for m in catalogue.enabled() if m.nodes > 1] if settings.link is not None else []
    # This Spark runs the worker half of each split model for its peer, as the peer does for it.
    halves = {names.worker_of(m.id): dataclasses.replace(m, id=names.worker_of(m.id)) for m in split}
    policies |= {names.worker_of(m.id): Policy.worker_half(m) for m in split}
    scheduler = Scheduler(
        policies,
        queue_cap=settings.queue_cap,
        wait_margin=settings.wait_margin,
        refuse_when_busy=settings.busy_policy == "refuse",
        fit_gate=settings.fit_gate,
        pull_on_demand=settings.pull_on_demand,
        swap_hold=settings.swap_hold,
        linked=settings.link is not None,
        drop_page_cache=settings.drop_page_cache == "yes"
        or (settings.drop_page_cache == "auto" and edges.host_has_gpu),
    )
    # The bus hands events to the runtime, which acts through the bus.
    bus = edges.connect_units(lambda event: runtime.on_bus_event(event))  # noqa: PLW0108 - runtime comes next
    runtime = Runtime(
        catalogue,
        scheduler,
        bus,
        HttpHealthProbe(session),
        edges.journal,
        Metrics(scheduler, edges.memory_readings or dict),
        health_interval=settings.health_interval,
        read_memory=edges.read_memory,
        read_free=edges.read_free,
        memory=edges.memory,
        pulls=edges.pulls,
        halves=halves,
    )
    if split:
        assert settings.link is not None
        peer = next(p for p in settings.peers if p.name == settings.link.peer)
        runtime.leases = WorkerLeases(
            peer, lambda: secret_value(settings, peer), session, {m.id for m in split}, runtime
        )
    return bus, runtime


def secret_value(settings: Settings, peer: Peer) -> str | None:
    """A peer's key, read from its secret each time (a `sparkd secret set` needs no restart)."""
    from sparkd import secrets as stored

    return stored.value(settings.secrets_dir, peer.key_secret)
