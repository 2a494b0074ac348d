"""Closed-loop clients: an agent sends its next request only once the last one is answered.

That is how coding agents work (a tool-calling loop), and it changes what a policy
does to them: an agent that waits for a swap sends nothing meanwhile, so a burst
cannot pile up behind a start. A refused request (the original stack's 429) is
sent again after a short while, as clients retry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bench.schedule.sim import Arrival, Outcome, Simulation

RETRY = 30.0  # seconds a refused client waits before it asks again


@dataclass
class Agent:
    client: str
    model: str
    seed: int
    hours: float = 24.0
    burst: int = 8  # requests in a burst, on average
    gap: float = 4.0  # seconds between an answer and the next request (the agent's own work)
    think: float = 120.0  # mean seconds between bursts
    _rng: random.Random = field(init=False)
    _left: int = field(default=0, init=False)
    _sim: Simulation | None = field(default=None, init=False)

    def start(self, sim: Simulation) -> None:
        self._rng = random.Random(self.seed)
        self._sim = sim
        self._burst(self._rng.uniform(0, self.think))

    def _burst(self, at: float) -> None:
        if at < self.hours * 3600:
            self._left = self._rng.randint(max(1, self.burst // 2), self.burst * 2)
            self._send(at)

    def _send(self, at: float) -> None:
        assert self._sim is not None
        self._sim.submit(Arrival(at, self.model, self.client), then=self._heard)

    def _heard(self, answered: bool) -> None:
        assert self._sim is not None
        now = self._sim.now
        if not answered:
            self._send(now + RETRY)
            return
        self._left -= 1
        if self._left > 0:
            self._send(now + self._rng.expovariate(1 / self.gap))
        else:
            self._burst(now + self._rng.expovariate(1 / self.think))


def run_agents(sim: Simulation, agents: list[Agent]) -> Outcome:
    for agent in agents:
        agent.start(sim)
    return sim.run()


def two_agents_closed(hours: float = 24.0) -> list[Agent]:
    return [Agent("agent-1", "coder", seed=2, hours=hours), Agent("agent-2", "reasoner", seed=3, hours=hours)]
