"""The one-tenant rule under any sequence of events (hypothesis): never two main units up at once."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from sparkd.effects import SubmitStart
from sparkd.lifecycle import Phase
from tests.unit.test_scheduler import A, B, U, X, scheduler

EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("finish"), st.integers(0, 30)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("ready"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("stopped"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("failed"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("idle"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("deadline"), st.integers(0, 30)),
        st.tuples(st.just("wake"), st.just("")),
        st.tuples(st.just("manual"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("leaving"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("unreachable"), st.integers(0, 30)),
        st.tuples(st.just("memory"), st.sampled_from([A, B, U, X])),
        st.tuples(st.just("peer_wants"), st.booleans()),  # A is split across two Sparks
        st.tuples(st.just("worker_lost"), st.just(A)),
        st.tuples(st.just("worker_ready"), st.just(A)),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(EVENTS, st.booleans(), st.sampled_from([0.0, 5.0, "auto"]), st.booleans())
def test_never_two_tenants_whatever_happens(
    events: list[tuple[str, object]], keep_warm: bool, swap_hold: float | str, strict_order: bool
) -> None:
    """Any sequence of events, under any swap hold and order: a main model's unit starts only when
    no other main unit is up.

    A unit is up from the moment systemd is asked to start it (SubmitStart,
    after its memory was measured) until it is reported stopped or failed.
    """
    s = scheduler(keep_warm=keep_warm)
    s.swap_hold, s.strict_order = swap_hold, strict_order  # type: ignore[assignment]
    s.policies = {**s.policies, A: dataclasses.replace(s.policies[A], split=True)}
    units_up: set[str] = set()  # what systemd would have: started and not yet reported stopped
    next_request = 0
    for now, (kind, arg) in enumerate(events):
        if kind == "memory":
            model = str(arg)
            effects = s.on_start_memory(model, s.states[model].start_attempt, 2**40, None, now)
        elif kind == "request":
            effects = s.on_request(next_request, str(arg), now)
            next_request += 1
        elif kind == "ready":
            effects = s.on_ready(str(arg), now) if str(arg) in units_up else []
        elif kind in ("stopped", "failed"):
            if str(arg) not in units_up:
                continue
            units_up.discard(str(arg))
            effects = (
                s.on_stopped(str(arg), now) if kind == "stopped" else s.on_start_failed(str(arg), "x", now)
            )
        elif kind == "finish":
            effects = s.on_finished(int(str(arg)), now)
        elif kind == "cancel":
            effects = s.on_cancelled(int(str(arg)), now)
        elif kind == "idle":
            effects = s.on_idle_expired(str(arg), now)
        elif kind == "deadline":
            effects = s.on_deadline(int(str(arg)), now)
        elif kind == "manual":
            effects = s.on_manual_start(str(arg), now)
        elif kind == "leaving":
            effects = s.on_unit_leaving(str(arg), now, "x")
        elif kind == "peer_wants":
            effects = s.on_peer_wants(A, bool(arg), now)
        elif kind == "worker_lost":
            effects = s.on_worker_lost(A, "x", now)
        elif kind == "worker_ready":
            effects = s.on_worker_ready(A, now)
        elif kind == "unreachable":
            effects = s.on_engine_unreachable(int(str(arg)), now, "x")
        else:
            effects = s.on_wake(now)
        for effect in effects:
            if isinstance(effect, SubmitStart):
                if effect.model != U:
                    others = units_up - {U, effect.model}
                    assert not others, f"started {effect.model} while {others} still up"
                if effect.model == X:
                    assert U not in units_up, "started the exclusive model beside the utility"
                units_up.add(effect.model)
        tenants = [m for m in (A, B, X) if s.states[m].phase is not Phase.STOPPED]
        assert len(tenants) <= 1
