"""Traffic as a file: what each client sends, and when, relative to what it heard back.

A trace is a CSV of steps, one per request, with the columns `client,model,after,delay`:
the request goes to `model`, `delay` seconds after this client's previous request was
answered (`after` = answer: an agent's tool-calling loop, or a person reading) or was
sent (`after` = send: a load that does not wait, like a background job or a herd). A
client's first step counts from the start of the trace. So the file records the
clients' own behaviour, and the replay decides the arrival times: an agent that waits
for a swap sends nothing meanwhile, as a real one would.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TRACES = Path(__file__).parent / "traces"
COLUMNS = ("client", "model", "after", "delay")


@dataclass(frozen=True)
class Step:
    client: str
    model: str
    after: Literal["answer", "send"]
    delay: float


def write_trace(path: Path, steps: list[Step]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for step in steps:
            writer.writerow((step.client, step.model, step.after, f"{step.delay:.2f}"))


def read_trace(path: Path) -> list[Step]:
    with path.open(newline="") as source:
        rows = list(csv.DictReader(source))
    steps = []
    for line, row in enumerate(rows, start=2):
        if row["after"] not in ("answer", "send"):
            raise ValueError(f"{path}:{line}: after must be answer or send, not {row['after']!r}")
        steps.append(Step(row["client"], row["model"], row["after"], float(row["delay"])))  # type: ignore[arg-type]
    return steps
