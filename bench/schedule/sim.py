"""A discrete-event simulation that drives sparkd's real `Scheduler` with a virtual clock.

Engines are simulated from a profile (start, stop and service seconds per model);
requests come from a trace. Every effect the scheduler returns is carried out as
the runtime would, but in virtual time: a start takes the profile's seconds, a stop
too, an idle timer fires when it is due. Nothing sleeps, so a day of traffic
replays in seconds, and the decisions are exactly the daemon's.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

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


@dataclass(frozen=True)
class EngineProfile:
    start: float  # seconds from StartUnit to healthy
    stop: float  # seconds from StopUnit to inactive
    service: float  # seconds one request takes once granted
    role: Role = Role.MAIN
    idle_timeout: float = 1200.0


@dataclass(frozen=True)
class Arrival:
    at: float
    model: str
    client: str


@dataclass
class Outcome:
    """What happened to the requests and the GPU over one replay."""

    waits: list[float] = field(
        default_factory=list
    )  # arrival to grant (time to first byte, less the engine's)
    refused: int = 0
    lost: int = 0  # neither granted nor refused by the end: must stay 0
    starts: int = 0  # starts of GPU tenants: swaps, and cold starts after an idle stop
    loading_seconds: float = 0.0  # time some GPU tenant was starting
    longest_wait_by_client: dict[str, float] = field(default_factory=dict)
    two_tenants: int = 0  # moments with two GPU tenants: must stay 0
    span: float = 0.0

    def summary(self) -> dict[str, float]:
        waits = sorted(self.waits) or [0.0]
        return {
            "served": float(len(self.waits)),
            "refused": float(self.refused),
            "lost": float(self.lost),
            "ttfb_mean_s": statistics.fmean(waits),
            "ttfb_p95_s": waits[min(len(waits) - 1, int(0.95 * len(waits)))],
            "ttfb_max_s": waits[-1],
            "starts": float(self.starts),
            "loading_share": self.loading_seconds / self.span if self.span else 0.0,
        }


@dataclass
class Simulation:
    profiles: dict[str, EngineProfile]
    refuse_when_busy: bool = False
    swap_hold: float = 0.0
    queue_cap: int = 1000
    wait_margin: float = 3600.0
    now: float = 0.0
    _events: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _arrived: dict[int, Arrival] = field(default_factory=dict)
    _timers: dict[str, int] = field(default_factory=dict)  # model -> the armed idle timer's token
    _starting_since: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _then: dict[int, Callable[[bool], None]] = field(default_factory=dict)  # answered (True) or refused

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(
            {
                model: Policy(p.role, p.idle_timeout, min_uptime=0.0, start_timeout=max(60.0, 4 * p.start))
                for model, p in self.profiles.items()
            },
            queue_cap=self.queue_cap,
            wait_margin=self.wait_margin,
            refuse_when_busy=self.refuse_when_busy,
            swap_hold=self.swap_hold,
        )
        self.outcome = Outcome()

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def submit(self, arrival: Arrival, then: Callable[[bool], None] | None = None) -> None:
        """A request at `arrival.at`; `then` hears whether it was answered (a closed-loop client)."""
        request = next(self._ids)
        self._arrived[request] = arrival
        if then is not None:
            self._then[request] = then
        self.at(arrival.at, partial(self._event, "on_request", request, arrival.model))

    def replay(self, trace: list[Arrival]) -> Outcome:
        for arrival in trace:
            self.submit(arrival)
        return self.run()

    def run(self) -> Outcome:
        while self._events:
            self.now, _, action = heapq.heappop(self._events)
            action()
            self._check_tenancy()
        self.outcome.span = self.now
        self.outcome.lost = len(self._arrived)
        return self.outcome

    def _check_tenancy(self) -> None:
        holding = [
            m
            for m in self.profiles
            if self.profiles[m].role is not Role.UTILITY and self.scheduler.phase(m) is not Phase.STOPPED
        ]
        if len(holding) > 1:
            self.outcome.two_tenants += 1

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            self._carry_out(effect)

    def _carry_out(self, effect: Effect) -> None:
        s, now = self.scheduler, self.now
        if isinstance(effect, Grant):
            arrival = self._arrived.pop(effect.request)
            wait = now - arrival.at
            self.outcome.waits.append(wait)
            longest = self.outcome.longest_wait_by_client
            longest[arrival.client] = max(longest.get(arrival.client, 0.0), wait)
            service = self.profiles[effect.model].service
            self.at(now + service, partial(self._finished, effect.request))
        elif isinstance(effect, Reject):
            self._arrived.pop(effect.request, None)
            self.outcome.refused += 1
            then = self._then.pop(effect.request, None)
            if then is not None:
                then(False)
        elif isinstance(effect, WatchDeadline):
            self.at(now + effect.seconds, partial(self._event, "on_deadline", effect.request))
        elif isinstance(effect, StartUnit):
            if self.profiles[effect.model].role is not Role.UTILITY:
                self.outcome.starts += 1
            self._starting_since[effect.model] = now
            self._apply(s.on_start_memory(effect.model, effect.attempt, MEMORY, None, now))
        elif isinstance(effect, SubmitStart):
            job = f"/job/{next(self._seq)}"
            self._apply(s.on_start_job(effect.model, effect.attempt, job, now))
            start = self.profiles[effect.model].start
            self.at(now + start, partial(self._job_done, effect.model, job))
        elif isinstance(effect, AwaitHealthy):
            self._apply(s.on_ready(effect.model, now))
        elif isinstance(effect, Ready):
            began = self._starting_since.pop(effect.model, now)
            if self.profiles[effect.model].role is not Role.UTILITY:
                self.outcome.loading_seconds += now - began
        elif isinstance(effect, StopUnit):
            stop = self.profiles[effect.model].stop
            self.at(
                now + stop,
                partial(self._stopped, effect.model),
            )
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
        then = self._then.pop(request, None)
        if then is not None:
            then(True)

    def _job_done(self, model: str, job: str) -> None:
        self._apply(self.scheduler.on_job_done(model, job, "done", self.now))

    def _stopped(self, model: str) -> None:
        self._apply(self.scheduler.on_unit_state(model, "inactive", "stopped", self.now))

    def _idle(self, model: str, token: int) -> None:
        if self._timers.get(model) == token:
            del self._timers[model]
            self._apply(self.scheduler.on_idle_expired(model, self.now))
