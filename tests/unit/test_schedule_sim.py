"""The scheduling simulation replays traffic through the real Scheduler: nothing lost, never two tenants."""

from __future__ import annotations

import pytest

from bench.schedule.scenarios import POLICIES, SPARK, TRACES
from bench.schedule.sim import Arrival, EngineProfile, Simulation
from bench.schedule.traces import one_agent, two_agents

PROFILES = {
    "coder": EngineProfile(start=120.0, stop=10.0, service=3.0),
    "reasoner": EngineProfile(start=180.0, stop=10.0, service=6.0),
}


def test_one_agent_on_one_model_starts_it_once_and_is_served_in_full() -> None:
    trace = one_agent(hours=2)
    outcome = Simulation(PROFILES).replay(trace)
    assert (outcome.lost, outcome.refused, outcome.two_tenants) == (0, 0, 0)
    assert len(outcome.waits) == len(trace)
    assert outcome.starts >= 1 and max(outcome.waits) >= 120.0  # the first request waited for the start


def test_two_agents_on_two_models_swap_but_lose_nothing_and_never_share_the_gpu() -> None:
    trace = two_agents(hours=24)
    outcome = Simulation(PROFILES).replay(trace)
    assert (outcome.lost, outcome.refused, outcome.two_tenants) == (0, 0, 0)
    assert outcome.starts > 2
    summary = outcome.summary()
    assert summary["served"] == len(trace) and 0 < summary["loading_share"] < 1


def test_the_original_stacks_policy_refuses_until_the_other_model_idles_out() -> None:
    # coder is ready at 120 s and idle-stops 1200 s after its answer; reasoner is refused until then.
    trace = [Arrival(0.0, "coder", "a"), Arrival(1.0, "reasoner", "b"), Arrival(500.0, "reasoner", "b")]
    trace.append(Arrival(2000.0, "reasoner", "b"))
    outcome = Simulation(PROFILES, refuse_when_busy=True).replay(trace)
    assert (outcome.refused, len(outcome.waits), outcome.lost) == (2, 2, 0)


@pytest.mark.parametrize("trace", list(TRACES), ids=str)
@pytest.mark.parametrize("policy", list(POLICIES), ids=str)
def test_every_scenario_under_every_policy_loses_nothing_and_never_has_two_tenants(
    trace: str, policy: str
) -> None:
    outcome = Simulation(SPARK, **POLICIES[policy]).replay(TRACES[trace]())  # type: ignore[arg-type]
    assert (outcome.lost, outcome.two_tenants) == (0, 0)
    assert len(outcome.waits) + outcome.refused == len(TRACES[trace]())


def test_closed_loop_agents_wait_for_each_answer_and_a_swap_hold_serves_them_more() -> None:
    from bench.schedule.agents import run_agents, two_agents_closed

    drained = run_agents(Simulation(SPARK), two_agents_closed(hours=6))
    held = run_agents(Simulation(SPARK, swap_hold=300.0), two_agents_closed(hours=6))
    for outcome in (drained, held):
        assert (outcome.lost, outcome.two_tenants, outcome.refused) == (0, 0, 0)
    # Drain-then-swap swaps for nearly every request of two alternating agents; the hold does not.
    assert len(held.waits) > 2 * len(drained.waits)
    assert held.starts < drained.starts
