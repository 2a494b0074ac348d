"""The scheduler's rules for failures, units leaving, refusals, the utility, bounds and adoption."""

from __future__ import annotations

from sparkd.effects import (
    AbortInFlight,
    ArmIdleTimer,
    AwaitHealthy,
    DisarmIdleTimer,
    Grant,
    Ready,
    Reject,
    StartUnit,
    StopUnit,
    WakeAfter,
    WatchDeadline,
)
from sparkd.lifecycle import Phase, Policy
from tests.unit.test_scheduler import A, B, U, X, kinds, ready, scheduler


class TestCrashLoops:
    def test_after_three_failed_starts_requests_get_a_503_at_once(self) -> None:
        s = scheduler()
        for attempt in range(3):
            s.on_request(attempt, A, now=attempt * 10)
            s.on_start_failed(A, "exit status 3", now=attempt * 10 + 1)
        [reject] = s.on_request(9, A, now=30)
        assert isinstance(reject, Reject)
        assert (reject.code, reject.retry_after) == ("model_start_failed", 51)
        assert "3 times in a row" in reject.message
        assert kinds(s.on_request(10, A, now=90)) == [StartUnit(A)]  # the back-off is over

    def test_an_operator_start_clears_the_back_off(self) -> None:
        s = scheduler()
        for attempt in range(3):
            s.on_request(attempt, A, now=0)
            s.on_start_failed(A, "x", now=1)
        assert s.on_manual_start(A, now=2) == [StartUnit(A)]


class TestUnitsLeavingOnTheirOwn:
    def test_a_unit_that_begins_to_stop_takes_no_new_requests(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1)
        assert s.on_unit_leaving(A, now=2, cause="killed") == [
            DisarmIdleTimer(A),
            AbortInFlight(A, "'a' is stopping (killed)"),
        ]
        assert kinds(s.on_request(2, A, now=3)) == []  # queued, not sent to a dying engine
        s.on_finished(1, now=3)
        assert s.on_stopped(A, now=4) == [StartUnit(A)]

    def test_a_request_that_finds_its_engine_gone_waits_for_it_to_be_brought_back(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1)
        s.on_request(2, A, now=1)
        assert s.on_engine_unreachable(1, now=2, cause="connection refused") == [
            WatchDeadline(1, 100 + 600),
            DisarmIdleTimer(A),
            StopUnit(A, "engine unreachable"),
            AbortInFlight(A, "'a' stopped answering (connection refused)"),
        ]
        assert s.queue[0].request == 1  # first in line: it asked before anyone now waiting
        s.on_finished(2, now=2)
        assert kinds(s.on_stopped(A, now=3)) == [StartUnit(A)]
        assert s.on_ready(A, now=10) == [Ready(A, 7), Grant(1, A, waited=8, cold=True)]

    def test_a_second_request_finding_the_engine_gone_only_joins_the_queue(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1)
        s.on_request(2, A, now=1)
        s.on_engine_unreachable(1, now=2, cause="refused")
        assert kinds(s.on_engine_unreachable(2, now=2, cause="refused")) == []  # the stop is under way
        assert [w.request for w in s.queue] == [2, 1]

    def test_an_unknown_request_finding_no_engine_changes_nothing(self) -> None:
        s = scheduler()
        ready(s, A)
        assert s.on_engine_unreachable(7, now=1, cause="refused") == []
        assert s.states[A].phase is Phase.READY

    def test_our_own_stop_is_not_news(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_idle_expired(A, now=2000)
        assert s.on_unit_leaving(A, now=2001, cause="x") == []


class TestRefusePolicy:
    def test_busy_answers_429_with_the_originals_headers(self) -> None:
        s = scheduler()
        s.refuse_when_busy = True
        ready(s, A, now=0)
        s.on_request(1, A, now=10)
        s.on_finished(1, now=20)
        [reject] = s.on_request(2, B, now=50)
        assert isinstance(reject, Reject)
        assert (reject.status, reject.code) == (429, "model_busy")
        assert dict(reject.headers) == {
            "X-Busy-Model": A,
            "X-Model-Uptime-Sec": "50",
            "X-Model-Idle-Sec": "30",
            "X-Time-Until-Release-Sec": "1170",
            "X-Model-Will-Auto-Stop": "true",
        }
        assert s.states[A].phase is Phase.READY  # nothing was stopped


class TestTheUtility:
    def test_keep_warm_starts_it_and_an_exclusive_model_sends_it_away_and_back(self) -> None:
        s = scheduler(keep_warm=True)
        assert s.on_wake(now=0) == [StartUnit(U)]
        assert s.on_ready(U, now=5) == [Ready(U, 5)]  # kept warm: no idle timer
        assert kinds(s.on_request(1, X, now=10)) == [StopUnit(U, "exclusive")]
        assert s.on_stopped(U, now=12) == [StartUnit(X)]
        s.on_ready(X, now=60)
        s.on_finished(1, now=70)
        assert s.on_idle_expired(X, now=1300) == [StopUnit(X, "idle")]
        assert s.on_stopped(X, now=1305) == [StartUnit(U)]

    def test_a_failed_keep_warm_start_backs_off_instead_of_looping(self) -> None:
        s = scheduler(keep_warm=True)
        s.on_wake(now=0)
        assert s.on_start_failed(U, "no GPU", now=1) == [WakeAfter(10.0)]
        assert s.on_wake(now=5) == []
        assert s.on_wake(now=11) == [StartUnit(U)]
        assert s.on_start_failed(U, "no GPU", now=12) == [WakeAfter(30.0)]

    def test_a_request_for_the_utility_during_an_exclusive_model_is_refused_at_once(self) -> None:
        s = scheduler()
        ready(s, X)
        [reject] = s.on_request(1, U, now=5)
        assert isinstance(reject, Reject)
        assert (reject.status, reject.code) == (503, "utility_paused")


def test_a_gpu_utility_is_not_kept_warm_on_a_machine_without_a_gpu() -> None:
    from sparkd.catalogue import load_catalogue

    utility = load_catalogue().utility
    assert utility is not None
    assert Policy.of(utility, host_has_gpu=True).keep_warm
    assert not Policy.of(utility, host_has_gpu=False).keep_warm


class TestBounds:
    def test_a_full_queue_answers_429_at_once(self) -> None:
        s = scheduler(queue_cap=2)
        s.on_request(1, A, now=0)
        s.on_request(2, A, now=0)
        [reject] = s.on_request(3, A, now=0)
        assert isinstance(reject, Reject)
        assert (reject.status, reject.code) == (429, "queue_full")
        assert reject.retry_after >= 1

    def test_a_request_past_its_deadline_gets_503(self) -> None:
        s = scheduler()
        s.on_request(1, A, now=0)
        [reject] = s.on_deadline(1, now=700)
        assert isinstance(reject, Reject)
        assert (reject.status, reject.code) == (503, "wait_deadline")
        assert s.on_deadline(1, now=701) == []  # answered once

    def test_a_client_that_leaves_the_queue_is_forgotten(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1)
        s.on_request(2, B, now=2)
        s.on_cancelled(2, now=3)
        assert s.queued() == 0
        assert s.on_finished(1, now=4) == []  # no swap for nobody

    def test_retry_after_uses_the_measured_start_time(self) -> None:
        s = scheduler(queue_cap=1)
        s.on_request(1, A, now=0)
        s.on_ready(A, now=42)
        s.on_finished(1, now=43)
        s.on_idle_expired(A, now=2000)
        s.on_stopped(A, now=2001)
        s.on_request(2, A, now=2002)
        [reject] = s.on_request(3, A, now=2012)
        assert isinstance(reject, Reject)
        assert reject.retry_after == 32  # 42 s measured, 10 s already spent


class TestUnitsGoingAway:
    def test_a_model_stopped_by_hand_mid_request_aborts_its_requests(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1)
        assert s.on_stopped(A, now=2, cause="stopped by hand") == [
            AbortInFlight(A, "'a' stopped while answering (stopped by hand)")
        ]


class TestRestartAdoption:
    def test_active_units_are_adopted_and_probed(self) -> None:
        s = scheduler()
        assert s.adopt([A, U], now=0) == [AwaitHealthy(A), AwaitHealthy(U)]
        assert s.on_ready(A, now=1) == [Ready(A, None), ArmIdleTimer(A, 1200)]

    def test_a_second_active_main_model_is_stopped_not_adopted(self) -> None:
        s = scheduler()
        effects = s.adopt([A, B], now=0)
        assert effects == [AwaitHealthy(A), StopUnit(B, "extra tenant")]
