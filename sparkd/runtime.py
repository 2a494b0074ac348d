"""The run loop's side of scheduling: feed the scheduler events, carry out its effects.

Everything here runs on the event loop thread, so the scheduler has one
owner and needs no lock. Effects that do I/O (D-Bus calls, health probes)
become tasks; their outcomes come back as new events. A request for a ready
model is decided synchronously inside `acquire`: no D-Bus, no container and
no health call on that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from sparkd.catalogue import Catalogue, Role
from sparkd.errors import ApiError
from sparkd.logs import fields
from sparkd.memory import MemoryBook, has_settled, mem_available
from sparkd.metrics import Metrics
from sparkd.scheduler import (
    AbortInFlight,
    ArmIdleTimer,
    AwaitHealthy,
    DisarmIdleTimer,
    Effect,
    Grant,
    Phase,
    Reject,
    Scheduler,
    StartUnit,
    StopUnit,
    WakeAfter,
    WatchDeadline,
)
from sparkd.systemd import IDLE_PREFIX, MODEL_UNIT_PREFIX, BusEvent, JobDone, SystemdError
from sparkd.upstream import EngineResponse

log = logging.getLogger("sparkd.runtime")


class UnitControl(Protocol):
    """What the runtime asks of systemd (sparkd.systemd.SystemdBus; a fake in tests)."""

    async def start_unit(self, unit: str) -> str: ...
    async def stop_unit(self, unit: str) -> str: ...
    async def reset_failed_unit(self, unit: str) -> None: ...
    async def active_units(self, pattern: str) -> list[str]: ...
    async def arm_idle_timer(self, model_id: str, seconds: float) -> None: ...
    async def disarm_idle_timer(self, model_id: str) -> None: ...
    async def unit_memory(self, unit: str) -> tuple[int | None, int | None]: ...
    async def unit_result(self, unit: str) -> tuple[str, int | None]: ...


class HealthProbe(Protocol):
    async def healthy(self, url: str) -> bool: ...


class JournalTail(Protocol):
    async def tail(self, unit: str, lines: int) -> str: ...


@dataclass
class HttpHealthProbe:
    session: aiohttp.ClientSession

    async def healthy(self, url: str) -> bool:
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


class JournalctlTail:
    async def tail(self, unit: str, lines: int) -> str:
        process = await asyncio.create_subprocess_exec(
            "journalctl",
            "-u",
            unit,
            "-n",
            str(lines),
            "-o",
            "cat",
            "--no-pager",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await process.communicate()
        return out.decode(errors="replace").strip()


def model_of(unit: str) -> str | None:
    if unit.startswith(MODEL_UNIT_PREFIX) and unit.endswith(".service") and not unit.startswith(IDLE_PREFIX):
        return unit[len(MODEL_UNIT_PREFIX) : -len(".service")]
    return None


@dataclass
class Runtime:
    catalogue: Catalogue
    scheduler: Scheduler
    units: UnitControl
    probe: HealthProbe
    journal: JournalTail
    health_interval: float = 0.02
    memory_settle_limit: float = 15.0  # seconds an exclusive start waits for memory to settle
    read_memory: Callable[[], int] = mem_available
    clock: Callable[[], float] = time.monotonic
    metrics: Metrics | None = None
    memory: MemoryBook = field(default_factory=MemoryBook)
    fit_gate: bool = False  # refuse to start a model whose recorded need exceeds what is free
    _waiting: dict[int, asyncio.Future[Grant]] = field(default_factory=dict)
    _deadlines: dict[int, asyncio.TimerHandle] = field(default_factory=dict)
    _start_jobs: dict[str, str] = field(default_factory=dict)  # job path -> model
    _starting_units: set[str] = field(default_factory=set)  # start asked, job not yet answered
    # A job's end can be signalled before the StartUnit reply reaches the
    # task that asked (both hop threads); such ends wait here to be claimed.
    _early_job_results: dict[str, str] = field(default_factory=dict)
    _upstreams: dict[str, dict[int, EngineResponse]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _next_request: int = 0

    # Requests -----------------------------------------------------------------

    def new_request_id(self) -> int:
        self._next_request += 1
        return self._next_request

    def submit(self, model_id: str, request: int) -> asyncio.Future[Grant]:
        """Ask for `model_id`; the future is already done when the model is ready (the hot path)."""
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
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
        self._untrack(request)
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        self._apply(self.scheduler.on_engine_unreachable(request, self.clock(), cause))
        return future

    def abandon(self, request: int) -> None:
        self._forget(request)
        self._apply(self.scheduler.on_cancelled(request, self.clock()))

    async def acquire(self, model_id: str, request: int) -> Grant:
        """Wait until `model_id` may serve `request`; an ApiError says why it may not."""
        return await self.wait(self.submit(model_id, request), request)

    def progress(self, model_id: str) -> str:
        """What a waiting request for `model_id` waits for, in a few words."""
        now = self.clock()
        state = self.scheduler.states[model_id]
        holder = self.scheduler.tenant()
        if state.phase is Phase.STARTING:
            elapsed = now - state.since
            left = self.scheduler.start_estimate(model_id) - elapsed
            hint = f"about {max(1, round(left))}s left" if left > 0 else "taking longer than last time"
            return f"starting {model_id}: {elapsed:.0f}s, {hint}"
        if holder is not None and holder != model_id:
            held = self.scheduler.states[holder]
            if held.phase is Phase.STOPPING:
                return f"stopping {holder} to make room for {model_id}"
            return f"waiting for {holder} to finish {len(held.in_flight)} request(s)"
        return f"waiting for {model_id}"

    def release(self, request: int) -> None:
        """The request's answer is complete (or failed): the model may go idle."""
        self._untrack(request)
        self._apply(self.scheduler.on_finished(request, self.clock()))

    def track(self, model_id: str, request: int, upstream: EngineResponse) -> None:
        """Remember a running upstream response, to end it if the model's unit goes away."""
        self._upstreams.setdefault(model_id, {})[request] = upstream

    def _untrack(self, request: int) -> None:
        for upstreams in self._upstreams.values():
            upstreams.pop(request, None)

    # Lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Adopt what systemd already runs, then bring up what should run (a warm utility)."""
        active = [m for m in map(model_of, await self.units.active_units("sparkd-*.service")) if m]
        known = [m for m in active if m in self.scheduler.policies]
        for model_id in known:
            # Idle timers from before a restart are dropped; on_ready re-arms them.
            self._spawn(self.units.disarm_idle_timer(model_id), f"disarm {model_id}")
        if known:
            log.info("adopting running models: %s", ", ".join(known))
        self._apply(self.scheduler.adopt(known, self.clock()))
        self._apply(self.scheduler.on_wake(self.clock()))

    async def close(self) -> None:
        for handle in self._deadlines.values():
            handle.cancel()
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

    def sample_memory(self) -> bool:
        """Update each running model's observed need; True when a recorded peak grew."""
        available = self.read_memory()
        before = dict(self.memory.peaks)
        for model_id, state in self.scheduler.states.items():
            if state.phase is not Phase.STOPPED:
                self.memory.sample(model_id, available)
        return self.memory.peaks != before

    # Events from systemd ---------------------------------------------------------

    def on_bus_event(self, event: BusEvent) -> None:
        now = self.clock()
        if isinstance(event, JobDone):
            if event.unit.startswith(IDLE_PREFIX) and event.result == "done":
                model_id = event.unit[len(IDLE_PREFIX) : -len(".service")]
                if model_id in self.scheduler.policies:
                    self._apply(self.scheduler.on_idle_expired(model_id, now))
                return
            started = self._start_jobs.pop(event.job, None)
            if started is not None:
                self._start_job_done(started, event.result)
            elif model_of(event.unit) in self._starting_units:
                self._early_job_results[event.job] = event.result
            return
        changed = model_of(event.unit)
        if changed is None or changed not in self.scheduler.policies:
            return
        model_id = changed
        if event.active_state == "deactivating":
            self._apply(self.scheduler.on_unit_leaving(model_id, now, "its unit is deactivating"))
            return
        phase = self.scheduler.states[model_id].phase
        if event.active_state in ("inactive", "failed"):
            if model_id in self._starting_units and phase is Phase.STARTING:
                return  # a unit passes through inactive while it loads: the start job's end decides
            cause = event.active_state
            if event.result and event.result != "success":
                cause = f"{event.active_state} ({event.result}, exit status {event.exit_status})"
            if phase is Phase.STARTING:
                self._spawn(self._start_failed(model_id, f"its unit became {cause}"), "")
            else:
                log.info("%s is %s", event.unit, cause, extra=fields(model=model_id))
                self.memory.stopped(model_id)
                self._apply(self.scheduler.on_stopped(model_id, now, cause))

    # Effects -----------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Grant):
                self._settle(effect.request, effect)
            elif isinstance(effect, Reject):
                retry = str(max(1, round(effect.retry_after)))
                error = ApiError(
                    effect.status,
                    effect.message,
                    effect.code,
                    None,
                    {"Retry-After": retry, **dict(effect.headers)},
                )
                self._settle(effect.request, error)
            elif isinstance(effect, WatchDeadline):
                loop = asyncio.get_running_loop()
                self._deadlines[effect.request] = loop.call_later(
                    effect.seconds, self._deadline, effect.request
                )
            elif isinstance(effect, StartUnit):
                log.info("starting %s", effect.model, extra=fields(model=effect.model, event="start"))
                if self.metrics is not None:
                    self.metrics.starts.inc(effect.model)
                self._spawn(self._start_unit(effect.model), f"start {effect.model}")
            elif isinstance(effect, StopUnit):
                log.info(
                    "stopping %s (%s)",
                    effect.model,
                    effect.reason,
                    extra=fields(model=effect.model, event="stop", reason=effect.reason),
                )
                if self.metrics is not None:
                    self.metrics.stops.inc(effect.model, effect.reason)
                self._spawn(self._stop_unit(effect.model), f"stop {effect.model}")
            elif isinstance(effect, ArmIdleTimer):
                self._spawn(self.units.arm_idle_timer(effect.model, effect.seconds), f"arm {effect.model}")
            elif isinstance(effect, DisarmIdleTimer):
                self._spawn(self.units.disarm_idle_timer(effect.model), f"disarm {effect.model}")
            elif isinstance(effect, WakeAfter):
                asyncio.get_running_loop().call_later(effect.seconds, self._wake)
            elif isinstance(effect, AwaitHealthy):
                self._spawn(self._await_healthy(effect.model), f"health of {effect.model}")
            elif isinstance(effect, AbortInFlight):
                log.warning("%s", effect.cause, extra=fields(model=effect.model))
                for upstream in list(self._upstreams.pop(effect.model, {}).values()):
                    upstream.release()  # unfinished: its connection closes, the client's answer ends

    def _settle(self, request: int, outcome: Grant | ApiError) -> None:
        future = self._waiting.pop(request, None)
        handle = self._deadlines.pop(request, None)
        if handle is not None:
            handle.cancel()
        if future is None or future.done():
            return
        if isinstance(outcome, ApiError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _forget(self, request: int) -> None:
        self._waiting.pop(request, None)
        handle = self._deadlines.pop(request, None)
        if handle is not None:
            handle.cancel()

    def _deadline(self, request: int) -> None:
        self._deadlines.pop(request, None)
        self._apply(self.scheduler.on_deadline(request, self.clock()))

    def _wake(self) -> None:
        self._apply(self.scheduler.on_wake(self.clock()))

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_unit(self, model_id: str) -> None:
        model = self.catalogue.models[model_id]
        self._starting_units.add(model_id)
        if model.role is Role.EXCLUSIVE:
            await self._memory_settled()
        available = self.read_memory()
        if self.fit_gate and not self.memory.fits(model_id, available):
            self._starting_units.discard(model_id)
            need = self.memory.peaks[model_id]
            cause = f"it needed {need / 2**30:.1f} GiB before and {available / 2**30:.1f} GiB is available"
            self._apply(self.scheduler.on_start_failed(model_id, cause, self.clock()))
            return
        self.memory.start_began(model_id, available)
        try:
            job = await self.units.start_unit(model.unit_name)
        except SystemdError as error:
            self._starting_units.discard(model_id)
            hint = "; run `sparkd render`" if "not found" in str(error) else ""
            self._apply(
                self.scheduler.on_start_failed(model_id, f"systemd refused: {error}{hint}", self.clock())
            )
            return
        early = self._early_job_results.pop(job, None)
        if early is None:
            self._start_jobs[job] = model_id
        else:
            self._start_job_done(model_id, early)

    def _start_job_done(self, model_id: str, result: str) -> None:
        self._starting_units.discard(model_id)
        if self.scheduler.states[model_id].phase is not Phase.STARTING:
            return  # stopped while it started (by hand, or for an exclusive model): not a failure
        if result == "done":
            self._spawn(self._await_healthy(model_id), f"health of {model_id}")
        else:
            self._spawn(self._start_failed(model_id, f"its start job ended with '{result}'"), "")

    async def _memory_settled(self) -> None:
        """Wait (bounded) until the memory a stopped engine gave back stops growing."""
        deadline = self.clock() + self.memory_settle_limit
        samples = [self.read_memory()]
        while not has_settled(samples) and self.clock() < deadline:
            await asyncio.sleep(0.5)
            samples.append(self.read_memory())
        log.info("available memory: %.1f GiB", samples[-1] / 2**30)

    async def _stop_unit(self, model_id: str) -> None:
        try:
            await self.units.stop_unit(self.catalogue.models[model_id].unit_name)
        except SystemdError as error:
            log.error("cannot stop %s: %s", model_id, error, extra=fields(model=model_id))

    async def _await_healthy(self, model_id: str) -> None:
        model = self.catalogue.models[model_id]
        url = f"http://127.0.0.1:{model.engine_port}{model.health_path}"
        deadline = self.clock() + model.start_timeout
        while self.scheduler.states[model_id].phase is Phase.STARTING:
            if await self.probe.healthy(url):
                state = self.scheduler.states[model_id]
                if state.phase is Phase.STARTING:
                    log.info("%s is ready", model_id, extra=fields(model=model_id, event="ready"))
                    self._apply(self.scheduler.on_ready(model_id, self.clock()))
                    self._spawn(self._forget_past_starts(model.unit_name), f"reset-failed {model_id}")
                    if (
                        self.metrics is not None
                        and state.start_requested is not None
                        and state.start_durations
                    ):
                        self.metrics.start_seconds.observe(state.start_durations[-1], model_id)
                return
            if self.clock() > deadline:
                cause = f"no healthy answer from {model.health_path} within {model.start_timeout:.0f}s"
                await self._start_failed(model_id, cause, unit_up=True)
                return
            await asyncio.sleep(self.health_interval)

    async def _forget_past_starts(self, unit: str) -> None:
        # The units' start limit (3 in 10 minutes) is there to stop a crash
        # loop. Without this, an engine that crashed and came back healthy
        # three times (each time for a request) would be refused on its
        # fourth: systemd counts every start of a failed unit. sparkd's own
        # back-off handles starts that fail.
        try:
            await self.units.reset_failed_unit(unit)
        except SystemdError as error:
            log.warning("cannot reset %s's start count: %s", unit, error)

    async def _start_failed(self, model_id: str, cause: str, unit_up: bool = False) -> None:
        unit = self.catalogue.models[model_id].unit_name
        with contextlib.suppress(Exception):
            result, status = await self.units.unit_result(unit)
            if result and result != "success":
                # systemd's own word: exit-code, timeout, start-limit-hit, ...
                cause += f" (unit result: {result}" + (f", exit status {status})" if status else ")")
        with contextlib.suppress(Exception):
            tail = await self.journal.tail(unit, 5)
            if tail:
                cause += "; last log lines: " + " | ".join(tail.splitlines()[-5:])
        log.error(
            "%s failed to start: %s", model_id, cause, extra=fields(model=model_id, event="start_failed")
        )
        if self.metrics is not None:
            self.metrics.start_failures.inc(model_id)
        self._apply(self.scheduler.on_start_failed(model_id, cause, self.clock(), unit_up=unit_up))
