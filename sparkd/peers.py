"""Peer sparkds: which models each serves, and answering a request for one of them through this one.

Clients keep one endpoint: a model that only a peer serves is listed by
`/v1/models` (with its host) and each request for it is relayed to the peer,
authenticated with the peer's key (a secret), its answer passed back
unchanged: status, Retry-After and all, so the peer's own scheduling answers
(429, 503) reach the client as they are. What each peer serves is asked at
most every `REFRESH` seconds, with a short timeout: a peer that is down is
reported (`/sparkd/status`) and never waited on for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from sparkd.errors import ApiError
from sparkd.settings import Peer

log = logging.getLogger("sparkd.peers")
REFRESH = 10.0  # seconds a peer's model list is trusted
ASK_TIMEOUT = 2.0  # seconds to wait for a peer's model list
PASSED_BACK = ("Content-Type", "Retry-After", "X-Busy-Model", "X-Sparkd-Rewrites", "Cache-Control")


@dataclass
class PeerState:
    models: tuple[str, ...] = ()
    asked_at: float | None = None
    error: str | None = None  # why the last ask failed; None while it answers


@dataclass
class PeerTable:
    """What is known of each peer (pure: time comes in)."""

    peers: tuple[Peer, ...]
    states: dict[str, PeerState] = field(default_factory=dict)

    def stale(self, peer: Peer, now: float) -> bool:
        state = self.states.get(peer.name)
        return state is None or state.asked_at is None or now - state.asked_at >= REFRESH

    def answered(self, peer: Peer, models: list[str], now: float) -> None:
        self.states[peer.name] = PeerState(tuple(models), now, None)

    def failed(self, peer: Peer, error: str, now: float) -> None:
        known = self.states.get(peer.name, PeerState())
        self.states[peer.name] = PeerState((), now, error or known.error)

    def owner(self, model: str) -> Peer | None:
        return next((p for p in self.peers if model in self.states.get(p.name, PeerState()).models), None)

    def listed(self) -> list[tuple[Peer, str]]:
        return [(p, m) for p in self.peers for m in self.states.get(p.name, PeerState()).models]

    def report(self) -> list[dict[str, Any]]:
        report = []
        for peer in self.peers:
            state = self.states.get(peer.name, PeerState())
            up = state.asked_at is not None and state.error is None
            report.append(
                {
                    "name": peer.name,
                    "url": peer.url,
                    "up": up,
                    "models": list(state.models),
                    "error": state.error,
                }
            )
        return report


@dataclass
class Peers:
    """The peers as the app uses them: their lists, kept fresh, and the relay to them."""

    table: PeerTable
    session: aiohttp.ClientSession
    key_of: Callable[[Peer], str | None]  # the peer's key, from the secrets
    clock: Callable[[], float] = time.monotonic
    _asking: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def fresh(self) -> PeerTable:
        """The table, with every stale peer asked again (at once, each bounded by ASK_TIMEOUT)."""
        now = self.clock()
        asks = [self._ask(p) for p in self.table.peers if self.table.stale(p, now)]
        if asks:
            await asyncio.gather(*asks)
        return self.table

    async def _ask(self, peer: Peer) -> None:
        running = self._asking.get(peer.name)
        if running is None or running.done():
            running = self._asking[peer.name] = asyncio.get_running_loop().create_task(self._models_of(peer))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(running)

    async def _models_of(self, peer: Peer) -> None:
        try:
            async with self.session.get(
                f"{peer.url.rstrip('/')}/v1/models",
                headers=self._auth(peer),
                timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT),
            ) as response:
                if response.status != 200:
                    raise ValueError(f"it answered {response.status} to GET /v1/models")
                document = await response.json()
            models = [
                str(m["id"])
                for m in document.get("data", [])
                if isinstance(m, dict) and "id" in m and not m.get("sparkd", {}).get("host")
            ]  # its own models only: peers of peers are theirs to route
            self.table.answered(peer, models, self.clock())
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as error:
            if self.table.states.get(peer.name, PeerState()).error is None:
                log.warning(
                    "peer %s (%s) does not answer: %s", peer.name, peer.url, error or type(error).__name__
                )
            self.table.failed(peer, str(error) or type(error).__name__, self.clock())

    def _auth(self, peer: Peer) -> dict[str, str]:
        key = self.key_of(peer)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def relay(self, request: web.Request, peer: Peer, body: bytes) -> web.StreamResponse:
        """The request, sent to the peer as it came; the peer's answer, passed back as it comes."""
        headers = {
            **self._auth(peer),
            "Content-Type": request.headers.get("Content-Type", "application/json"),
        }
        try:
            upstream = await self.session.post(
                f"{peer.url.rstrip('/')}{request.path_qs}",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=ASK_TIMEOUT),
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            self.table.failed(peer, str(error) or type(error).__name__, self.clock())
            raise ApiError(
                502, f"peer {peer.name!r} ({peer.url}) does not answer: {error}", "peer_unreachable"
            ) from None
        async with upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={
                    **{h: upstream.headers[h] for h in PASSED_BACK if h in upstream.headers},
                    "X-Sparkd-Peer": peer.name,
                },
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


async def answer_by_peer(
    request: web.Request, name: str, body: bytes, missing: ApiError
) -> web.StreamResponse:
    """A request for a model this sparkd does not serve: relayed to the peer that does, or `missing`."""
    from sparkd.appstate import PEERS

    peers = request.app[PEERS]
    if not peers.table.peers:
        raise missing
    owner = (await peers.fresh()).owner(name)
    if owner is None:
        raise missing
    return await peers.relay(request, owner, body)
