"""Who runs, who waits: sparkd's scheduling decisions as a pure state machine.

Events come in as `on_<event>()` calls with the current time; each returns
the effects to carry out (start or stop a unit, grant or reject a request,
arm a timer). Nothing here awaits, sleeps or does I/O, so every rule below is
tested by feeding events and comparing effect lists (tests/unit/test_scheduler.py).

The rules:
- One GPU tenant: at most one model of role main/exclusive is starting,
  ready or stopping at any moment. A new tenant's unit is started only after
  the old one's unit is inactive (`on_stopped`).
- The utility runs beside a main model. With `keep_warm` it is started
  whenever no exclusive model holds the GPU, and stopped (and waited for)
  before an exclusive model starts. A failed start backs off.
- A request for the ready tenant is granted at once, unless a request for
  another model waits: then it queues behind it (FIFO fairness). Waiters for
  the same model are granted together.
- A busy tenant (requests in flight) is never evicted: the next model waits
  until it drains. An idle one is stopped as soon as someone waits for another.
- Bounds: per-model queue cap (429 at once) and a per-request wait deadline
  (503), both with an honest Retry-After. A client that leaves is forgotten.
- Idle stop: when a model's last request ends, an idle timer is armed for
  max(idle_timeout, min_uptime - uptime). Its firing (`on_idle_expired`) stops
  the model only if it is still idle: a timer that raced a request is harmless.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sparkd.catalogue import Model, Role

DEFAULT_START_ESTIMATE = 60.0  # seconds, until a model's first start has been measured
UTILITY_BACKOFF = (10.0, 30.0, 120.0, 600.0)  # after 1, 2, 3, 4+ failed starts in a row
# A model whose starts failed this many times in a row is not started again
# for a while (doubling from a minute up to ten): requests get a 503 at once
# instead of each one paying for a start that will fail.
CRASH_LOOP_AFTER = 3
IDLE_SLACK = 1.0  # seconds; systemd timers fire within a second of their time
CRASH_LOOP_BACKOFF = (60.0, 600.0)


class Phase(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"


# Effects --------------------------------------------------------------------


@dataclass(frozen=True)
class StartUnit:
    model: str


@dataclass(frozen=True)
class StopUnit:
    model: str
    reason: str  # "swap", "idle", "exclusive", "manual", "extra tenant"


@dataclass(frozen=True)
class Grant:
    request: int
    model: str
    waited: float  # seconds in the queue
    cold: bool  # the request waited for a start


@dataclass(frozen=True)
class Reject:
    request: int
    model: str
    status: int  # 429 queue full, 503 deadline or start failure
    code: str
    message: str
    retry_after: float
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class WatchDeadline:
    """Call `on_deadline(request)` after `seconds` unless the request was granted."""

    request: int
    seconds: float


@dataclass(frozen=True)
class ArmIdleTimer:
    model: str
    seconds: float


@dataclass(frozen=True)
class DisarmIdleTimer:
    model: str


@dataclass(frozen=True)
class WakeAfter:
    """Call `on_wake()` after `seconds` (retry a backed-off utility start)."""

    seconds: float


@dataclass(frozen=True)
class AwaitHealthy:
    """The unit is already active (adopted at start-up): probe its engine, then `on_ready`."""

    model: str


@dataclass(frozen=True)
class AbortInFlight:
    """The model's unit went away under running requests: end them with an error now."""

    model: str
    cause: str


Effect = (
    StartUnit
    | StopUnit
    | Grant
    | Reject
    | WatchDeadline
    | ArmIdleTimer
    | DisarmIdleTimer
    | WakeAfter
    | AwaitHealthy
    | AbortInFlight
)


# State ----------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The part of a catalogue model that scheduling needs."""

    role: Role
    idle_timeout: float
    min_uptime: float
    start_timeout: float
    keep_warm: bool = False

    @classmethod
    def of(cls, model: Model, host_has_gpu: bool = True) -> Policy:
        # A GPU model is never kept warm on a machine without a GPU: it
        # could only fail to start, again and again.
        keep_warm = model.keep_warm and (host_has_gpu or not model.gpu)
        return cls(model.role, model.idle_timeout, model.min_uptime, model.start_timeout, keep_warm)

    @property
    def holds_gpu(self) -> bool:
        return self.role is not Role.UTILITY


@dataclass
class ModelState:
    phase: Phase = Phase.STOPPED
    in_flight: set[int] = field(default_factory=set)
    since: float = 0.0  # when the phase began
    ready_at: float | None = None
    last_done: float | None = None
    start_requested: float | None = None
    start_durations: list[float] = field(default_factory=list)
    failures_in_a_row: int = 0
    retry_at: float = 0.0  # no start before this (keep-warm retries, crash-loop back-off)
    idle_timer_armed: bool = False
    warm_until: float = 0.0  # `sparkd keep-warm`: no idle stop before this
    last_failure: str | None = None


@dataclass(frozen=True)
class Waiter:
    request: int
    model: str
    since: float


@dataclass
class Scheduler:
    policies: Mapping[str, Policy]
    queue_cap: int = 100
    wait_margin: float = 600.0  # a request waits at most start_timeout + this
    refuse_when_busy: bool = False  # the original stack's behaviour: 429 instead of a queue
    states: dict[str, ModelState] = field(default_factory=dict)
    queue: deque[Waiter] = field(default_factory=deque)
    owner: dict[int, str] = field(default_factory=dict)  # granted request -> model
    wanted: str | None = None  # a main model an operator asked for; started like a waiter's

    def __post_init__(self) -> None:
        for model_id in self.policies:
            self.states.setdefault(model_id, ModelState())
        self._utility = next((m for m, p in self.policies.items() if p.role is Role.UTILITY), None)

    # Queries (pure reads for status lines and tests) -----------------------

    def tenant(self) -> str | None:
        """The main model that holds the GPU (starting, ready or stopping), if any."""
        for model_id, state in self.states.items():
            if self.policies[model_id].holds_gpu and state.phase is not Phase.STOPPED:
                return model_id
        return None

    def utility(self) -> str | None:
        return self._utility

    def queued(self, model_id: str | None = None) -> int:
        return sum(1 for w in self.queue if model_id is None or w.model == model_id)

    def start_estimate(self, model_id: str) -> float:
        durations = self.states[model_id].start_durations
        return max(durations[-3:]) if durations else DEFAULT_START_ESTIMATE

    # Events ------------------------------------------------------------------

    def on_request(self, request: int, model_id: str, now: float) -> list[Effect]:
        state = self.states[model_id]
        if model_id == self.utility() and (self._exclusive_holds_gpu() or self._exclusive_waits()):
            blocker = self.tenant() or "an exclusive model"
            return [
                Reject(
                    request,
                    model_id,
                    503,
                    "utility_paused",
                    f"{model_id!r} is paused while {blocker!r} needs all of the GPU's memory",
                    self._retry_after(model_id, now),
                )
            ]
        if state.phase is Phase.READY and not self._someone_else_waits(model_id):
            return self._grant(request, model_id, now, since=now, cold=False)
        if state.phase is Phase.STOPPED and now < state.retry_at and not self.policies[model_id].keep_warm:
            return [
                Reject(
                    request,
                    model_id,
                    503,
                    "model_start_failed",
                    f"{model_id!r} failed to start {state.failures_in_a_row} times in a row and is not "
                    f"started again for now; last cause: {state.last_failure}",
                    float(max(1, round(state.retry_at - now))),
                )
            ]
        holder = self.tenant()
        busy = holder is not None and holder != model_id and self.policies[model_id].holds_gpu
        if self.refuse_when_busy and busy and holder is not None:
            return [self._busy(request, model_id, holder, now)]
        if self.queued(model_id) >= self.queue_cap:
            return [
                Reject(
                    request,
                    model_id,
                    429,
                    "queue_full",
                    f"{self.queued(model_id)} requests already wait for {model_id!r}",
                    self._retry_after(model_id, now),
                )
            ]
        self.queue.append(Waiter(request, model_id, now))
        effects: list[Effect] = [
            WatchDeadline(request, self.policies[model_id].start_timeout + self.wait_margin)
        ]
        return effects + self._advance(now)

    def on_cancelled(self, request: int, now: float) -> list[Effect]:
        """The client went away: forget it, whether it waited or ran."""
        if request in self.owner:
            return self.on_finished(request, now)
        self.queue = deque(w for w in self.queue if w.request != request)
        return self._advance(now)

    def on_finished(self, request: int, now: float) -> list[Effect]:
        model_id = self._ungrant(request)
        if model_id is None:
            return []
        state = self.states[model_id]
        state.last_done = now
        effects = self._advance(now)
        if not state.in_flight and self._is_ready(model_id) and not self._stop_pending(effects, model_id):
            effects += self._arm_idle(model_id, now)
        return effects

    def on_deadline(self, request: int, now: float) -> list[Effect]:
        waiter = next((w for w in self.queue if w.request == request), None)
        if waiter is None:
            return []
        self.queue.remove(waiter)
        message = (
            f"waited {now - waiter.since:.0f}s for {waiter.model!r} "
            f"(tenant: {self.tenant() or 'none'}); giving up"
        )
        return [
            Reject(request, waiter.model, 503, "wait_deadline", message, self._retry_after(waiter.model, now))
        ]

    def on_ready(self, model_id: str, now: float) -> list[Effect]:
        """The unit is active and the engine answers its health route."""
        state = self.states[model_id]
        if state.phase is not Phase.STARTING:
            return []
        if state.start_requested is not None:
            state.start_durations = [*state.start_durations[-9:], now - state.start_requested]
        self._enter(model_id, Phase.READY, now)
        state.ready_at = now
        state.failures_in_a_row = 0
        state.last_failure = None
        effects = self._advance(now)
        if not state.in_flight and self._is_ready(model_id) and not self._stop_pending(effects, model_id):
            effects += self._arm_idle(model_id, now)
        return effects

    def on_start_failed(self, model_id: str, cause: str, now: float, unit_up: bool = False) -> list[Effect]:
        """The unit failed, the container exited or health never came: tell every waiter why.

        `unit_up`: the unit still runs (an engine that never became healthy); it is stopped.
        """
        state = self.states[model_id]
        if state.phase is not Phase.STARTING:
            return []
        state.failures_in_a_row += 1
        state.last_failure = cause
        effects: list[Effect] = []
        if unit_up:
            effects += self._stop(model_id, "unhealthy", now)
        else:
            self._enter(model_id, Phase.STOPPED, now)
        if self.policies[model_id].keep_warm:
            backoff = UTILITY_BACKOFF[min(state.failures_in_a_row, len(UTILITY_BACKOFF)) - 1]
            state.retry_at = now + backoff
            effects.append(WakeAfter(backoff))
        elif state.failures_in_a_row >= CRASH_LOOP_AFTER:
            first, longest = CRASH_LOOP_BACKOFF
            state.retry_at = now + min(longest, first * 2 ** (state.failures_in_a_row - CRASH_LOOP_AFTER))
        for waiter in [w for w in self.queue if w.model == model_id]:
            self.queue.remove(waiter)
            effects.append(
                Reject(
                    waiter.request,
                    model_id,
                    503,
                    "model_start_failed",
                    f"{model_id!r} failed to start: {cause}",
                    self._retry_after(model_id, now),
                )
            )
        if state.in_flight:
            effects.append(AbortInFlight(model_id, f"{model_id!r} failed: {cause}"))
        return effects + self._advance(now)

    def on_stopped(self, model_id: str, now: float, cause: str = "stopped") -> list[Effect]:
        """The unit is inactive, whoever stopped it."""
        state = self.states[model_id]
        if state.phase is Phase.STOPPED:
            return []
        if state.phase is Phase.STARTING:
            return self.on_start_failed(model_id, cause, now)  # it ended before it was ever ready
        self._enter(model_id, Phase.STOPPED, now)
        state.ready_at = None
        state.idle_timer_armed = False
        effects: list[Effect] = []
        if state.in_flight:
            effects.append(AbortInFlight(model_id, f"{model_id!r} stopped while answering ({cause})"))
        return effects + self._advance(now)

    def on_unit_leaving(self, model_id: str, now: float, cause: str) -> list[Effect]:
        """A ready model's unit began to stop without sparkd asking (by hand, or its engine died).

        New requests queue from now on instead of reaching an engine on its
        way out; running ones end with an error at once. `on_stopped` follows.
        """
        state = self.states[model_id]
        if state.phase is not Phase.READY:
            return []
        self._enter(model_id, Phase.STOPPING, now)
        effects: list[Effect] = []
        if state.idle_timer_armed:
            state.idle_timer_armed = False
            effects.append(DisarmIdleTimer(model_id))
        if state.in_flight:
            effects.append(AbortInFlight(model_id, f"{model_id!r} is stopping ({cause})"))
        return effects

    def on_engine_unreachable(self, request: int, now: float, cause: str) -> list[Effect]:
        """A granted request found its engine not answering (it died, or hangs) before systemd said so.

        The engine never saw the request, so it waits again, first in line,
        for the model brought back: a ready model is stopped (whatever state
        its unit is in, systemd then says it is inactive) and started anew for
        this request. The proxy asks this once per request; a second failure
        is the client's error.
        """
        model_id = self._ungrant(request)
        if model_id is None:
            return []
        state = self.states[model_id]
        state.last_failure = cause
        self.queue.appendleft(Waiter(request, model_id, now))
        effects: list[Effect] = [
            WatchDeadline(request, self.policies[model_id].start_timeout + self.wait_margin)
        ]
        if state.phase is Phase.READY:
            effects += self._stop(model_id, "engine unreachable", now)
            if state.in_flight:
                effects.append(AbortInFlight(model_id, f"{model_id!r} stopped answering ({cause})"))
        return effects + self._advance(now)

    def on_idle_expired(self, model_id: str, now: float) -> list[Effect]:
        """The idle timer fired: stop the model if it is still idle, else look again later.

        A timer that raced a request is harmless: a busy model is left alone
        (its last answer arms the timer again), one that answered since the
        timer was armed gets a new timer for the rest of its idle time.
        """
        state = self.states[model_id]
        state.idle_timer_armed = False
        if state.phase is not Phase.READY or state.in_flight or self._has_waiters(model_id):
            return []
        if now + IDLE_SLACK < self.idle_deadline(model_id, now):
            return self._arm_idle(model_id, now)
        return self._stop(model_id, "idle", now)

    def on_keep_warm(self, model_id: str, seconds: float, now: float) -> list[Effect]:
        """An operator pins a model: started if needed, never idle-stopped for `seconds`."""
        state = self.states[model_id]
        state.warm_until = now + seconds
        effects = self.on_manual_start(model_id, now)
        if state.phase is Phase.READY and not state.in_flight:
            effects += self._arm_idle(model_id, now)
        return effects

    def on_wake(self, now: float) -> list[Effect]:
        return self._advance(now)

    def on_manual_start(self, model_id: str, now: float) -> list[Effect]:
        """An operator asked for a model: like a request that needs no answer (and no back-off)."""
        state = self.states[model_id]
        state.retry_at = 0.0
        if state.phase in (Phase.READY, Phase.STARTING):
            return []
        if not self.policies[model_id].holds_gpu:
            return self._start(model_id, now) if state.phase is Phase.STOPPED else []
        # Queued behind real requests, and started when the GPU is free: a busy
        # model is never evicted for it.
        self.wanted = model_id
        return self._advance(now)

    def on_manual_stop(self, model_id: str, now: float) -> list[Effect]:
        if self.wanted == model_id:
            self.wanted = None
        state = self.states[model_id]
        if state.phase in (Phase.STOPPED, Phase.STOPPING):
            return []
        return self._stop(model_id, "manual", now)

    def adopt(self, active: Iterable[str], now: float) -> list[Effect]:
        """At start-up: units systemd reports active. Each must still prove healthy."""
        effects: list[Effect] = []
        tenant_kept = False
        for model_id in sorted(active, key=lambda m: self.policies[m].role is Role.UTILITY):
            state = self.states[model_id]
            if self.policies[model_id].holds_gpu:
                if tenant_kept:
                    # Never two tenants: a second active main model (started by
                    # hand, say) is stopped rather than adopted.
                    self._enter(model_id, Phase.STOPPING, now)
                    effects.append(StopUnit(model_id, "extra tenant"))
                    continue
                tenant_kept = True
            self._enter(model_id, Phase.STARTING, now)
            state.start_requested = None  # its start time is unknown: not a measurement
            effects.append(AwaitHealthy(model_id))
        return effects

    # Decisions ---------------------------------------------------------------

    def _advance(self, now: float) -> list[Effect]:
        """Bring the units closer to what the queue needs. Runs after every event."""
        effects: list[Effect] = []
        effects += self._serve_utility_waiters(now)
        head = next((w for w in self.queue if self.policies[w.model].holds_gpu), None)
        holder = self.tenant()
        target = head.model if head is not None else self.wanted
        if target == holder and self.wanted == holder and holder is not None:
            self.wanted = None  # the operator's model holds the GPU now
        if target is not None:
            if holder is None:
                effects += self._start_tenant(target, now)
            elif holder == target:
                if self.states[target].phase is Phase.READY:
                    effects += self._grant_waiters(target, now)
            else:
                holder_state = self.states[holder]
                if holder_state.phase is Phase.READY and not holder_state.in_flight:
                    effects += self._stop(holder, "swap", now)
                # STARTING: it will be ready, serve what it has, then drain; STOPPING: wait.
        effects += self._keep_utility_warm(now)
        return effects

    def _start_tenant(self, model_id: str, now: float) -> list[Effect]:
        if self.wanted == model_id:
            self.wanted = None
        utility = self.utility()
        if self.policies[model_id].role is Role.EXCLUSIVE and utility is not None:
            u = self.states[utility]
            if u.phase is not Phase.STOPPED:
                # The exclusive model needs the utility's memory: stop it and
                # start only once its unit is gone (on_stopped comes back here).
                if u.phase is not Phase.STOPPING and not u.in_flight:
                    return self._stop(utility, "exclusive", now)
                return []
        return self._start(model_id, now)

    def _serve_utility_waiters(self, now: float) -> list[Effect]:
        utility = self.utility()
        if utility is None or not self._has_waiters(utility):
            return []
        if self._exclusive_holds_gpu() or self._exclusive_waits():
            return []
        state = self.states[utility]
        if state.phase is Phase.READY:
            return self._grant_waiters(utility, now)
        if state.phase is Phase.STOPPED:
            return self._start(utility, now)
        return []

    def _keep_utility_warm(self, now: float) -> list[Effect]:
        utility = self.utility()
        if utility is None or not self.policies[utility].keep_warm:
            return []
        state = self.states[utility]
        if state.phase is not Phase.STOPPED or self._exclusive_holds_gpu() or self._exclusive_waits():
            return []
        if now < state.retry_at:
            return []
        return self._start(utility, now)

    def _exclusive_holds_gpu(self) -> bool:
        holder = self.tenant()
        return holder is not None and self.policies[holder].role is Role.EXCLUSIVE

    def _exclusive_waits(self) -> bool:
        head = next((w for w in self.queue if self.policies[w.model].holds_gpu), None)
        return head is not None and self.policies[head.model].role is Role.EXCLUSIVE

    def _start(self, model_id: str, now: float) -> list[Effect]:
        state = self.states[model_id]
        self._enter(model_id, Phase.STARTING, now)
        state.start_requested = now
        return [StartUnit(model_id)]

    def _stop(self, model_id: str, reason: str, now: float) -> list[Effect]:
        state = self.states[model_id]
        self._enter(model_id, Phase.STOPPING, now)
        effects: list[Effect] = []
        if state.idle_timer_armed:
            state.idle_timer_armed = False
            effects.append(DisarmIdleTimer(model_id))
        return [*effects, StopUnit(model_id, reason)]

    def _grant(self, request: int, model_id: str, now: float, since: float, cold: bool) -> list[Effect]:
        # An armed idle timer stays armed: when it fires, the model is checked
        # again (on_idle_expired), so a busy model costs no D-Bus call per request.
        state = self.states[model_id]
        state.in_flight.add(request)
        self.owner[request] = model_id
        return [Grant(request, model_id, waited=now - since, cold=cold)]

    def _ungrant(self, request: int) -> str | None:
        """Take a granted request off its model; the model it held, or None if none."""
        model_id = self.owner.pop(request, None)
        if model_id is not None:
            self.states[model_id].in_flight.discard(request)
        return model_id

    def _grant_waiters(self, model_id: str, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for waiter in [w for w in self.queue if w.model == model_id]:
            self.queue.remove(waiter)
            # Cold: the model became ready while this request waited for it.
            ready_at = self.states[model_id].ready_at
            cold = ready_at is not None and ready_at >= waiter.since
            effects += self._grant(waiter.request, model_id, now, since=waiter.since, cold=cold)
        return effects

    def idle_deadline(self, model_id: str, now: float) -> float:
        """When an idle model may be stopped: idle_timeout after its last answer, not before
        its minimum uptime, not while an operator keeps it warm."""
        policy, state = self.policies[model_id], self.states[model_id]
        ready = state.ready_at if state.ready_at is not None else now
        last = state.last_done if state.last_done is not None else ready
        return max(last + policy.idle_timeout, ready + policy.min_uptime, state.warm_until)

    def _arm_idle(self, model_id: str, now: float) -> list[Effect]:
        policy, state = self.policies[model_id], self.states[model_id]
        if policy.keep_warm or policy.idle_timeout <= 0 or state.idle_timer_armed:
            return []
        at = self.idle_deadline(model_id, now)
        state.idle_timer_armed = True
        return [ArmIdleTimer(model_id, max(0.0, at - now))]

    def _someone_else_waits(self, model_id: str) -> bool:
        if not self.policies[model_id].holds_gpu:
            return False
        return any(w.model != model_id and self.policies[w.model].holds_gpu for w in self.queue)

    def _has_waiters(self, model_id: str) -> bool:
        return any(w.model == model_id for w in self.queue)

    def _is_ready(self, model_id: str) -> bool:
        return self.states[model_id].phase is Phase.READY

    def _enter(self, model_id: str, phase: Phase, now: float) -> None:
        state = self.states[model_id]
        state.phase = phase
        state.since = now

    @staticmethod
    def _stop_pending(effects: list[Effect], model_id: str) -> bool:
        return any(isinstance(e, StopUnit) and e.model == model_id for e in effects)

    def _busy(self, request: int, model_id: str, holder: str, now: float) -> Reject:
        """The original's busy answer, headers and all, for `busy_policy = "refuse"`."""
        state, policy = self.states[holder], self.policies[holder]
        uptime = now - state.ready_at if state.ready_at is not None else 0.0
        idle = now - state.last_done if state.last_done is not None and not state.in_flight else 0.0
        release = max(policy.idle_timeout - idle, policy.min_uptime - uptime, 0.0)
        will_stop = policy.idle_timeout > 0 and not policy.keep_warm
        headers = (
            ("X-Busy-Model", holder),
            ("X-Model-Uptime-Sec", str(int(uptime))),
            ("X-Model-Idle-Sec", str(int(idle))),
            ("X-Time-Until-Release-Sec", str(int(release))),
            ("X-Model-Will-Auto-Stop", "true" if will_stop else "false"),
        )
        return Reject(
            request,
            model_id,
            429,
            "model_busy",
            f"{holder!r} holds the GPU; {model_id!r} can start when it is released",
            float(max(1, round(release + self.start_estimate(model_id)))),
            headers,
        )

    def _retry_after(self, model_id: str, now: float) -> float:
        """An honest guess of when asking again could succeed, in whole seconds, at least 1."""
        state = self.states[model_id]
        if state.phase is Phase.READY:
            return 1.0
        if state.phase is Phase.STARTING:
            remaining = self.start_estimate(model_id) - (now - state.since)
            return float(max(1, round(remaining)))
        holder = self.tenant()
        wait = self.start_estimate(model_id)
        if holder is not None and holder != model_id:
            wait += 15.0  # the current tenant drains and stops first
        return float(max(1, round(wait)))
