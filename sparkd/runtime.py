"""The run loop's side of scheduling: feed the scheduler events, carry out its effects.

Everything here runs on the event loop thread, so the scheduler has one
owner and needs no lock. Effects that do I/O (D-Bus calls, memory readings,
health probes, a failed start's diagnosis) become tasks; what they learn
comes back as new events. Nothing here decides who runs: a request for a
ready model is granted inside `submit`, with no D-Bus, container or health
call on that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sparkd import names
from sparkd.catalogue import Catalogue, Model
from sparkd.effects import (
    AbortInFlight,
    ArmIdleTimer,
    AwaitHealthy,
    DiagnoseFailedStart,
    DisarmIdleTimer,
    Effect,
    Grant,
    PullWeights,
    Ready,
    Reject,
    StartUnit,
    StopUnit,
    SubmitStart,
    WakeAfter,
    WatchDeadline,
)
from sparkd.leases import WorkerLeases
from sparkd.lifecycle import Phase
from sparkd.logs import fields
from sparkd.memory import MemoryBook, mem_available, mem_free
from sparkd.metrics import Metrics
from sparkd.pulls import NoPulls, Pulls
from sparkd.scheduler import Scheduler
from sparkd.start_actions import HealthProbe, JournalTail, StartActions, UnitControl
from sparkd.systemd import BusEvent, JobDone, SystemdError
from sparkd.tickets import Tickets

log = logging.getLogger("sparkd.runtime")


@dataclass
class HttpHealthProbe:
    session: aiohttp.ClientSession

    async def healthy(self, url: str) -> bool:
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


@dataclass
class Runtime(StartActions):
    catalogue: Catalogue
    scheduler: Scheduler
    units: UnitControl
    probe: HealthProbe
    journal: JournalTail
    metrics: Metrics
    health_interval: float = 0.02
    memory_settle_limit: float = 15.0  # seconds an exclusive start waits for memory to settle
    read_memory: Callable[[], int] = mem_available
    read_free: Callable[[], int] = mem_free
    pulls: Pulls = field(default_factory=NoPulls)
    # The worker halves this Spark runs for its peer's split models (`names.worker_of(id)` -> model).
    halves: Mapping[str, Model] = field(default_factory=dict)
    # The worker halves the peer runs for this Spark's split models (None: no [link]).
    leases: WorkerLeases | None = None
    clock: Callable[[], float] = time.monotonic
    memory: MemoryBook = field(default_factory=MemoryBook)
    tickets: Tickets = field(default_factory=Tickets)  # requests waiting for a grant, and running ones
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    # Helper units the runtime waits on (the page-cache drop): their start job's end.
    _helper_jobs: dict[str, asyncio.Future[str]] = field(default_factory=dict)

    def model(self, model_id: str) -> Model:
        """The catalogue's model, or the worker half this Spark runs for its peer."""
        return self.catalogue.models.get(model_id) or self.halves[model_id]

    # Requests (the proxy's events) ---------------------------------------------

    def submit(self, model_id: str, request: int) -> asyncio.Future[Grant]:
        """Ask for `model_id`; the future is already done when the model is ready (the hot path)."""
        future = self.tickets.wait_for(request)
        self._apply(self.scheduler.on_request(request, model_id, self.clock()))
        return future

    async def wait(self, future: asyncio.Future[Grant], request: int) -> Grant:
        """The grant, or the ApiError that says why not; a client that leaves is forgotten."""
        try:
            return await future
        except asyncio.CancelledError:
            self.abandon(request)
            raise

    def engine_unreachable(self, model_id: str, request: int, cause: str) -> asyncio.Future[Grant]:
        """A granted request found no engine: it waits again, for the model brought back."""
        log.warning(
            "%s did not answer (%s): stopping it, to start it again for the requests that wait",
            model_id,
            cause,
            extra=fields(model=model_id, event="engine_unreachable"),
        )
        future = self.tickets.wait_for(request)
        self._apply(self.scheduler.on_engine_unreachable(request, self.clock(), cause))
        return future

    def abandon(self, request: int) -> None:
        self.tickets.forget(request)
        self._apply(self.scheduler.on_cancelled(request, self.clock()))

    def release(self, request: int) -> None:
        """The request's answer is complete (or failed): the model may go idle.

        (The relay untracks the engine's answer itself, in the one place that tracks it.)
        """
        self._apply(self.scheduler.on_finished(request, self.clock()))

    # Operators and start-up ------------------------------------------------------

    async def start(self) -> None:
        """Adopt what systemd already runs, then bring up what should run (a warm utility)."""
        active = [names.model_of(unit) for unit in await self.units.active_units(names.MODEL_UNITS)]
        known = [m for m in active if m is not None and m in self.scheduler.policies]
        for model_id in known:
            # Idle timers from before a restart are dropped; on_ready re-arms them.
            self._spawn(self.units.disarm_idle_timer(model_id))
        if known:
            log.info("adopting running models: %s", ", ".join(known))
        self._apply(self.scheduler.adopt(known, self.clock()))
        self._apply(self.scheduler.on_wake(self.clock()))

    async def close(self) -> None:
        if self.leases is not None:
            await self.leases.close()
        self.tickets.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def manual_start(self, model_id: str) -> None:
        self._apply(self.scheduler.on_manual_start(model_id, self.clock()))

    def manual_stop(self, model_id: str) -> None:
        self._apply(self.scheduler.on_manual_stop(model_id, self.clock()))

    def keep_warm(self, model_id: str, seconds: float) -> None:
        self._apply(self.scheduler.on_keep_warm(model_id, seconds, self.clock()))

    async def pull_now(self, model_id: str) -> None:
        """Download the model's weights now (an operator's wish): its pull unit, nothing else."""
        await self.units.start_unit(names.pull_unit(model_id))

    def sample_memory(self) -> bool:
        """Update each running model's observed need; True when a recorded peak grew."""
        available = self.read_memory()
        before = dict(self.memory.peaks)
        for model_id in self.scheduler.policies:
            if self.scheduler.phase(model_id) is not Phase.STOPPED:
                self.memory.sample(model_id, available)
        return self.memory.peaks != before

    # What systemd says --------------------------------------------------------------

    def on_bus_event(self, event: BusEvent) -> None:
        now = self.clock()
        if isinstance(event, JobDone):
            helper = self._helper_jobs.pop(event.unit, None)
            if helper is not None and not helper.done():
                helper.set_result(event.result)
                return
            pulled = names.pull_model_of(event.unit)
            if pulled is not None:
                for waiting in (pulled, names.worker_of(pulled)):  # the model, or its worker half
                    if waiting in self.scheduler.policies:
                        self._spawn(self._pull_ended(waiting, event.result))
                return
            idle = names.idle_model_of(event.unit)
            if idle is not None and idle in self.scheduler.policies and event.result == "done":
                self._apply(self.scheduler.on_idle_expired(idle, now))
            model_id = names.model_of(event.unit)
            if model_id is not None and model_id in self.scheduler.policies:
                self._apply(self.scheduler.on_job_done(model_id, event.job, event.result, now))
            return
        model_id = names.model_of(event.unit)
        if model_id is None or model_id not in self.scheduler.policies:
            return
        cause = event.active_state
        if event.result and event.result != "success":
            cause = f"{event.active_state} ({event.result}, exit status {event.exit_status})"
        log.debug("%s is %s", event.unit, cause, extra=fields(model=model_id))
        self._apply(self.scheduler.on_unit_state(model_id, event.active_state, cause, now))

    # Effects --------------------------------------------------------------------

    def peer_wants(self, model_id: str, wanted: bool) -> None:
        self._apply(self.scheduler.on_peer_wants(model_id, wanted, self.clock()))

    def worker_ready(self, model_id: str) -> None:
        self._apply(self.scheduler.on_worker_ready(model_id, self.clock()))

    def worker_lost(self, model_id: str, cause: str) -> None:
        self._apply(self.scheduler.on_worker_lost(model_id, cause, self.clock()))

    def _apply(self, effects: list[Effect]) -> None:
        self._carry_out(effects)
        if self.leases is not None:
            self.leases.sync(self.scheduler.phase)

    def _carry_out(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Grant | Reject | WatchDeadline | AbortInFlight):
                self._requests(effect)
            elif isinstance(effect, StartUnit):
                log.info("starting %s", effect.model, extra=fields(model=effect.model, event="start"))
                self._count("starts", effect.model)
                self._spawn(self._measure_memory(effect.model, effect.attempt))
            elif isinstance(effect, SubmitStart):
                self.memory.start_began(effect.model, effect.available)
                self._spawn(self._submit_start(effect.model, effect.attempt, effect.drop_page_cache))
            elif isinstance(effect, StopUnit):
                log.info(
                    "stopping %s (%s)",
                    effect.model,
                    effect.reason,
                    extra=fields(model=effect.model, event="stop", reason=effect.reason),
                )
                self._count("stops", effect.model, effect.reason)
                self._spawn(self._stop_unit(effect.model))
            elif isinstance(effect, ArmIdleTimer):
                self._spawn(self.units.arm_idle_timer(effect.model, effect.seconds))
            elif isinstance(effect, DisarmIdleTimer):
                self._spawn(self.units.disarm_idle_timer(effect.model))
            elif isinstance(effect, WakeAfter):
                self.tickets.later(effect.seconds, self._wake)
            elif isinstance(effect, AwaitHealthy):
                self._spawn(self._await_healthy(effect.model))
            elif isinstance(effect, DiagnoseFailedStart):
                self._spawn(self._diagnose(effect))
            elif isinstance(effect, Ready):
                self._ready(effect)
            elif isinstance(effect, PullWeights):
                log.info(
                    "downloading the weights of %s first",
                    effect.model,
                    extra=fields(model=effect.model, event="pull"),
                )
                self._spawn(self._pull(effect.model))

    def _requests(self, effect: Grant | Reject | WatchDeadline | AbortInFlight) -> None:
        if isinstance(effect, Grant):
            self.tickets.grant(effect)
        elif isinstance(effect, Reject):
            self.tickets.reject(effect)
        elif isinstance(effect, WatchDeadline):
            self.tickets.watch(effect.request, effect.seconds, self._deadline)
        else:
            log.warning("%s", effect.cause, extra=fields(model=effect.model))
            self.tickets.abort(effect.model)

    def _deadline(self, request: int) -> None:
        self._apply(self.scheduler.on_deadline(request, self.clock()))

    def _wake(self) -> None:
        self._apply(self.scheduler.on_wake(self.clock()))

    def _count(self, what: str, model_id: str, *labels: str) -> None:
        getattr(self.metrics, what).inc(model_id, *labels)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # The I/O behind each effect (a start's: sparkd.start_actions) ----------------------

    async def _stop_unit(self, model_id: str) -> None:
        try:
            await self.units.stop_unit(self.model(model_id).unit_name)
        except SystemdError as error:
            log.error("cannot stop %s: %s", model_id, error, extra=fields(model=model_id))

    def _ready(self, effect: Ready) -> None:
        log.info("%s is ready", effect.model, extra=fields(model=effect.model, event="ready"))
        if effect.start_seconds is not None:
            self.metrics.start_seconds.observe(effect.start_seconds, effect.model)
        self._spawn(self._forget_past_starts(self.model(effect.model).unit_name))
