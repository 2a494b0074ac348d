"""The scheduling simulation replays traffic through the real Scheduler: clients behave as the trace
says, nothing is lost, never two tenants, and sparkd's default policy meets issue 19's targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.schedule.__main__ import run_all, targets
from bench.schedule.generate import GENERATORS
from bench.schedule.profile import EngineProfile, load_profile
from bench.schedule.replay import RETRY, replay
from bench.schedule.report import Run
from bench.schedule.scenarios import POLICIES
from bench.schedule.sim import Simulation
from bench.schedule.trace import TRACES, Step, read_trace, write_trace

PROFILES = {
    "coder": EngineProfile(start=120.0, stop=10.0, service=3.0),
    "reasoner": EngineProfile(start=180.0, stop=10.0, service=6.0),
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_the_committed_traces_are_what_their_generators_make(name: str, tmp_path: Path) -> None:
    write_trace(tmp_path / "made.csv", GENERATORS[name]())
    assert (TRACES / f"{name}.csv").read_text() == (tmp_path / "made.csv").read_text()


def test_every_profile_number_says_where_it_comes_from(tmp_path: Path) -> None:
    for name in ("spark", "cpu-demo"):
        assert all(profile.source for profile in load_profile(name).values())


def test_a_trace_step_must_say_after_what_its_delay_runs(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("client,model,after,delay\na,coder,whenever,1\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: after must be answer or send"):
        read_trace(path)


def test_an_agent_sends_its_next_step_only_once_it_has_its_answer() -> None:
    # The first request waits for coder's start (120 s) and takes 3 s: the next goes 2 s after that.
    steps = [Step("a", "coder", "answer", 0.0), Step("a", "coder", "answer", 2.0)]
    outcome = replay(Simulation(PROFILES), steps)
    assert outcome.waits == [120.0, 0.0]
    assert outcome.last_answer == pytest.approx(120 + 3 + 2 + 3)


def test_a_load_that_does_not_wait_sends_on_its_own_clock() -> None:
    steps = [Step("bg", "coder", "send", 0.0), Step("bg", "coder", "send", 2.0)]
    outcome = replay(Simulation(PROFILES), steps)
    assert outcome.waits == [120.0, 118.0]  # both waited for the one start


def test_a_refused_request_is_sent_again_and_its_wait_counts_from_the_first_try() -> None:
    # The original stack: reasoner is refused while coder holds the GPU, until coder idles out.
    steps = [Step("a", "coder", "answer", 0.0), Step("b", "reasoner", "answer", 130.0)]
    outcome = replay(Simulation(PROFILES, refuse_when_busy=True), steps)
    idle_stop = 123 + 1200 + 10  # coder answered at 123, idled 1200 s, stopped in 10
    retries = -(-(idle_stop - 130) // RETRY)  # the first try at or after coder was gone
    assert outcome.machine.refusals == retries
    assert outcome.waits[1] == pytest.approx(130 + retries * RETRY + 180 - 130)
    assert outcome.unanswered == 0


@pytest.fixture(scope="module")
def run() -> Run:
    return run_all()  # raises on a lost request or a moment with two tenants


def test_every_policy_on_every_trace_and_profile_loses_nothing_and_never_has_two_tenants(run: Run) -> None:
    assert len(run.outcomes) == 2 * len(GENERATORS) * len(POLICIES)


def test_the_default_policy_meets_the_targets_on_two_agents(run: Run) -> None:
    checked = [t for t in targets(run) if "replays in" not in t.what]  # wall time: the bench's
    assert [t.what for t in checked if not t.met] == []
