"""A swap hold: while the tenant's own requests keep coming, a waiter for another model waits a
bounded while, so one swap serves a burst. The daemon's default is "auto"; these tables set it."""

from __future__ import annotations

from sparkd.effects import Effect, Grant, StopUnit, WakeAfter
from sparkd.scheduler import Scheduler
from sparkd.tenancy import REFILL_GAP
from tests.unit.test_scheduler import A, B, kinds, probing, scheduler


def grants(effects: list[Effect]) -> list[Effect]:
    return [e for e in effects if isinstance(e, Grant)]


def holding(hold: float = 90.0) -> Scheduler:
    """A ready and answering request 1 at t=0; the hold set."""
    s = scheduler()
    s.swap_hold = hold
    s.on_request(1, A, now=0)
    probing(s, A, now=0)
    s.on_ready(A, now=0)
    return s


def test_the_tenants_new_requests_are_served_within_the_hold() -> None:
    s = holding()
    s.on_request(2, B, now=1)  # B waits
    assert kinds(s.on_request(3, A, now=30)) == [Grant(3, A, waited=0, cold=False)]


def test_after_the_hold_the_tenants_new_requests_queue_behind_the_waiter() -> None:
    s = holding()
    s.on_request(2, B, now=1)
    assert kinds(s.on_request(3, A, now=95)) == []  # B has waited 94 s: A's request waits behind it


def test_a_tenant_that_answered_a_moment_ago_is_not_swapped_out_until_its_burst_ends() -> None:
    s = holding()
    s.on_request(2, B, now=1)
    effects = s.on_finished(1, now=5)  # A idle, but it answered just now: its queue may refill
    assert not any(isinstance(e, StopUnit) for e in effects)
    assert WakeAfter(REFILL_GAP) in effects  # looked at again when the refill gap is over
    assert StopUnit(A, "swap") in s.on_wake(now=5 + REFILL_GAP)


def test_without_a_hold_the_swap_comes_as_soon_as_the_tenant_drains() -> None:
    s = holding(hold=0.0)
    s.on_request(2, B, now=1)
    assert kinds(s.on_request(3, A, now=2)) == []
    assert StopUnit(A, "swap") in s.on_finished(1, now=5)


def test_auto_holds_as_long_as_swapping_there_and_back_would_take() -> None:
    s = holding(hold=0.0)
    s.swap_hold = "auto"
    s.states[A].start_durations, s.states[B].start_durations = [120.0], [180.0]
    s.on_request(2, B, now=1)  # B waits: A may keep its burst for 120 + 180 s
    assert kinds(s.on_request(3, A, now=250)) == [Grant(3, A, waited=0, cold=False)]
    assert kinds(s.on_request(4, A, now=302)) == []


def test_the_hold_counts_from_when_the_tenant_was_ready_to_serve() -> None:
    # B's request waited through all of A's start: A still gets its turn of the hold.
    s = scheduler()
    s.swap_hold = 90.0
    s.on_request(1, A, now=0)
    s.on_request(2, B, now=1)
    probing(s, A, now=100)
    assert grants(s.on_ready(A, now=100)) == [Grant(1, A, waited=100, cold=True)]
    assert kinds(s.on_request(3, A, now=150)) == [Grant(3, A, waited=0, cold=False)]
    assert kinds(s.on_request(4, A, now=195)) == []


def test_no_hold_keeps_a_waiter_past_its_deadline() -> None:
    # B's deadline: start_timeout 100 + wait margin 600 after it came; its start (60 s, unmeasured)
    # and A's stop (30 s allowed) must fit before it, so the hold ends 610 s after B came.
    s = holding(hold=10_000.0)
    s.on_request(2, B, now=1)
    assert kinds(s.on_request(3, A, now=600)) == [Grant(3, A, waited=0, cold=False)]
    assert kinds(s.on_request(4, A, now=612)) == []


def test_in_strict_order_a_swap_serves_only_the_waiters_ahead_of_the_next_other_model() -> None:
    # llama-swap's order, for comparison: b, a, b queued behind a busy a.
    s = holding(hold=0.0)
    s.strict_order = True
    s.on_request(2, B, now=1)
    s.on_request(3, A, now=2)
    s.on_request(4, B, now=3)
    assert StopUnit(A, "swap") in s.on_finished(1, now=5)
    s.on_unit_state(A, "inactive", "dead", now=6)
    probing(s, B, now=6)
    assert grants(s.on_ready(B, now=10)) == [Grant(2, B, waited=9, cold=True)]
    assert StopUnit(B, "swap") in s.on_finished(2, now=12)  # a's turn before the second b


def test_by_default_a_swap_serves_every_waiter_for_the_new_tenant() -> None:
    s = holding(hold=0.0)
    s.on_request(2, B, now=1)
    s.on_request(3, A, now=2)
    s.on_request(4, B, now=3)
    s.on_finished(1, now=5)
    s.on_unit_state(A, "inactive", "dead", now=6)
    probing(s, B, now=6)
    assert grants(s.on_ready(B, now=10)) == [
        Grant(2, B, waited=9, cold=True),
        Grant(4, B, waited=7, cold=True),
    ]
