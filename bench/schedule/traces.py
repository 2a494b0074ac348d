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


def chat_and_background(hours: float = 24.0) -> list[Arrival]:
    """A person chatting now and then on a main model, and a steady utility load beside it
    (titles, summaries, embeddings) that never needs the GPU turn."""
    person = agent("coder", "person", hours, seed=4, burst=2, think=600.0)
    rng = random.Random(5)
    utility, now = [], 0.0
    while now < hours * 3600:
        utility.append(Arrival(now, "util", "background"))
        now += rng.expovariate(1 / 20.0)
    return merged(person, utility)


def exclusive_midday(hours: float = 24.0) -> list[Arrival]:
    """The two agents, and at midday someone runs a job on the model that needs the whole GPU."""
    rng = random.Random(6)
    job = [Arrival(12 * 3600 + i * rng.uniform(1, 5), "big", "batch-job") for i in range(40)]
    return merged(two_agents(hours), job)


def herd_after_idle(hours: float = 2.0) -> list[Arrival]:
    """Nothing for an hour (everything idles out), then fifty clients ask at once."""
    rng = random.Random(7)
    return sorted(
        (Arrival(3600 + rng.uniform(0, 2), "coder", f"client-{i}") for i in range(50)), key=lambda a: a.at
    )
