"""The scheduler's rules, driven event by event: no loop, no sleeps, no systemd."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sparkd.catalogue import Role
from sparkd.effects import (
    AbortInFlight,
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
    WakeAfter,
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
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(EVENTS, st.booleans())
def test_never_two_tenants_whatever_happens(events: list[tuple[str, object]], keep_warm: bool) -> None:
    """Any sequence of events: a main model's unit starts only when no other main unit is up.

    A unit is up from the moment systemd is asked to start it (SubmitStart,
    after its memory was measured) until it is reported stopped or failed.
    """
    s = scheduler(keep_warm=keep_warm)
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
