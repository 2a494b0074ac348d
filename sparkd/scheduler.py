"""Who runs, who waits: sparkd's scheduling decisions as a pure state machine.

Events come in as `on_<event>()` calls with the current time; each returns
the effects to carry out (`sparkd.effects`). Nothing here awaits, sleeps or
does I/O, so every rule below is tested by feeding events and comparing
effect lists (tests/unit/test_scheduler.py, test_starts.py).

The rules:
- One GPU tenant: at most one model of role main/exclusive is starting,
  ready or stopping at any moment. A new tenant's unit is started only after
  the old one's unit is inactive (`on_unit_state`).
- The utility runs beside a main model. With `keep_warm` it is started
  whenever no exclusive model holds the GPU, and stopped (and waited for)
  before an exclusive model starts. A failed start backs off.
- A request for the ready tenant is granted at once, unless a request for
  another model waits: then it queues behind it (FIFO fairness), once the
  swap hold is over (the tenant's burst may finish first; see `Tenancy`).
  Waiters for the same model are granted together (not in `strict_order`).
- A busy tenant (requests in flight) is never evicted: the next model waits
  until it drains. An idle one is stopped as soon as someone waits for another.
- Bounds: per-model queue cap (429 at once) and a per-request wait deadline
  (503), both with an honest Retry-After. A client that leaves is forgotten.
- Idle stop: when a model's last request ends, an idle timer is armed for
  max(idle_timeout, min_uptime - uptime). Its firing (`on_idle_expired`) stops
  the model only if it is still idle: a timer that raced a request is harmless.
- A start's outcome is its systemd job's result, then the engine's health
  (`StartStep`, `sparkd.starts`): a unit-state signal about a previous run never
  fails a new start.
- A model split across two Sparks holds both GPUs: here as the tenant, there as
  its worker half (a lease that is a request in flight there, so never evicted).
  Someone waiting there counts here as a waiter for another model
  (`on_peer_wants`); the worker half's end stops this half (`on_worker_lost`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from sparkd import refusals
from sparkd.catalogue import Role
from sparkd.effects import (
    AbortInFlight,
    AwaitHealthy,
    DiagnoseFailedStart,
    DisarmIdleTimer,
    Effect,
    StopUnit,
    WatchDeadline,
)
from sparkd.lifecycle import Phase, StartStep, Waiter
from sparkd.starts import StartSteps

IDLE_SLACK = 1.0  # seconds; systemd timers fire within a second of their time
UNIT_GONE = ("inactive", "failed")


class Scheduler(StartSteps):
    # Requests -----------------------------------------------------------------

    def on_request(self, request: int, model_id: str, now: float) -> list[Effect]:
        state = self.states[model_id]
        if model_id == self.utility() and self._exclusive_near():
            blocker = self.tenant() or "an exclusive model"
            return [refusals.utility_paused(request, model_id, blocker, self._retry_after(model_id, now))]
        if state.phase is Phase.READY and not self._someone_else_waits(model_id, now):
            return self._grant(request, model_id, now, since=now, cold=False)
        if state.phase is Phase.STOPPED and now < state.retry_at and not self.policies[model_id].keep_warm:
            return [refusals.backing_off(request, model_id, state, now)]
        holder = self.tenant()
        if (
            self.refuse_when_busy
            and holder is not None
            and holder != model_id
            and self.policies[model_id].holds_gpu
        ):
            held, policy = self.states[holder], self.policies[holder]
            estimate = state.start_estimate()
            return [refusals.busy(request, model_id, holder, held, policy, estimate, now)]
        if self.queued(model_id) >= self.queue_cap:
            retry = self._retry_after(model_id, now)
            return [refusals.queue_full(request, model_id, self.queued(model_id), retry)]
        self.queue.append(Waiter(request, model_id, now))
        return [self._deadline_watch(request, model_id), *self._advance(now)]

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
        self.states[model_id].last_done = now
        effects = self._advance(now)
        return effects + self._arm_idle_unless_stopping(model_id, effects, now)

    def on_deadline(self, request: int, now: float) -> list[Effect]:
        waiter = next((w for w in self.queue if w.request == request), None)
        if waiter is None:
            return []
        state = self.states[waiter.model]
        if state.phase is Phase.STARTING and state.start_step is StartStep.PULLING:
            # A download takes as long as the link needs: a waiter for it is not given up on
            # (a streaming client sees its progress; the download's own failure ends the wait).
            return [self._deadline_watch(request, waiter.model)]
        self.queue.remove(waiter)
        retry = self._retry_after(waiter.model, now)
        return [refusals.waited_too_long(request, waiter.model, now - waiter.since, self.tenant(), retry)]

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
        effects: list[Effect] = [self._deadline_watch(request, model_id)]
        if state.phase is Phase.READY:
            effects += self._stop(model_id, "engine unreachable", now)
            if state.in_flight:
                effects.append(AbortInFlight(model_id, f"{model_id!r} stopped answering ({cause})"))
        return effects + self._advance(now)

    # A model split across two Sparks ---------------------------------------------

    def on_peer_wants(self, model_id: str, wanted: bool, now: float) -> list[Effect]:
        """The Spark holding `model_id`'s worker half has someone waiting for its GPU (or no longer).

        Its wait counts here as a waiter's for another model: the split model
        is stopped once idle (after the swap hold), and its new requests
        queue behind that wait, to bring it back once the peer is served.
        """
        state = self.states[model_id]
        if not self.policies[model_id].split:
            return []
        state.peer_waits_since = (state.peer_waits_since or now) if wanted else None
        return self._advance(now)

    def on_worker_ready(self, model_id: str, now: float) -> list[Effect]:
        """The peer says the worker half runs: a healthy head may now serve."""
        state = self.states[model_id]
        if not self.policies[model_id].split or state.phase is not Phase.STARTING:
            return []
        state.worker_joined = True
        return self.on_ready(model_id, now) if state.start_step is StartStep.JOINING else []

    def on_worker_lost(self, model_id: str, cause: str, now: float) -> list[Effect]:
        """The worker half ended (its unit stopped or failed on the peer, the peer refused it, or the
        link to the peer broke): this half cannot serve alone, so it is stopped too."""
        state = self.states[model_id]
        if not self.policies[model_id].split:
            return []
        state.peer_waits_since = None
        cause = f"its worker half on the peer: {cause}"
        if state.phase is Phase.STARTING:
            unit_up = state.start_step not in (StartStep.CHECKING, StartStep.PULLING)
            return self.on_start_failed(model_id, cause, now, unit_up=unit_up)
        if state.phase is not Phase.READY:
            return []
        state.last_failure = cause
        effects = self._stop(model_id, "worker lost", now)
        if state.in_flight:
            effects.append(AbortInFlight(model_id, f"{model_id!r} lost {cause}"))
        return effects + self._advance(now)

    # What systemd says about units ---------------------------------------------

    def on_unit_state(self, model_id: str, active_state: str, cause: str, now: float) -> list[Effect]:
        """The model's unit reported `active_state` (PropertiesChanged); `cause` says why it ended."""
        state = self.states[model_id]
        if state.phase is Phase.STARTING:
            if active_state in UNIT_GONE and state.start_step is StartStep.PROBING:
                state.start_step = StartStep.FAILING
                return [DiagnoseFailedStart(model_id, f"its unit became {cause}", unit_up=False)]
            return []  # before its job ends a unit's states are not news: the job's result decides
        if active_state == "deactivating":
            return self.on_unit_leaving(model_id, now, "its unit is deactivating")
        if active_state in UNIT_GONE:
            return self.on_stopped(model_id, now, cause)
        return []

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

    # Operators ------------------------------------------------------------------

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
        effects = self._stop(model_id, "manual", now)
        return effects + self._advance(now) if self.phase(model_id) is Phase.STOPPED else effects

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
            state.start_step = StartStep.PROBING
            state.start_requested = None  # its start time is unknown: not a measurement
            effects.append(AwaitHealthy(model_id))
        return effects

    # Helpers ----------------------------------------------------------------------

    def _deadline_watch(self, request: int, model_id: str) -> WatchDeadline:
        return WatchDeadline(request, self.policies[model_id].start_timeout + self.wait_margin)
