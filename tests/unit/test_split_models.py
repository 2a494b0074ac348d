"""A model split across two Sparks, as each Spark's scheduler sees it (event -> effect tables).

Here (the head): the split model is a tenant like any other, but the peer's wait for its GPU
counts as a waiter for another model, and the worker half's end stops it. There (the worker):
the worker half is a model whose one request in flight is the head's lease: ready as soon as
its unit runs, never evicted while leased, stopped when the lease ends.
"""

from __future__ import annotations

from typing import TypeVar

from sparkd.catalogue import Role
from sparkd.effects import (
    AbortInFlight,
    AwaitHealthy,
    Effect,
    Grant,
    Ready,
    Reject,
    StartUnit,
    StopUnit,
    SubmitStart,
    WakeAfter,
)
from sparkd.lifecycle import Phase, Policy, StartStep
from sparkd.scheduler import Scheduler
from sparkd.tenancy import REFILL_GAP
from tests.unit.test_scheduler import kinds, probing

E = TypeVar("E")
M, Y = "big", "other"  # the split model; a model of the worker Spark's own
W = "worker-big"  # the worker half, on the other Spark
MAIN = Policy(Role.MAIN, idle_timeout=1200, min_uptime=0, start_timeout=100)


def head() -> Scheduler:
    """The Spark serving M, ready with request 1 in flight at t=0."""
    s = Scheduler({M: Policy(Role.MAIN, 1200, 0, 100, split=True), Y: MAIN})
    s.on_request(1, M, now=0)
    probing(s, M, now=0)
    assert s.on_ready(M, now=0) == []  # healthy, but its worker half has not joined yet
    assert Grant(1, M, waited=0, cold=True) in s.on_worker_ready(M, now=0)
    return s


def worker() -> Scheduler:
    return Scheduler({W: Policy(Role.MAIN, 0, 0, 100, worker=True), Y: MAIN})


def of(kind: type[E], effects: list[Effect]) -> list[E]:
    return [e for e in effects if isinstance(e, kind)]


class TestTheHead:
    def test_it_serves_once_healthy_here_and_its_worker_half_runs_there_in_either_order(self) -> None:
        for worker_first in (True, False):
            s = Scheduler({M: Policy(Role.MAIN, 1200, 0, 100, split=True), Y: MAIN})
            s.on_request(1, M, now=0)
            probing(s, M, now=0)
            first, second = (
                (s.on_worker_ready, s.on_ready) if worker_first else (s.on_ready, s.on_worker_ready)
            )
            assert first(M, now=1) == []
            assert s.phase(M) is Phase.STARTING
            assert Grant(1, M, waited=2, cold=True) in second(M, now=2)

    def test_a_new_start_waits_for_its_own_worker_half_again(self) -> None:
        s = head()
        s.on_manual_stop(M, now=1)
        s.on_unit_state(M, "inactive", "dead", now=2)
        s.on_request(2, M, now=3)
        probing(s, M, now=3)
        assert s.on_ready(M, now=4) == [] and s.views(now=4)[0].start_step is StartStep.JOINING

    def test_the_peer_waiting_for_its_gpu_stops_the_split_model_once_idle(self) -> None:
        s = head()
        assert of(StopUnit, s.on_peer_wants(M, True, now=1)) == []  # busy: never evicted
        assert StopUnit(M, "peer") in s.on_finished(1, now=2)

    def test_its_requests_queue_behind_the_peers_wait_and_bring_it_back_after(self) -> None:
        s = head()
        s.on_peer_wants(M, True, now=1)
        assert kinds(s.on_request(2, M, now=2)) == []  # queued behind the peer's wait
        s.on_finished(1, now=3)
        assert s.on_unit_state(M, "inactive", "dead", now=4) == [StartUnit(M, 2)]

    def test_when_the_peer_no_longer_waits_its_requests_are_served_again(self) -> None:
        s = head()
        s.on_peer_wants(M, True, now=1)
        s.on_peer_wants(M, False, now=2)
        assert kinds(s.on_request(2, M, now=3)) == [Grant(2, M, waited=0, cold=False)]
        assert of(StopUnit, s.on_finished(1, now=4)) == []

    def test_with_a_swap_hold_its_burst_ends_first(self) -> None:
        s = head()
        s.swap_hold = 600.0
        s.on_peer_wants(M, True, now=1)
        effects = s.on_finished(1, now=5)  # it answered just now: its clients may come back
        assert of(StopUnit, effects) == [] and WakeAfter(REFILL_GAP) in effects
        assert StopUnit(M, "peer") in s.on_wake(now=5 + REFILL_GAP)

    def test_the_worker_halfs_end_stops_this_half_and_ends_its_answers(self) -> None:
        s = head()
        effects = s.on_worker_lost(M, "its unit failed", now=1)
        assert StopUnit(M, "worker lost") in effects
        assert AbortInFlight(M, "'big' lost its worker half on the peer: its unit failed") in effects
        assert s.views(now=1)[0].last_failure == "its worker half on the peer: its unit failed"

    def test_a_worker_half_lost_while_starting_fails_the_start_for_every_waiter(self) -> None:
        s = Scheduler({M: Policy(Role.MAIN, 1200, 0, 100, split=True), Y: MAIN})
        s.on_request(1, M, now=0)
        probing(s, M, now=0)  # the head's unit runs, waiting for the worker to join
        effects = s.on_worker_lost(M, "the peer refused: busy too long", now=5)
        assert StopUnit(M, "unhealthy") in effects
        rejected = of(Reject, effects)
        assert len(rejected) == 1 and "its worker half on the peer: the peer refused" in rejected[0].message

    def test_before_its_unit_was_asked_for_nothing_is_stopped(self) -> None:
        s = Scheduler({M: Policy(Role.MAIN, 1200, 0, 100, split=True), Y: MAIN})
        s.on_request(1, M, now=0)  # CHECKING memory
        effects = s.on_worker_lost(M, "no answer", now=1)
        assert of(StopUnit, effects) == [] and len(of(Reject, effects)) == 1
        assert s.phase(M) is Phase.STOPPED

    def test_a_new_start_does_not_inherit_the_last_leases_claim(self) -> None:
        s = head()
        s.on_peer_wants(M, True, now=1)
        assert kinds(s.on_request(2, M, now=2)) == []  # waits to bring it back
        s.on_finished(1, now=3)  # stopped for the peer
        assert s.on_unit_state(M, "inactive", "dead", now=4) == [StartUnit(M, 2)]
        probing(s, M, now=5)
        s.on_ready(M, now=6)
        effects = s.on_worker_ready(M, now=7)  # the new lease: nobody waits there any more
        assert Grant(2, M, waited=5, cold=True) in effects and of(StopUnit, effects) == []

    def test_without_a_link_its_start_fails_before_anything_is_tried(self) -> None:
        s = Scheduler({M: Policy(Role.MAIN, 1200, 0, 100, split=True), Y: MAIN}, linked=False)
        s.on_request(1, M, now=0)
        effects = s.on_start_memory(M, 1, 2**40, None, now=0)
        assert of(SubmitStart, effects) == []
        assert "this Spark has no [link]" in of(Reject, effects)[0].message
        assert s.phase(M) is Phase.STOPPED

    def test_a_model_on_one_spark_ignores_peer_news(self) -> None:
        s = head()
        assert s.on_peer_wants(Y, True, now=1) == [] and s.on_worker_lost(Y, "x", now=1) == []


class TestTheWorker:
    def test_a_lease_starts_the_worker_half_which_is_ready_once_its_unit_runs(self) -> None:
        s = worker()
        assert kinds(s.on_request(1, W, now=0)) == [StartUnit(W, 1)]
        assert of(SubmitStart, s.on_start_memory(W, 1, 2**40, None, now=0)) != []
        assert s.on_start_job(W, 1, "/job/1", now=0) == []
        effects = s.on_job_done(W, "/job/1", "done", now=7)
        assert of(AwaitHealthy, effects) == []  # it serves nothing to ask
        assert Ready(W, 7) in effects and Grant(1, W, waited=7, cold=True) in effects

    def test_the_end_of_the_lease_stops_it_at_once(self) -> None:
        s = leased()
        assert StopUnit(W, "released") in s.on_finished(1, now=10)

    def test_a_lease_that_ended_before_the_half_was_ready_stops_it_when_it_is(self) -> None:
        s = worker()
        s.on_request(1, W, now=0)
        s.on_cancelled(1, now=1)
        s.on_start_memory(W, 1, 2**40, None, now=1)
        s.on_start_job(W, 1, "/job/1", now=1)
        assert StopUnit(W, "released") in s.on_job_done(W, "/job/1", "done", now=2)

    def test_a_leased_half_is_never_evicted_and_says_that_others_wait(self) -> None:
        s = leased()
        assert not s.others_want_gpu(W)
        assert kinds(s.on_request(2, Y, now=10)) == []  # Y waits: the lease is a request in flight
        assert s.others_want_gpu(W) and not s.others_want_gpu(Y)
        assert of(StopUnit, s.on_wake(now=500)) == []
        assert StopUnit(W, "swap") in s.on_finished(1, now=600)  # the head let go: Y's turn
        assert s.on_unit_state(W, "inactive", "dead", now=601) == [StartUnit(Y, 1)]

    def test_a_lease_waits_behind_a_busy_tenant_like_any_request(self) -> None:
        s = worker()
        s.on_request(1, Y, now=0)
        probing(s, Y, now=0)
        s.on_ready(Y, now=0)
        assert kinds(s.on_request(2, W, now=1)) == []
        assert StopUnit(Y, "swap") in s.on_finished(1, now=2)


def leased() -> Scheduler:
    """The worker half ready, lease 1 held."""
    s = worker()
    s.on_request(1, W, now=0)
    s.on_start_memory(W, 1, 2**40, None, now=0)
    s.on_start_job(W, 1, "/job/1", now=0)
    s.on_job_done(W, "/job/1", "done", now=1)
    return s
