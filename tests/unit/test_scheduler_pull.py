"""Starts that must download weights first: the pull is one more step of a start, with its own rules."""

from __future__ import annotations

from sparkd.effects import Effect, PullWeights, Reject, StartUnit, SubmitStart, WatchDeadline
from sparkd.lifecycle import Phase, StartStep
from sparkd.scheduler import Scheduler
from tests.unit.test_scheduler import A, B, kinds, scheduler

GIB = 2**30


def asked_without_weights(s: Scheduler, request: int = 1, now: float = 0.0) -> list[Effect]:
    s.on_request(request, A, now)
    return s.on_start_memory(A, s.states[A].start_attempt, 100 * GIB, None, now, weights_missing=True)


def test_weights_never_pulled_are_downloaded_before_the_unit_starts() -> None:
    s = scheduler()
    assert asked_without_weights(s) == [PullWeights(A)]
    assert (s.phase(A), s.states[A].start_step) == (Phase.STARTING, StartStep.PULLING)
    # The download done, the start goes on from the top: memory is measured anew.
    assert s.on_pull_done(A, None, now=300) == [StartUnit(A)]
    attempt = s.states[A].start_attempt
    assert s.on_start_memory(A, attempt, 100 * GIB, None, 301) == [SubmitStart(A, attempt, 100 * GIB)]


def test_a_failed_download_fails_the_start_for_every_waiter_with_its_cause() -> None:
    s = scheduler()
    asked_without_weights(s)
    s.on_request(2, A, now=1)
    effects = s.on_pull_done(A, "the hub answered 401", now=10)
    refused = [e for e in effects if isinstance(e, Reject)]
    assert [r.request for r in refused] == [1, 2]
    assert all(
        r.status == 503 and "downloading its weights failed: the hub answered 401" in r.message
        for r in refused
    )
    assert s.phase(A) is Phase.STOPPED


def test_with_pull_on_demand_off_every_waiter_hears_how_to_pull_and_nothing_counts_as_a_failure() -> None:
    s = scheduler()
    s.pull_on_demand = False
    s.on_request(1, A, now=0)
    s.on_request(2, A, now=0)
    effects = s.on_start_memory(A, s.states[A].start_attempt, 100 * GIB, None, 0, weights_missing=True)
    refused = [e for e in effects if isinstance(e, Reject)]
    assert [(r.request, r.status, r.code, r.retry_after) for r in refused] == [
        (1, 409, "model_not_pulled", 0.0),
        (2, 409, "model_not_pulled", 0.0),
    ]
    assert "sudo sparkd pull a" in refused[0].message
    assert (s.phase(A), s.states[A].failures_in_a_row, s.queued(A)) == (Phase.STOPPED, 0, 0)


def test_a_waiter_for_a_download_is_not_given_up_at_its_deadline() -> None:
    s = scheduler()
    asked_without_weights(s)
    assert s.on_deadline(1, now=700) == [WatchDeadline(1, 100 + 600)]
    assert s.queued(A) == 1


def test_the_end_of_a_download_sparkd_stopped_waiting_for_changes_nothing() -> None:
    s = scheduler()
    asked_without_weights(s)
    s.on_cancelled(1, now=5)
    s.on_manual_stop(A, now=6)  # stopped while pulling: nothing was asked of systemd
    assert s.phase(A) is Phase.STOPPED
    assert s.on_pull_done(A, None, now=300) == []


def test_a_download_holds_the_gpu_turn_like_any_start() -> None:
    s = scheduler()
    asked_without_weights(s)
    assert kinds(s.on_request(2, B, now=1)) == []  # B waits for A's turn, as behind a start
    assert s.tenant() == A
