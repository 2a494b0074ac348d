"""Seeded traffic for the simulation: agents that work in bursts and think in between.

An agent sends a burst of requests to its model (a tool-calling loop: each next
request once the last is answered is approximated by a short gap), then thinks
(or its person does) for a while. Seeds make every trace the same on every run.
"""

from __future__ import annotations

import random

from bench.schedule.sim import Arrival


def agent(
    model: str, client: str, hours: float, seed: int, burst: int = 8, think: float = 120.0
) -> list[Arrival]:
    """One agent on one model: bursts of `burst` requests a few seconds apart, then a think time."""
    rng = random.Random(seed)
    arrivals, now, end = [], rng.uniform(0, think), hours * 3600
    while now < end:
        for _ in range(rng.randint(max(1, burst // 2), burst * 2)):
            arrivals.append(Arrival(now, model, client))
            now += rng.expovariate(1 / 4.0)
        now += rng.expovariate(1 / think)
    return arrivals


def merged(*traces: list[Arrival]) -> list[Arrival]:
    return sorted((a for trace in traces for a in trace), key=lambda a: a.at)


def one_agent(hours: float = 24.0) -> list[Arrival]:
    return agent("coder", "agent-1", hours, seed=1)


def two_agents(hours: float = 24.0) -> list[Arrival]:
    """Two coding agents, each on a different main model: the case that makes a GPU thrash."""
    return merged(agent("coder", "agent-1", hours, seed=2), agent("reasoner", "agent-2", hours, seed=3))
