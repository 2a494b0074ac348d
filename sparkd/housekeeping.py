"""Once a second while sparkd serves: memory samples, STATUS= and watchdog, idle connections,
the heap trimmed after a burst, quiet exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from sparkd.activation import Notifier
from sparkd.describe import status_line
from sparkd.events import EventHub, state_changes
from sparkd.heap import TrimWhenQuiet, release_free_memory
from sparkd.lifecycle import Phase, StartStep
from sparkd.memory import MemoryBook
from sparkd.runtime import Runtime
from sparkd.upstream import EnginePool

log = logging.getLogger("sparkd.housekeeping")
MEMORY_SAMPLE_INTERVAL = 5.0  # seconds between readings of available memory
TICK = 1.0  # seconds


@dataclass
class Housekeeping:
    runtime: Runtime
    engines: EnginePool
    notifier: Notifier
    memory_file: Path
    quiet_exit: float  # seconds with nothing to do before sparkd exits; 0: never
    connections: Callable[[], int]  # open client connections
    stop: asyncio.Event  # set to stop sparkd (the quiet exit sets it too)
    clock: Callable[[], float] = time.monotonic
    _quiet_since: float = field(default=0.0, init=False)
    _last_ping: float = field(default=0.0, init=False)
    _last_sample: float = field(default=0.0, init=False)
    _trim: TrimWhenQuiet = field(default_factory=TrimWhenQuiet, init=False)
    events: EventHub | None = None  # the dashboard's live view
    _sample_due: bool = field(default=False, init=False)
    _seen: dict[str, tuple[str, StartStep | None, int, int]] = field(default_factory=dict, init=False)

    async def while_serving(self, app: web.Application) -> AsyncIterator[None]:
        """The app's cleanup context: housekeeping runs from start-up to shutdown."""
        task = asyncio.get_running_loop().create_task(self.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run(self) -> None:
        self._quiet_since = self.clock()
        while not self.stop.is_set():
            self.tick(self.clock())
            if self._sample_due and self.events is not None:
                self._sample_due = False
                await self._publish_sample(self.events)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=TICK)

    async def _publish_sample(self, events: EventHub) -> None:
        """Available memory, each running model's need (what available memory lost since its
        start) and its unit's cgroup memory (systemd's accounting, which on GB10 may miss GPU
        allocations: hence both)."""
        available = _sample(self.runtime)
        needs = self.runtime.memory.current(available) if available is not None else {}
        cgroups = {}
        for model in self.runtime.catalogue.enabled():
            if self.runtime.scheduler.phase(model.id) is not Phase.STOPPED:
                with contextlib.suppress(Exception):
                    current, _ = await self.runtime.units.unit_memory(model.unit_name)
                    if current is not None:
                        cgroups[model.id] = current
        events.publish(
            "sample", {"at": time.time(), "available_bytes": available, "models": needs, "cgroups": cgroups}
        )

    def _publish(self, events: EventHub, now: float) -> None:
        """Each model whose phase, start step or load changed since the last tick, as an event."""
        views = {v.id: v for v in self.runtime.scheduler.views(now)}
        seen = {m: (v.phase.value, v.start_step, v.in_flight, v.queued) for m, v in views.items()}
        for model in state_changes(self._seen, seen):
            view, before = views[model], self._seen.get(model)
            if before is None and view.phase.value == "stopped":
                continue  # first seen, at rest: nothing happened
            events.publish(
                "state",
                {
                    "at": time.time(),
                    "model": model,
                    "phase": view.phase.value,
                    "was": before[0] if before else None,
                    "step": view.start_step.value if view.start_step else None,
                    "in_flight": view.in_flight,
                    "queued": view.queued,
                    "took": view.last_start_seconds if view.phase.value == "ready" else None,
                },
            )
        self._seen = seen

    def tick(self, now: float) -> None:
        if now - self._last_sample >= MEMORY_SAMPLE_INTERVAL:
            self._last_sample = now
            self._sample_due = True
            with contextlib.suppress(OSError, ValueError):
                if self.runtime.sample_memory():
                    save_memory(self.memory_file, self.runtime.memory)
        scheduler = self.runtime.scheduler
        if self.events is not None:
            self._publish(self.events, now)
        self.notifier.status(status_line(scheduler, now))
        interval = self.notifier.watchdog_interval
        if interval and now - self._last_ping >= interval:
            self.notifier.watchdog()
            self._last_ping = now
        self.engines.sweep()
        working = self.connections() > 0 or scheduler.queued() > 0 or bool(scheduler.owner)
        if self._trim.due(working, now):
            release_free_memory()
        if scheduler.tenant() is not None or scheduler.queued() > 0 or self.connections() > 0:
            self._quiet_since = now
        elif self.quiet_exit and now - self._quiet_since >= self.quiet_exit:
            log.info(
                "quiet for %.0fs: exiting; the socket starts sparkd again on demand", now - self._quiet_since
            )
            self.stop.set()


def _sample(runtime: Runtime) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return runtime.read_memory()
    return None


def load_memory(path: Path) -> MemoryBook:
    try:
        return MemoryBook.from_json(path.read_text())
    except (OSError, ValueError):
        return MemoryBook()


def save_memory(path: Path, memory: MemoryBook) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(memory.to_json())
        temporary.replace(path)
    except OSError as error:
        log.warning("cannot record memory needs in %s: %s", path, error)
