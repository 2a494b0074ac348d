"""python -m bench.schedule: replay the seeded traces under each policy and print what clients got.

A first cut of issue 19's simulator: the real Scheduler, a virtual clock, engines from
the profile below. Policies: sparkd's (queue, drain, then swap) and the original
stack's (429 while another model is the tenant).
"""

from __future__ import annotations

import time

from bench.schedule.sim import EngineProfile, Simulation
from bench.schedule.traces import one_agent, two_agents

# A DGX Spark with two large main models: start times of the order the original stack's docs
# give for vLLM with compile and CUDA graphs (minutes), service times of an agent's turn.
SPARK = {
    "coder": EngineProfile(start=120.0, stop=10.0, service=3.0),
    "reasoner": EngineProfile(start=180.0, stop=10.0, service=6.0),
}
POLICIES = {"sparkd": {}, "original (429 when busy)": {"refuse_when_busy": True}}
TRACES = {"one agent, 24 h": one_agent, "two agents on two models, 24 h": two_agents}


def main() -> int:
    columns = (
        "served",
        "refused",
        "lost",
        "ttfb_mean_s",
        "ttfb_p95_s",
        "ttfb_max_s",
        "swaps",
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
