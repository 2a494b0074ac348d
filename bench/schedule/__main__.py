"""python -m bench.schedule: replay the seeded traces under each policy and print what clients got.

A first cut of issue 19's simulator: the real Scheduler, a virtual clock, engines from
bench/schedule/scenarios.py. Policies: sparkd's (queue, drain, then swap) and the original
stack's (429 while another model is the tenant).
"""

from __future__ import annotations

import time

from bench.schedule.agents import run_agents, two_agents_closed
from bench.schedule.scenarios import POLICIES, SPARK, TRACES
from bench.schedule.sim import Simulation


def main() -> int:
    columns = (
        "served",
        "refused",
        "lost",
        "ttfb_mean_s",
        "ttfb_p95_s",
        "ttfb_max_s",
        "starts",
        "loading_share",
    )
    for trace_name, make in TRACES.items():
        trace = make()
        print(f"\n{trace_name}: {len(trace)} requests")
        print(f"  {'policy':28}" + "".join(f"{c:>14}" for c in columns) + f"{'replay (s)':>12}")
        for policy, options in POLICIES.items():
            began = time.monotonic()
            outcome = Simulation(SPARK, **options).replay(trace)  # type: ignore[arg-type]
            took = time.monotonic() - began
            summary = outcome.summary()
            assert outcome.two_tenants == 0 and outcome.lost == 0
            print(f"  {policy:28}" + "".join(f"{summary[c]:>14.2f}" for c in columns) + f"{took:>12.2f}")
    # Agents that wait for each answer before the next request (closed loop), as coding agents do.
    print("\ntwo closed-loop agents on two models, 24 h")
    print(f"  {'policy':28}" + "".join(f"{c:>14}" for c in columns) + f"{'replay (s)':>12}")
    for policy, options in POLICIES.items():
        began = time.monotonic()
        outcome = run_agents(Simulation(SPARK, **options), two_agents_closed())  # type: ignore[arg-type]
        took = time.monotonic() - began
        summary = outcome.summary()
        assert outcome.two_tenants == 0 and outcome.lost == 0
        print(f"  {policy:28}" + "".join(f"{summary[c]:>14.2f}" for c in columns) + f"{took:>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
