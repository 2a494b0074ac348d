"""python -m bench.schedule: every policy on every trace, per profile; writes docs/scheduling.md.

The report is written only once every replay has run and kept the invariants (nothing lost,
never two tenants); the targets are checked on the figures of this same run.
"""

from __future__ import annotations

import sys
import time

from bench.schedule.profile import load_profile
from bench.schedule.replay import replay
from bench.schedule.report import Run, Target, write
from bench.schedule.scenarios import DEFAULT, FIFO, POLICIES, PROFILES, TRACES
from bench.schedule.sim import Simulation
from bench.schedule.trace import TRACES as TRACE_DIR
from bench.schedule.trace import read_trace


def run_all() -> Run:
    run = Run()
    for profile_name in PROFILES:
        profile = load_profile(profile_name)
        for trace in TRACES:
            steps = read_trace(TRACE_DIR / f"{trace}.csv")
            run.requests[trace] = len(steps)
            for policy, options in POLICIES.items():
                began = time.monotonic()
                outcome = replay(Simulation(profile, **options), steps)  # type: ignore[arg-type]
                run.seconds[profile_name, trace, policy] = time.monotonic() - began
                if outcome.unanswered or outcome.machine.two_tenants:
                    raise AssertionError(f"{profile_name}/{trace}/{policy}: {outcome.summary()}")
                run.outcomes[profile_name, trace, policy] = outcome
    return run


def targets(run: Run) -> list[Target]:
    ours = run.outcomes["spark", "two-agents", DEFAULT].summary()
    fifo = run.outcomes["spark", "two-agents", FIFO].summary()
    fewer = 1 - ours["starts"] / fifo["starts"]
    sparkd = [(key, o) for key, o in run.outcomes.items() if key[2].startswith("sparkd")]
    past = sum(o.over_deadline for _, o in sparkd)
    slowest = max(run.seconds.values())
    return [
        Target(
            "two agents, Spark: at least 40% fewer GPU starts than plain FIFO",
            f"{ours['starts']:,.0f} against {fifo['starts']:,.0f}: {fewer:.0%} fewer",
            fewer >= 0.4,
        ),
        Target(
            "two agents, Spark: p95 wait no worse than plain FIFO's",
            f"{ours['wait_p95_s']:.1f} s against {fifo['wait_p95_s']:.1f} s",
            ours["wait_p95_s"] <= fifo["wait_p95_s"],
        ),
        Target(
            "no client waits past its deadline (sparkd's policies, every trace)",
            f"{past} requests past their deadline",
            past == 0,
        ),
        Target(
            "no request lost, never two tenants (every trace, every policy)", "none lost, never two", True
        ),
        Target("a 24-hour trace replays in under 10 s", f"slowest replay {slowest:.2f} s", slowest < 10),
    ]


def main() -> int:
    run = run_all()
    checked = targets(run)
    write(run, PROFILES, TRACES, list(POLICIES), checked)
    for target in checked:
        print(f"{'met   ' if target.met else 'MISSED'} {target.what}: {target.measured}")
    print("wrote docs/scheduling.md and docs/scheduling/two-agents.svg")
    return 0 if all(t.met for t in checked) else 1


if __name__ == "__main__":
    sys.exit(main())
