"""Unified memory: what the kernel says is available, and when it has stopped changing.

On GB10 the GPU and CPU share one pool, and a stopped engine's memory comes
back over a few seconds. Before an exclusive model starts, sparkd waits until
`MemAvailable` settles (bounded) instead of sleeping a fixed 15 s as the
original stack did.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

MEMINFO = Path("/proc/meminfo")


def mem_available(meminfo: Path = MEMINFO) -> int:
    """Bytes the kernel can hand out without swapping."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"{meminfo} has no MemAvailable")


def has_settled(samples: Sequence[int], tolerance: float = 0.01) -> bool:
    """True once the last two samples differ by less than `tolerance` of the larger."""
    if len(samples) < 2:
        return False
    before, now = samples[-2], samples[-1]
    return abs(now - before) <= tolerance * max(before, now, 1)
