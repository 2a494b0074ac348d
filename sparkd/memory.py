"""Unified memory: what the kernel says is available, and when it has stopped changing.

On GB10 the GPU and CPU share one pool, and a stopped engine's memory comes
back over a few seconds. Before an exclusive model starts, sparkd waits until
`MemAvailable` settles (bounded) instead of sleeping a fixed 15 s as the
original stack did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

MEMINFO = Path("/proc/meminfo")


def mem_available(meminfo: Path = MEMINFO) -> int:
    """Bytes the kernel can hand out without swapping."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"{meminfo} has no MemAvailable")


def mem_free(meminfo: Path = MEMINFO) -> int:
    """Bytes no one uses at all: not even the page cache (vLLM's start check counts these)."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemFree:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"{meminfo} has no MemFree")


def has_settled(samples: Sequence[int], tolerance: float = 0.01) -> bool:
    """True once the last two samples differ by less than `tolerance` of the larger."""
    if len(samples) < 2:
        return False
    before, now = samples[-2], samples[-1]
    return abs(now - before) <= tolerance * max(before, now, 1)


class MemoryBook:
    """Each model's observed memory need, from MemAvailable before its start and while it runs.

    GB10's NVML reports GPU memory as unsupported and GPU allocations may not
    be charged to the unit's cgroup, so the drop in available memory since
    the model's start is the honest measure of what it needs.
    """

    def __init__(self, peaks: dict[str, int] | None = None) -> None:
        self.peaks: dict[str, int] = dict(peaks or {})
        self._baseline: dict[str, int] = {}

    def start_began(self, model_id: str, available: int) -> None:
        self._baseline[model_id] = available

    def stopped(self, model_id: str) -> None:
        self._baseline.pop(model_id, None)

    def current(self, available: int) -> dict[str, int]:
        """Each running model's need now: what available memory has lost since its start."""
        return {model: max(0, baseline - available) for model, baseline in self._baseline.items()}

    def sample(self, model_id: str, available: int) -> int | None:
        """The model's current need; raises its recorded peak when higher."""
        baseline = self._baseline.get(model_id)
        if baseline is None:
            return None
        need = max(0, baseline - available)
        if need > self.peaks.get(model_id, 0):
            self.peaks[model_id] = need
        return need

    def fits(self, model_id: str, available: int) -> bool:
        return self.peaks.get(model_id, 0) <= available

    def to_json(self) -> str:
        return json.dumps({"peaks": self.peaks}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MemoryBook:
        data = json.loads(text)
        peaks = data.get("peaks", {}) if isinstance(data, dict) else {}
        return cls({str(k): int(v) for k, v in peaks.items() if isinstance(v, int | float)})
