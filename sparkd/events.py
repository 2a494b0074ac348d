"""What the dashboard watches: state changes, finished requests and memory samples, live and recent.

One hub per daemon. Publishing appends to a bounded history (ring buffers:
the daemon's memory stays flat however long it runs) and hands the event to
each subscriber's bounded queue; a subscriber too slow to keep up loses its
oldest events, never slows a request. With no dashboard open, publishing is
one append.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

HISTORY = {"state": 300, "request": 500, "sample": 2160}  # samples every 5 s: the last three hours
QUEUE = 512


@dataclass
class EventHub:
    history: dict[str, deque[dict[str, Any]]] = field(
        default_factory=lambda: {kind: deque(maxlen=size) for kind, size in HISTORY.items()}
    )
    _subscribers: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = field(default_factory=set)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.history[kind].append(data)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # the slow reader loses its oldest event
            queue.put_nowait((kind, data))

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        self._subscribers.discard(queue)

    @property
    def watched(self) -> bool:
        """Whether a dashboard is open: work only it needs is skipped otherwise."""
        return bool(self._subscribers)

    def recent(self) -> dict[str, list[dict[str, Any]]]:
        return {kind: list(events) for kind, events in self.history.items()}


def state_changes(before: dict[str, tuple[Any, ...]], now: dict[str, tuple[Any, ...]]) -> list[str]:
    """The models whose (phase, step, in flight, queued) changed since the last look."""
    return [model for model, state in now.items() if before.get(model) != state]
