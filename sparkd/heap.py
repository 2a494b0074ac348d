"""Giving freed heap memory back to the system once a burst of work is over.

glibc keeps memory that Python freed inside its arenas, so a daemon that
answered thousands of requests at once stays as large as it was at the peak
long after. `malloc_trim(0)` returns those pages. It costs a few milliseconds
with the heap walked once, so it runs once per quiet spell, not per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QUIET_BEFORE_TRIM = 2.0  # seconds without work after a busy spell


def _trim() -> bool:
    """malloc_trim(0) where libc is glibc; False where it is not (musl has none)."""
    # ctypes costs a megabyte of its own: loaded at the first trim, not at every start. The
    # process's own symbols include libc's (no library search, which would run ldconfig).
    import ctypes

    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


@dataclass
class TrimWhenQuiet:
    """Decides when to trim: busy at some tick, then quiet for `quiet` seconds."""

    quiet: float = QUIET_BEFORE_TRIM
    _last_busy: float | None = field(default=None, init=False)

    def due(self, busy: bool, now: float) -> bool:
        if busy:
            self._last_busy = now
            return False
        if self._last_busy is not None and now - self._last_busy >= self.quiet:
            self._last_busy = None
            return True
        return False


def release_free_memory() -> None:
    """Collect the cycles a burst left in the older generations (which Python walks rarely), then
    hand the freed pages back."""
    import gc

    gc.collect()
    _trim()
