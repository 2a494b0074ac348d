"""Clients that replay a trace in a `Simulation`, and what they got: each client sends its steps
in order, each when its delay after the previous answer (or send) is over, and sends a refused
request again after RETRY seconds, as clients retry a 429 or a 503."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from bench.schedule.sim import Machine, Request, Simulation
from bench.schedule.trace import Step

RETRY = 30.0  # seconds a refused client waits before it asks again


@dataclass
class Outcome:
    """What the clients got over one replay, and what the GPU did meanwhile."""

    machine: Machine
    waits: list[float] = field(default_factory=list)  # each request: first send to grant, retries included
    longest_by_client: dict[str, float] = field(default_factory=dict)
    over_deadline: int = 0  # requests that waited longer than sparkd's deadline for their model
    unanswered: int = 0  # requests never answered: must stay 0
    last_answer: float = 0.0  # when the clients' work was done

    def summary(self) -> dict[str, float]:
        waits = sorted(self.waits) or [0.0]
        span = self.machine.span
        return {
            "served": float(len(self.waits)),
            "refused": float(self.machine.refusals),
            "lost": float(self.unanswered),
            "wait_mean_s": statistics.fmean(waits),
            "wait_p95_s": waits[min(len(waits) - 1, int(0.95 * len(waits)))],
            "wait_max_s": waits[-1],
            "over_deadline": float(self.over_deadline),
            "starts": float(self.machine.starts),
            "loading_share": self.machine.loading_seconds / span if span else 0.0,
            "hours": self.last_answer / 3600,
        }


@dataclass
class _Client:
    name: str
    steps: list[Step]
    sim: Simulation
    outcome: Outcome
    _next: int = 0

    def begin(self) -> None:
        self._schedule(0.0)

    def _schedule(self, base: float) -> None:
        if self._next < len(self.steps):
            step = self.steps[self._next]
            self._next += 1
            self.sim.at(base + step.delay, lambda: self._send(step, self.sim.now))

    def _send(self, step: Step, first_sent: float, retry: bool = False) -> None:
        sim = self.sim
        if not retry and self._next < len(self.steps) and self.steps[self._next].after == "send":
            self._schedule(sim.now)

        def granted(now: float) -> None:
            wait = now - first_sent
            self.outcome.waits.append(wait)
            longest = self.outcome.longest_by_client
            longest[self.name] = max(longest.get(self.name, 0.0), wait)
            if wait > sim.deadline(step.model):
                self.outcome.over_deadline += 1

        def answered(now: float) -> None:
            self.outcome.last_answer = max(self.outcome.last_answer, now)
            if self._next < len(self.steps) and self.steps[self._next].after == "answer":
                self._schedule(now)

        def refused(now: float) -> None:
            sim.at(now + RETRY, lambda: self._send(step, first_sent, retry=True))

        sim.submit(sim.now, Request(step.model, granted, answered, refused))


def replay(sim: Simulation, steps: list[Step]) -> Outcome:
    """Every client of `steps` replayed in `sim` until all have been answered."""
    by_client: dict[str, list[Step]] = defaultdict(list)
    for step in steps:
        by_client[step.client].append(step)
    outcome = Outcome(Machine())
    for name, own in by_client.items():
        _Client(name, own, sim, outcome).begin()
    outcome.machine = sim.run()
    outcome.unanswered = len(steps) - len(outcome.waits) + sim.in_progress()
    return outcome
