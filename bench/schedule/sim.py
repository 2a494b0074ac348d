"""A discrete-event simulation that drives sparkd's real `Scheduler` with a virtual clock.

Engines are simulated from a profile (start, stop and service seconds per model,
`bench/schedule/profile.py`); requests come from clients replaying a trace
(`bench/schedule/replay.py`). Every effect the scheduler returns is carried out
as the runtime would, but in virtual time: a start takes the profile's seconds, a
stop too, an idle timer fires when it is due. Nothing sleeps, so a day of traffic
replays in seconds, and the decisions are exactly the daemon's.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from bench.schedule.profile import EngineProfile
from sparkd.catalogue import Role
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
from sparkd.lifecycle import Phase, Policy
from sparkd.scheduler import Scheduler

MEMORY = 128 * 2**30  # what the simulated machine has available
WAIT_MARGIN = 600.0  # sparkd's default: a waiter's deadline is its model's start_timeout plus this


def _ignore(now: float) -> None:
    pass


@dataclass
class Request:
    """One request as the simulated engines see it; its client hears how it went."""

    model: str
    on_grant: Callable[[float], None] = _ignore
    on_done: Callable[[float], None] = _ignore
    on_refused: Callable[[float], None] = _ignore


@dataclass
class Machine:
    """What happened to the GPU over one replay."""

    starts: int = 0  # starts of GPU tenants: swaps, and cold starts after an idle stop
    loading_seconds: float = 0.0  # time some GPU tenant was starting
    refusals: int = 0  # 429s and 503s answered (a client that retries counts each)
    two_tenants: int = 0  # moments with two GPU tenants: must stay 0
    phases: list[tuple[float, str, str]] = field(default_factory=list)  # (at, model, phase), each change
    span: float = 0.0


@dataclass
class Simulation:
    profiles: dict[str, EngineProfile]
    refuse_when_busy: bool = False
    swap_hold: float | Literal["auto"] = 0.0
    strict_order: bool = False
    queue_cap: int = 1000
    wait_margin: float = WAIT_MARGIN
    now: float = 0.0
    _events: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _requests: dict[int, Request] = field(default_factory=dict)
    _timers: dict[str, int] = field(default_factory=dict)  # model -> the armed idle timer's token
    _starting_since: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(
            {
                model: Policy(p.role, p.idle_timeout, min_uptime=0.0, start_timeout=p.start_timeout)
                for model, p in self.profiles.items()
            },
            queue_cap=self.queue_cap,
            wait_margin=self.wait_margin,
            refuse_when_busy=self.refuse_when_busy,
            swap_hold=self.swap_hold,
            strict_order=self.strict_order,
        )
        self.machine = Machine()
        self._phases = {model: Phase.STOPPED for model in self.profiles}

    def deadline(self, model: str) -> float:
        """How long a request for `model` may wait before sparkd gives up on it (503)."""
        return self.profiles[model].start_timeout + self.wait_margin

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def submit(self, at: float, request: Request) -> None:
        self.at(at, partial(self._arrive, request))

    def run(self) -> Machine:
        while self._events:
            self.now, _, action = heapq.heappop(self._events)
            action()
            self._watch_tenancy()
        self.machine.span = self.now
        return self.machine

    def in_progress(self) -> int:
        """Requests neither answered nor refused: 0 once a replay has run."""
        return len(self._requests)

    def _arrive(self, request: Request) -> None:
        number = next(self._seq)
        self._requests[number] = request
        self._apply(self.scheduler.on_request(number, request.model, self.now))

    def _watch_tenancy(self) -> None:
        holding = []
        for model, profile in self.profiles.items():
            phase = self.scheduler.phase(model)
            if phase is not self._phases[model]:
                self._phases[model] = phase
                self.machine.phases.append((self.now, model, phase.value))
            if profile.role is not Role.UTILITY and phase is not Phase.STOPPED:
                holding.append(model)
        if len(holding) > 1:
            self.machine.two_tenants += 1

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            self._carry_out(effect)

    def _carry_out(self, effect: Effect) -> None:
        s, now = self.scheduler, self.now
        if isinstance(effect, Grant):
            self._requests[effect.request].on_grant(now)
            self.at(now + self.profiles[effect.model].service, partial(self._finished, effect.request))
        elif isinstance(effect, Reject):
            self.machine.refusals += 1
            self._requests.pop(effect.request).on_refused(now)
        elif isinstance(effect, WatchDeadline):
            self.at(now + effect.seconds, partial(self._event, "on_deadline", effect.request))
        elif isinstance(effect, StartUnit):
            if self.profiles[effect.model].role is not Role.UTILITY:
                self.machine.starts += 1
            self._starting_since[effect.model] = now
            self._apply(s.on_start_memory(effect.model, effect.attempt, MEMORY, None, now))
        elif isinstance(effect, SubmitStart):
            job = f"/job/{next(self._seq)}"
            self._apply(s.on_start_job(effect.model, effect.attempt, job, now))
            self.at(now + self.profiles[effect.model].start, partial(self._job_done, effect.model, job))
        elif isinstance(effect, AwaitHealthy):
            self._apply(s.on_ready(effect.model, now))
        elif isinstance(effect, Ready):
            began = self._starting_since.pop(effect.model, now)
            if self.profiles[effect.model].role is not Role.UTILITY:
                self.machine.loading_seconds += now - began
        elif isinstance(effect, StopUnit):
            self.at(now + self.profiles[effect.model].stop, partial(self._stopped, effect.model))
        elif isinstance(effect, ArmIdleTimer):
            token = next(self._seq)
            self._timers[effect.model] = token
            self.at(now + effect.seconds, partial(self._idle, effect.model, token))
        elif isinstance(effect, DisarmIdleTimer):
            self._timers.pop(effect.model, None)
        elif isinstance(effect, WakeAfter):
            self.at(now + effect.seconds, partial(self._event, "on_wake"))
        elif isinstance(effect, DiagnoseFailedStart | AbortInFlight | PullWeights):
            raise AssertionError(f"simulated engines never fail or lack weights: {effect}")

    def _event(self, name: str, *args: object) -> None:
        """Scheduler.<name>(*args, now), its effects carried out."""
        self._apply(getattr(self.scheduler, name)(*args, self.now))

    def _finished(self, request: int) -> None:
        self._apply(self.scheduler.on_finished(request, self.now))
        self._requests.pop(request).on_done(self.now)

    def _job_done(self, model: str, job: str) -> None:
        self._apply(self.scheduler.on_job_done(model, job, "done", self.now))

    def _stopped(self, model: str) -> None:
        self._apply(self.scheduler.on_unit_state(model, "inactive", "stopped", self.now))

    def _idle(self, model: str, token: int) -> None:
        if self._timers.get(model) == token:
            del self._timers[model]
            self._apply(self.scheduler.on_idle_expired(model, self.now))
