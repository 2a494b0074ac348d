"""The head's side of a split model: holding its worker half on the peer while it starts or runs.

A lease is one long HTTP request to the peer (`POST /sparkd/peer/workers/<id>`,
authenticated with the peer's key, `sparkd.api.peer_workers` on the other side):
the peer queues it like any request for its GPU, starts the worker half, and
keeps the request open while the half runs. Its lines tell the head when the
half runs (`ready`: a healthy head serves only from then on), whether
someone waits for the peer's GPU (`wanted`/`free`, which `on_peer_wants` weighs
like a local waiter) and why the half ended (`ended: ...`), and a heartbeat
every few seconds tells that the peer is still there. The head closes the
request when its half stops; the peer then stops the worker half. Any end the
head did not ask for (the half failed, the peer refused or went away) is
`on_worker_lost`.

Which leases should be held is derived after every event from the phases of the
split models (`wanted_leases`): held while starting or ready, never otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from sparkd.lifecycle import Phase
from sparkd.logs import fields
from sparkd.settings import Peer

log = logging.getLogger("sparkd.leases")
HEARTBEAT = 5.0  # seconds between the peer's heartbeat lines
SILENCE = 3 * HEARTBEAT  # a lease that hears nothing this long lost its peer


class LeaseEvents(Protocol):
    """What a lease tells the run loop (sparkd.runtime.Runtime)."""

    def peer_wants(self, model_id: str, wanted: bool) -> None: ...
    def worker_ready(self, model_id: str) -> None: ...
    def worker_lost(self, model_id: str, cause: str) -> None: ...


def wanted_leases(phases: Mapping[str, Phase]) -> set[str]:
    """The split models (by phase here) whose worker half must be held: those starting or ready."""
    return {model for model, phase in phases.items() if phase in (Phase.STARTING, Phase.READY)}


@dataclass
class WorkerLeases:
    peer: Peer
    key: Callable[[], str | None]  # the peer's key, read when a lease opens
    session: aiohttp.ClientSession
    split: set[str]  # the split models
    events: LeaseEvents | None = None
    _held: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def sync(self, phase_of: Callable[[str], Phase]) -> None:
        """Open the leases the split models' phases call for, close the others."""
        wanted = wanted_leases({model: phase_of(model) for model in self.split})
        for model_id in wanted - set(self._held):
            self._held[model_id] = asyncio.get_running_loop().create_task(self._hold(model_id))
        for model_id in set(self._held) - wanted:
            self._held.pop(model_id).cancel()

    async def close(self) -> None:
        tasks = list(self._held.values())
        self._held.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _hold(self, model_id: str) -> None:
        cause = await self._lease(model_id)
        if self._held.get(model_id) is asyncio.current_task():
            del self._held[model_id]
        log.warning("the worker half of %s ended: %s", model_id, cause, extra=fields(model=model_id))
        if self.events is not None:
            self.events.worker_lost(model_id, cause)

    async def _lease(self, model_id: str) -> str:
        """Hold the lease until it ends; why it ended."""
        url = f"{self.peer.url.rstrip('/')}/sparkd/peer/workers/{model_id}"
        key = self.key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = aiohttp.ClientTimeout(total=None, connect=SILENCE, sock_read=SILENCE)
        try:
            async with self.session.post(url, headers=headers, timeout=timeout) as response:
                if response.status != 200:
                    return f"{self.peer.name} refused it ({response.status}: {await _message(response)})"
                async for raw in response.content:
                    line = raw.decode(errors="replace").strip()
                    if line in ("wanted", "free") and self.events is not None:
                        self.events.peer_wants(model_id, line == "wanted")
                    elif line == "ready" and self.events is not None:
                        self.events.worker_ready(model_id)
                    elif line.startswith("ended:"):
                        return line.removeprefix("ended:").strip()
                return f"{self.peer.name} closed it"
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"{self.peer.name} is out of reach ({error or type(error).__name__})"


async def _message(response: aiohttp.ClientResponse) -> str:
    try:
        document = await response.json(content_type=None)
        return str(document["error"]["message"])
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        return response.reason or "no reason given"
