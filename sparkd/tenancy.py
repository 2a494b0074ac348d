"""The scheduler's state and the decisions every event ends with: who should hold the GPU next.

`Tenancy` owns each model's `ModelState`, the FIFO queue and the granted
requests; `_advance()` brings the units closer to what the queue needs and
runs after every event. `sparkd.scheduler.Scheduler` adds the events.
Nothing here awaits or does I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sparkd.catalogue import Role
from sparkd.effects import ArmIdleTimer, DisarmIdleTimer, Effect, Grant, StartUnit, StopUnit, WakeAfter
from sparkd.lifecycle import ModelState, ModelView, Phase, Policy, StartStep, Waiter
from sparkd.refusals import retry_after

# With a swap hold: an idle tenant that answered within this many seconds counts as refilling
# (an agent's own work between two requests). In bench/schedule 60 s saves a fifth more starts
# for two agents than 30 s, but a person who just switched models would wait up to a minute.
REFILL_GAP = 30.0
# What stopping a tenant is taken to cost when a hold is weighed against a waiter's deadline.
STOP_ALLOWANCE = 30.0


@dataclass
class Tenancy:
    policies: Mapping[str, Policy]
    queue_cap: int = 100
    wait_margin: float = 600.0  # a request waits at most start_timeout + this
    refuse_when_busy: bool = False  # the original stack's behaviour: 429 instead of a queue
    fit_gate: bool = False  # refuse to start a model whose recorded need exceeds what is available
    pull_on_demand: bool = True  # a start without weights downloads them first (else 409)
    drop_page_cache: bool = False  # drop clean page cache before a start that fits only with it gone
    # Seconds a swap may wait while the tenant's own queue keeps refilling (an agent's burst):
    # one swap then serves a whole burst instead of each request. 0: swap as soon as it drains;
    # "auto": as long as bringing the tenant back would take (its measured start). Never so long
    # that the waiter would miss its deadline.
    swap_hold: float | Literal["auto"] = 0.0
    # Serve strictly in arrival order, as llama-swap does: waiters for the new tenant are granted
    # only up to the first waiter for another model. For comparison in bench/schedule.
    strict_order: bool = False
    # A peer across a [link] can hold split models' worker halves; without one they cannot start.
    linked: bool = True
    states: dict[str, ModelState] = field(default_factory=dict)
    queue: deque[Waiter] = field(default_factory=deque)
    owner: dict[int, str] = field(default_factory=dict)  # granted request -> model
    wanted: str | None = None  # a main model an operator asked for; started like a waiter's
    _wake_at: float | None = None  # a WakeAfter already asked for, to look at a held swap again

    def __post_init__(self) -> None:
        for model_id in self.policies:
            self.states.setdefault(model_id, ModelState())
        self._utility = next((m for m, p in self.policies.items() if p.role is Role.UTILITY), None)

    # Queries: what others may read ------------------------------------------

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
        return self.states[model_id].start_estimate()

    def phase(self, model_id: str) -> Phase:
        return self.states[model_id].phase

    def view(self, model_id: str, now: float) -> ModelView:
        state, policy = self.states[model_id], self.policies[model_id]
        idle = state.phase is Phase.READY and not state.in_flight
        idle_stop_due = idle and policy.idle_timeout > 0 and not policy.keep_warm
        return ModelView(
            id=model_id,
            role=policy.role,
            phase=state.phase,
            since=state.since,
            start_step=state.start_step,
            in_flight=len(state.in_flight),
            queued=self.queued(model_id),
            idle_seconds=now - state.last_done
            if state.last_done is not None and not state.in_flight
            else None,
            idle_stop_in=max(0.0, self.idle_deadline(model_id, now) - now) if idle_stop_due else None,
            start_estimate=state.start_estimate(),
            last_start_seconds=state.start_durations[-1] if state.start_durations else None,
            last_failure=state.last_failure,
            keep_warm=policy.keep_warm,
        )

    def views(self, now: float) -> list[ModelView]:
        return [self.view(model_id, now) for model_id in self.states]

    def idle_deadline(self, model_id: str, now: float) -> float:
        """When an idle model may be stopped: idle_timeout after its last answer, not before
        its minimum uptime, not while an operator keeps it warm."""
        policy, state = self.policies[model_id], self.states[model_id]
        ready = state.ready_at if state.ready_at is not None else now
        last = state.last_done if state.last_done is not None else ready
        return max(last + policy.idle_timeout, ready + policy.min_uptime, state.warm_until)

    # Decisions ---------------------------------------------------------------

    def _advance(self, now: float) -> list[Effect]:
        """Bring the units closer to what the queue needs. Runs after every event."""
        effects: list[Effect] = []
        effects += self._serve_utility_waiters(now)
        head = self._head_for_gpu()
        holder = self.tenant()
        target = head.model if head is not None else self.wanted
        # The operator's model holds the GPU now: the wish is met (unless it is on its
        # way down, when it must start again once down).
        holds = holder is not None and self.states[holder].phase is not Phase.STOPPING
        if target == holder and self.wanted == holder and holds:
            self.wanted = None
        if target is not None:
            if holder is None:
                effects += self._start_tenant(target, now)
            elif holder == target:
                claim = self._peer_claim(target)
                yielding = claim is not None and now >= self._hold_ends(target, claim)
                if self.states[target].phase is Phase.READY and not yielding:
                    effects += self._grant_waiters(target, now)
            else:
                # STARTING: it will be ready, serve what it has, then drain; STOPPING: wait.
                effects += self._give_way(holder, head, "swap", now)
        if holder is not None and target in (None, holder):
            # A split tenant gives its peer's GPU back by the same rules.
            claim = self._peer_claim(holder)
            if claim is not None:
                effects += self._give_way(holder, claim, "peer", now)
        effects += self._keep_utility_warm(now)
        return effects

    def _give_way(self, holder: str, waiter: Waiter | None, reason: str, now: float) -> list[Effect]:
        """Stop the tenant for `waiter` once it is ready and idle (never while busy), after the swap
        hold if its own requests keep coming (then look again when the hold ends)."""
        state = self.states[holder]
        if state.phase is not Phase.READY or state.in_flight:
            return []
        held = self._swap_held_until(holder, waiter, now)
        if held is None:
            return self._stop(holder, reason, now)
        if self._wake_at is None or self._wake_at <= now or held < self._wake_at:
            self._wake_at = held
            return [WakeAfter(held - now)]
        return []

    def _peer_claim(self, model_id: str) -> Waiter | None:
        """The peer's wait for its GPU, as a waiter (for the model itself: brought back later)."""
        since = self.states[model_id].peer_waits_since
        return None if since is None else Waiter(-1, model_id, since)

    def others_want_gpu(self, model_id: str) -> bool:
        """Does anyone wait for this Spark's GPU for another model than `model_id`?"""
        if self.wanted not in (None, model_id):
            return True
        return any(w.model != model_id and self.policies[w.model].holds_gpu for w in self.queue)

    def _start_tenant(self, model_id: str, now: float) -> list[Effect]:
        if self.wanted == model_id:
            self.wanted = None
        utility = self.utility()
        if self.policies[model_id].role is Role.EXCLUSIVE and utility is not None:
            u = self.states[utility]
            if u.phase is not Phase.STOPPED:
                # The exclusive model needs the utility's memory: stop it and
                # start only once its unit is gone (on_stopped comes back here).
                if u.phase is Phase.STOPPING or u.in_flight:
                    return []
                effects = self._stop(utility, "exclusive", now)
                if self.phase(utility) is not Phase.STOPPED:
                    return effects
                return effects + self._start(model_id, now)  # it had not reached systemd yet
        return self._start(model_id, now)

    def _serve_utility_waiters(self, now: float) -> list[Effect]:
        utility = self.utility()
        if utility is None or not self._has_waiters(utility) or self._exclusive_near():
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
        if state.phase is not Phase.STOPPED or self._exclusive_near() or now < state.retry_at:
            return []
        return self._start(utility, now)

    def _exclusive_near(self) -> bool:
        """An exclusive model holds the GPU or is first in line for it: the utility must be away."""
        holder, head = self.tenant(), self._head_for_gpu()
        near = (holder, head.model if head is not None else None)
        return any(m is not None and self.policies[m].role is Role.EXCLUSIVE for m in near)

    def _head_for_gpu(self) -> Waiter | None:
        return next((w for w in self.queue if self.policies[w.model].holds_gpu), None)

    def _start(self, model_id: str, now: float) -> list[Effect]:
        state = self.states[model_id]
        self._enter(model_id, Phase.STARTING, now)
        state.start_requested = now
        state.start_step = StartStep.CHECKING
        state.start_attempt += 1
        state.start_job = None
        state.early_job_results.clear()
        # Split: a new start gets a new lease, whose peer tells anew whether someone waits there.
        state.worker_joined, state.peer_waits_since = False, None
        return [StartUnit(model_id, state.start_attempt)]

    def _stop(self, model_id: str, reason: str, now: float) -> list[Effect]:
        state = self.states[model_id]
        effects: list[Effect] = []
        if state.idle_timer_armed:
            state.idle_timer_armed = False
            effects.append(DisarmIdleTimer(model_id))
        if state.phase is Phase.STARTING and state.start_step in (StartStep.CHECKING, StartStep.PULLING):
            # systemd was not asked yet, and now never will be for this start (a download
            # under way goes on as its own unit: the next start finds the weights):
            # stopped at once (a StopUnit of an inactive unit changes nothing
            # that would tell sparkd it is done).
            self._enter(model_id, Phase.STOPPED, now)
            return effects
        self._enter(model_id, Phase.STOPPING, now)
        return [*effects, StopUnit(model_id, reason)]

    def _grant(self, request: int, model_id: str, now: float, since: float, cold: bool) -> list[Effect]:
        # An armed idle timer stays armed: when it fires, the model is checked
        # again (on_idle_expired), so a busy model costs no D-Bus call per request.
        self.states[model_id].in_flight.add(request)
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
        for waiter in self._waiters_to_grant(model_id):
            self.queue.remove(waiter)
            # Cold: the model became ready while this request waited for it.
            ready_at = self.states[model_id].ready_at
            cold = ready_at is not None and ready_at >= waiter.since
            effects += self._grant(waiter.request, model_id, now, since=waiter.since, cold=cold)
        return effects

    def _waiters_to_grant(self, model_id: str) -> list[Waiter]:
        """Every waiter for `model_id`; in strict order only those ahead of any other GPU model's."""
        if not (self.strict_order and self.policies[model_id].holds_gpu):
            return [w for w in self.queue if w.model == model_id]
        run = []
        for waiter in self.queue:
            if waiter.model == model_id:
                run.append(waiter)
            elif self.policies[waiter.model].holds_gpu:
                break
        return run

    def _arm_idle(self, model_id: str, now: float) -> list[Effect]:
        policy, state = self.policies[model_id], self.states[model_id]
        if policy.worker:
            # A worker half lives by its lease: idle means the other Spark let it go.
            return [] if self._has_waiters(model_id) else self._stop(model_id, "released", now)
        if policy.keep_warm or policy.idle_timeout <= 0 or state.idle_timer_armed:
            return []
        at = self.idle_deadline(model_id, now)
        state.idle_timer_armed = True
        return [ArmIdleTimer(model_id, max(0.0, at - now))]

    def _arm_idle_unless_stopping(self, model_id: str, effects: list[Effect], now: float) -> list[Effect]:
        """An idle timer for a ready model with nothing running, unless `effects` already stop it."""
        state = self.states[model_id]
        stopping = any(isinstance(e, StopUnit) and e.model == model_id for e in effects)
        if state.in_flight or state.phase is not Phase.READY or stopping:
            return []
        return self._arm_idle(model_id, now)

    def _someone_else_waits(self, model_id: str, now: float) -> bool:
        """Does a request for another GPU model wait (and, with a swap hold, has it waited long
        enough that the tenant's new requests must queue behind it)?"""
        if not self.policies[model_id].holds_gpu:
            return False
        head = next((w for w in self.queue if w.model != model_id and self.policies[w.model].holds_gpu), None)
        head = head or self._peer_claim(model_id)
        if head is None:
            return False
        return now >= self._hold_ends(model_id, head)

    def _swap_held_until(self, holder: str, head: Waiter | None, now: float) -> float | None:
        """When an idle tenant may be swapped out for `head`, if not now: while the head has waited
        less than the hold and the tenant answered a moment ago (its queue refills)."""
        if head is None:
            return None
        last = self.states[holder].last_done
        if last is None or now - last >= REFILL_GAP:
            return None
        until = min(self._hold_ends(holder, head), last + REFILL_GAP)
        return until if until > now else None

    def _hold_ends(self, holder: str, head: Waiter) -> float:
        """Until when `holder` may keep serving its own new requests while `head` waits for another
        model: the swap hold, counted from when both the waiter and the tenant were there (a tenant
        swapped in gets its turn, whatever its start took), and never so long that stopping it and
        starting head's model would end past head's deadline."""
        if not self.swap_hold:
            return head.since
        state = self.states[holder]
        hold = (
            state.start_estimate() + self.states[head.model].start_estimate()
            if self.swap_hold == "auto"
            else self.swap_hold
        )
        since = max(head.since, state.ready_at if state.ready_at is not None else head.since)
        deadline = head.since + self.policies[head.model].start_timeout + self.wait_margin
        latest = deadline - self.states[head.model].start_estimate() - STOP_ALLOWANCE
        return max(head.since, min(since + hold, latest))

    def _has_waiters(self, model_id: str) -> bool:
        return any(w.model == model_id for w in self.queue)

    def _enter(self, model_id: str, phase: Phase, now: float) -> None:
        state = self.states[model_id]
        state.phase = phase
        state.since = now
        if phase is not Phase.STARTING:
            state.start_step = None

    def _other_tenant(self, model_id: str) -> bool:
        holder = self.tenant()
        return holder is not None and holder != model_id

    def _retry_after(self, model_id: str, now: float) -> float:
        return retry_after(self.states[model_id], now, self._other_tenant(model_id))
