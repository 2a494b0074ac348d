"""The scenarios `python -m bench.schedule` replays: a Spark's engines, the policies, the traces."""

from __future__ import annotations

from bench.schedule.sim import EngineProfile
from bench.schedule.traces import (
    chat_and_background,
    exclusive_midday,
    herd_after_idle,
    one_agent,
    two_agents,
)
from sparkd.catalogue import Role

# A DGX Spark with two large main models: start times of the order the original stack's docs
# give for vLLM with compile and CUDA graphs (minutes), service times of an agent's turn.
SPARK = {
    "coder": EngineProfile(start=120.0, stop=10.0, service=3.0),
    "reasoner": EngineProfile(start=180.0, stop=10.0, service=6.0),
    "util": EngineProfile(start=40.0, stop=5.0, service=0.3, role=Role.UTILITY),
    "big": EngineProfile(start=300.0, stop=15.0, service=20.0, role=Role.EXCLUSIVE),
}
POLICIES: dict[str, dict[str, object]] = {
    "sparkd, drain then swap": {},
    "sparkd, swap hold 90 s": {"swap_hold": 90.0},
    "sparkd, swap hold 600 s": {"swap_hold": 600.0},
    "original (429 when busy)": {"refuse_when_busy": True},
}
TRACES = {
    "one agent, 24 h": one_agent,
    "two agents on two models, 24 h": two_agents,
    "chat and a utility load, 24 h": chat_and_background,
    "an exclusive job at midday, 24 h": exclusive_midday,
    "a herd after an idle hour": herd_after_idle,
}
