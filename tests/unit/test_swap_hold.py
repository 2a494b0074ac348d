"""A swap hold: while the tenant's own requests keep coming, a waiter for another model waits a
bounded while, so one swap serves a burst. Off (0) by default: swap as soon as the tenant drains."""

from __future__ import annotations

from sparkd.effects import Grant, StopUnit, WakeAfter
from sparkd.scheduler import Scheduler
from tests.unit.test_scheduler import A, B, kinds, probing, scheduler


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
    assert WakeAfter(60.0) in effects  # looked at again when the refill gap (60 s) is over
    assert StopUnit(A, "swap") in s.on_wake(now=65)


def test_without_a_hold_the_swap_comes_as_soon_as_the_tenant_drains() -> None:
    s = holding(hold=0.0)
    s.on_request(2, B, now=1)
    assert kinds(s.on_request(3, A, now=2)) == []
    assert StopUnit(A, "swap") in s.on_finished(1, now=5)
