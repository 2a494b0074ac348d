"""The scheduler's rules, driven event by event: no loop, no sleeps, no systemd."""

from __future__ import annotations

from sparkd.catalogue import Role
from sparkd.effects import (
    ArmIdleTimer,
    AwaitHealthy,
    DiagnoseFailedStart,
    DisarmIdleTimer,
    Effect,
    Grant,
    Ready,
    Reject,
    StartUnit,
    StopUnit,
    SubmitStart,
    WatchDeadline,
)
from sparkd.lifecycle import Phase, Policy
from sparkd.scheduler import Scheduler

A, B, U, X = "a", "b", "util", "excl"


def scheduler(queue_cap: int = 100, keep_warm: bool = False) -> Scheduler:
    main = Policy(Role.MAIN, idle_timeout=1200, min_uptime=30, start_timeout=100)
    return Scheduler(
        {
            A: main,
            B: main,
            U: Policy(Role.UTILITY, idle_timeout=1200, min_uptime=30, start_timeout=100, keep_warm=keep_warm),
            X: Policy(Role.EXCLUSIVE, idle_timeout=1200, min_uptime=30, start_timeout=100),
        },
        queue_cap=queue_cap,
    )


def kinds(effects: list[Effect]) -> list[Effect]:
    """Effects without the deadline watches that every queued request carries."""
    return [e for e in effects if not isinstance(e, WatchDeadline)]


def probing(s: Scheduler, model: str, now: float) -> None:
    """Take a model's start through memory and its start job, as systemd would: its engine is probed."""
    attempt = s.states[model].start_attempt
    assert s.on_start_memory(model, attempt, 100 * 2**30, None, now) == [
        SubmitStart(model, attempt, 100 * 2**30)
    ]
    assert s.on_start_job(model, attempt, "/job/1", now) == []
    assert s.on_job_done(model, "/job/1", "done", now) == [AwaitHealthy(model)]


def ready(s: Scheduler, model: str, now: float = 0.0) -> list[Effect]:
    """Bring `model` from stopped to ready through the events systemd would send."""
    s.on_manual_start(model, now)
    return s.on_ready(model, now)


class TestColdStart:
    def test_a_request_for_a_stopped_model_starts_it_and_waits(self) -> None:
        s = scheduler()
        effects = s.on_request(1, A, now=0)
        assert effects == [WatchDeadline(1, 100 + 600), StartUnit(A)]
        assert s.on_ready(A, now=30) == [Ready(A, 30), Grant(1, A, waited=30, cold=True)]

    def test_concurrent_requests_join_one_start(self) -> None:
        s = scheduler()
        s.on_request(1, A, now=0)
        assert kinds(s.on_request(2, A, now=1)) == []
        assert kinds(s.on_request(3, A, now=2)) == []
        assert s.on_ready(A, now=30) == [
            Ready(A, 30),
            Grant(1, A, waited=30, cold=True),
            Grant(2, A, waited=29, cold=True),
            Grant(3, A, waited=28, cold=True),
        ]

    def test_a_unit_that_fails_to_start_answers_every_waiter_at_once(self) -> None:
        s = scheduler()
        s.on_request(1, A, now=0)
        s.on_request(2, A, now=1)
        effects = s.on_start_failed(A, "exit status 1: CUDA out of memory", now=5)
        assert [(e.request, e.status, e.code) for e in effects if isinstance(e, Reject)] == [
            (1, 503, "model_start_failed"),
            (2, 503, "model_start_failed"),
        ]
        assert all("CUDA out of memory" in e.message for e in effects if isinstance(e, Reject))
        assert s.states[A].phase is Phase.STOPPED

    def test_an_engine_that_never_turns_healthy_is_stopped_and_its_waiters_told(self) -> None:
        s = scheduler()
        s.on_request(1, A, now=0)
        probing(s, A, now=1)
        assert s.on_health_timeout(A, 100, "/health", now=101) == [
            DiagnoseFailedStart(A, "no healthy answer from /health within 100s", unit_up=True)
        ]
        effects = s.on_start_failed(A, "no healthy answer from /health within 100s", now=102, unit_up=True)
        assert [e.code for e in effects if isinstance(e, Reject)] == ["model_start_failed"]
        assert StopUnit(A, "unhealthy") in effects
        assert s.states[A].phase is Phase.STOPPING

    def test_a_unit_that_goes_inactive_while_starting_counts_as_a_failed_start(self) -> None:
        s = scheduler()
        s.on_request(1, A, now=0)
        effects = s.on_stopped(A, now=3, cause="container exited with 127")
        assert [e.code for e in effects if isinstance(e, Reject)] == ["model_start_failed"]


class TestTheHotPath:
    def test_a_ready_model_is_granted_at_once(self) -> None:
        s = scheduler()
        ready(s, A)
        assert s.on_request(1, A, now=40) == [Grant(1, A, waited=0, cold=False)]
        assert s.on_request(2, A, now=41) == [Grant(2, A, waited=0, cold=False)]

    def test_the_idle_timer_is_armed_once_not_per_request(self) -> None:
        s = scheduler()
        assert ready(s, A, now=0) == [Ready(A, 0), ArmIdleTimer(A, 1200)]
        s.on_request(1, A, now=100)
        s.on_request(2, A, now=100)
        assert s.on_finished(1, now=110) == []
        assert s.on_finished(2, now=120) == []  # no D-Bus call on the request path

    def test_a_timer_that_fires_early_is_armed_again_for_the_rest(self) -> None:
        s = scheduler()
        ready(s, A, now=0)
        s.on_request(1, A, now=100)
        s.on_finished(1, now=120)
        assert s.on_idle_expired(A, now=1200) == [ArmIdleTimer(A, 120)]
        assert s.on_idle_expired(A, now=1320) == [StopUnit(A, "idle")]

    def test_a_young_model_is_kept_at_least_its_minimum_uptime(self) -> None:
        s = Scheduler({A: Policy(Role.MAIN, idle_timeout=5, min_uptime=30, start_timeout=100)})
        assert ready(s, A, now=0) == [Ready(A, 0), ArmIdleTimer(A, 30)]
        s.on_request(1, A, now=1)
        assert s.on_finished(1, now=10) == []
        assert s.on_idle_expired(A, now=30) == [StopUnit(A, "idle")]


class TestIdleStop:
    def test_an_expired_timer_stops_an_idle_model(self) -> None:
        s = scheduler()
        ready(s, A)
        assert s.on_idle_expired(A, now=1200) == [StopUnit(A, "idle")]

    def test_a_timer_that_raced_a_request_changes_nothing(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1199)
        assert s.on_idle_expired(A, now=1200) == []
        assert s.states[A].phase is Phase.READY

    def test_a_long_stream_is_never_cut_by_the_idle_stop(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=10)
        assert s.on_idle_expired(A, now=5000) == []

    def test_a_request_during_an_idle_stop_starts_the_model_again(self) -> None:
        # llama-swap #946: a request that saw "stopping" must not wait forever.
        s = scheduler()
        ready(s, A)
        s.on_idle_expired(A, now=1200)
        assert kinds(s.on_request(1, A, now=1201)) == []
        assert s.on_stopped(A, now=1202) == [StartUnit(A)]
        assert s.on_ready(A, now=1230) == [Ready(A, 28), Grant(1, A, waited=29, cold=True)]


class TestManualControl:
    def test_starting_a_model_by_hand_swaps_out_an_idle_tenant(self) -> None:
        s = scheduler()
        ready(s, A)
        assert s.on_manual_start(B, now=5) == [DisarmIdleTimer(A), StopUnit(A, "swap")]
        assert s.on_stopped(A, now=6) == [StartUnit(B)]

    def test_starting_a_model_by_hand_waits_for_a_busy_tenant(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1)
        assert s.on_manual_start(B, now=2) == []
        assert s.on_finished(1, now=3) == [DisarmIdleTimer(A), StopUnit(A, "swap")]
        assert s.on_stopped(A, now=4) == [StartUnit(B)]

    def test_a_model_started_by_hand_while_it_stops_starts_again_once_down(self) -> None:
        s = scheduler()
        ready(s, A)
        assert s.on_manual_stop(A, now=1) == [DisarmIdleTimer(A), StopUnit(A, "manual")]
        assert s.on_manual_start(A, now=2) == []  # its unit is still on its way down
        assert s.on_stopped(A, now=3) == [StartUnit(A)]

    def test_stopping_the_wanted_model_cancels_the_wish(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=1)
        s.on_manual_start(B, now=2)
        s.on_manual_stop(B, now=3)
        assert s.on_finished(1, now=4) == []  # A stays; its idle timer is still armed


class TestKeepWarm:
    def test_a_pinned_model_starts_and_outlasts_its_idle_timeout(self) -> None:
        s = scheduler()
        assert s.on_keep_warm(A, 3600, now=0) == [StartUnit(A)]
        assert s.on_ready(A, now=10) == [Ready(A, 10), ArmIdleTimer(A, 3590)]
        assert s.on_idle_expired(A, now=1210) == [ArmIdleTimer(A, 2390)]
        assert s.on_idle_expired(A, now=3600) == [StopUnit(A, "idle")]


class TestSingleTenancy:
    def test_a_request_for_another_model_swaps_an_idle_tenant(self) -> None:
        s = scheduler()
        ready(s, A)
        assert kinds(s.on_request(1, B, now=50)) == [DisarmIdleTimer(A), StopUnit(A, "swap")]
        assert s.on_stopped(A, now=55) == [StartUnit(B)]
        assert s.on_ready(B, now=80) == [Ready(B, 25), Grant(1, B, waited=30, cold=True)]

    def test_a_busy_tenant_is_never_evicted(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=10)
        assert kinds(s.on_request(2, B, now=11)) == []
        assert s.on_finished(1, now=20) == [DisarmIdleTimer(A), StopUnit(A, "swap")]

    def test_once_b_waits_new_requests_for_a_queue_behind_it(self) -> None:
        s = scheduler()
        ready(s, A)
        s.on_request(1, A, now=10)
        s.on_request(2, B, now=11)
        assert kinds(s.on_request(3, A, now=12)) == []  # not granted: B came first
        s.on_finished(1, now=20)
        s.on_stopped(A, now=21)
        assert [e for e in s.on_ready(B, now=40) if isinstance(e, Grant)] == [
            Grant(2, B, waited=29, cold=True)
        ]
        s.on_finished(2, now=50)
        assert s.on_stopped(B, now=51) == [StartUnit(A)]
        assert s.on_ready(A, now=70) == [Ready(A, 19), Grant(3, A, waited=58, cold=True)]

    def test_an_exclusive_model_waits_for_the_utility_to_be_gone(self) -> None:
        s = scheduler()
        ready(s, U)
        assert kinds(s.on_request(1, X, now=10)) == [DisarmIdleTimer(U), StopUnit(U, "exclusive")]
        assert s.on_stopped(U, now=12) == [StartUnit(X)]

    def test_the_utility_runs_beside_a_main_model(self) -> None:
        s = scheduler()
        ready(s, A)
        assert kinds(s.on_request(1, U, now=5)) == [StartUnit(U)]
        assert s.on_ready(U, now=10) == [Ready(U, 5), Grant(1, U, waited=5, cold=True)]
        assert s.tenant() == A
