"""A download's progress as every reader shows it: the terminal, `sparkd status`, a waiting client.

`sparkd pull` writes it to a small file (`/run/sparkd/pulls/<model>.json`);
the daemon reads that file, so this module imports nothing heavy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """A pull's progress at one moment, as every reader shows it."""

    done: int
    total: int
    rate: float  # bytes per second, over the last few seconds
    finished: bool = False
    error: str | None = None

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None

    def line(self) -> str:
        """`downloading 12.3 of 60.1 GB, 95 MB/s, 8m left`."""
        text = f"downloading {self.done / 1e9:.1f} of {self.total / 1e9:.1f} GB"
        if self.rate > 0:
            text += f", {self.rate / 1e6:.0f} MB/s"
        if self.eta is not None:
            text += f", {_duration(self.eta)} left"
        return text

    def to_json(self) -> str:
        return json.dumps(
            {
                "done": self.done,
                "total": self.total,
                "rate": self.rate,
                "finished": self.finished,
                "error": self.error,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Progress:
        data = json.loads(text)
        return cls(
            int(data["done"]), int(data["total"]), float(data["rate"]), bool(data["finished"]), data["error"]
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@dataclass
class RateMeter:
    """Bytes per second over a sliding window of samples."""

    window: float = 5.0
    _samples: list[tuple[float, int]] | None = None

    def add(self, now: float, done: int) -> float:
        samples = self._samples = [*(self._samples or []), (now, done)]
        while len(samples) > 2 and now - samples[0][0] > self.window:
            samples.pop(0)
        first_time, first_done = samples[0]
        return (done - first_done) / (now - first_time) if now > first_time else 0.0
