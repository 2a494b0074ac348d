"""The seeded generators behind bench/schedule/traces/*.csv.

`python -m bench.schedule.generate` writes the files; a test checks that the
committed files are what these generators make, so a trace never drifts from
the description here. Model names are the profiles' (coder, reasoner, util, big).

An agent works in bursts: a tool-calling loop of turns, each sent a few seconds
after the last answer (the agent's own work: reading files, running a command),
then a think time (its person reads, or it waits for the next task).
"""

from __future__ import annotations

import random

from bench.schedule.trace import TRACES, Step, write_trace

DAY = 24 * 3600.0


def agent(
    client: str,
    model: str,
    seed: int,
    hours: float = 24.0,
    burst: int = 8,
    gap: float = 4.0,
    think: float = 120.0,
) -> list[Step]:
    """Bursts of about `burst` turns (half to twice that), `gap` seconds on average after each answer,
    with `think` seconds on average between bursts, until the delays add up to `hours`."""
    rng = random.Random(seed)
    steps: list[Step] = []
    spent = 0.0
    while spent < hours * 3600:
        for turn in range(rng.randint(max(1, burst // 2), burst * 2)):
            if turn:
                delay = rng.expovariate(1 / gap)
            else:  # a burst begins: the first one at some moment of the first think time
                delay = rng.expovariate(1 / think) if steps else rng.uniform(0, think)
            steps.append(Step(client, model, "answer", delay))
            spent += delay
    return steps


def steady(client: str, model: str, seed: int, every: float, hours: float = 24.0) -> list[Step]:
    """A load that does not wait for answers: one request every `every` seconds on average."""
    rng = random.Random(seed)
    steps, spent = [], 0.0
    while spent < hours * 3600:
        delay = rng.expovariate(1 / every)
        steps.append(Step(client, model, "send", delay))
        spent += delay
    return steps


def one_agent() -> list[Step]:
    """The baseline: one coding agent on one model all day."""
    return agent("agent-1", "coder", seed=1)


def two_agents() -> list[Step]:
    """Two coding agents, each on a different main model: the case that makes a GPU thrash."""
    return agent("agent-1", "coder", seed=2) + agent("agent-2", "reasoner", seed=3)


def chat_and_utility() -> list[Step]:
    """A person chatting now and then on a main model (short sessions, reading between turns), and a
    utility load beside it (titles, summaries, embeddings) that never needs the GPU's turn."""
    person = agent("person", "coder", seed=4, burst=3, gap=45.0, think=1800.0)
    return person + steady("background", "util", seed=5, every=20.0)


def exclusive_midday() -> list[Step]:
    """The two agents, and at midday someone runs a batch job of 40 requests on the model that needs
    the whole GPU (each sent a few seconds after the last answer)."""
    rng = random.Random(6)
    job = [Step("batch-job", "big", "answer", 12 * 3600.0)]
    job += [Step("batch-job", "big", "answer", rng.uniform(1, 5)) for _ in range(39)]
    return two_agents() + job


def herd_after_idle() -> list[Step]:
    """A short session at the start, then nothing for an hour (the model idles out), then fifty
    clients ask within two seconds: the herd must share one start."""
    rng = random.Random(7)
    session = agent("early", "coder", seed=8, hours=0.05)
    herd = [Step(f"client-{i}", "coder", "answer", 3600 + rng.uniform(0, 2)) for i in range(50)]
    return session + herd


GENERATORS = {
    "one-agent": one_agent,
    "two-agents": two_agents,
    "chat-and-utility": chat_and_utility,
    "exclusive-midday": exclusive_midday,
    "herd-after-idle": herd_after_idle,
}


def main() -> int:
    TRACES.mkdir(exist_ok=True)
    for name, make in GENERATORS.items():
        write_trace(TRACES / f"{name}.csv", make())
        print(f"wrote {TRACES / name}.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
