"""What the scheduler asks the run loop to do: its effects, as plain values.

`sparkd.scheduler` returns lists of these; `sparkd.runtime` carries them out
(D-Bus calls, futures, timers) and feeds what comes back in as new events.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StartUnit:
    """The model starts: measure memory (settled first for an exclusive model), then `on_start_memory`."""

    model: str
    attempt: int = field(default=0, compare=False)  # which start this is, to drop answers to older ones


@dataclass(frozen=True, slots=True)
class SubmitStart:
    """Memory allows it: ask systemd for the start job, then `on_start_job` (or `on_start_refused`)."""

    model: str
    attempt: int
    available: int  # bytes available when the start was asked: the baseline of the model's need
    # Drop clean page cache first (sparkd-drop-caches.service): the model fits what is
    # available but not what is free, and vLLM's start check counts free memory.
    drop_page_cache: bool = False


@dataclass(frozen=True, slots=True)
class StopUnit:
    model: str
    reason: str  # "swap", "idle", "exclusive", "manual", "extra tenant", "unhealthy", "engine unreachable"


@dataclass(frozen=True, slots=True)
class Grant:
    request: int
    model: str
    waited: float  # seconds in the queue
    cold: bool  # the request waited for a start


@dataclass(frozen=True, slots=True)
class Reject:
    request: int
    model: str
    status: int  # 429 queue full, 503 deadline or start failure
    code: str
    message: str
    retry_after: float
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class WatchDeadline:
    """Call `on_deadline(request)` after `seconds` unless the request was granted."""

    request: int
    seconds: float


@dataclass(frozen=True, slots=True)
class ArmIdleTimer:
    model: str
    seconds: float


@dataclass(frozen=True, slots=True)
class DisarmIdleTimer:
    model: str


@dataclass(frozen=True, slots=True)
class WakeAfter:
    """Call `on_wake()` after `seconds` (retry a backed-off utility start)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class AwaitHealthy:
    """The unit is active: probe its engine's health route, then `on_ready` (or `on_health_timeout`)."""

    model: str


@dataclass(frozen=True, slots=True)
class DiagnoseFailedStart:
    """The start failed: add systemd's unit result and last log lines to `cause`, then `on_start_failed`."""

    model: str
    cause: str
    unit_up: bool  # the unit still runs (an engine that never became healthy)


@dataclass(frozen=True, slots=True)
class Ready:
    """The model answers: say so, count its start time, and clear its unit's start count."""

    model: str
    start_seconds: float | None  # None for an adopted unit, whose start was not seen


@dataclass(frozen=True, slots=True)
class AbortInFlight:
    """The model's unit went away under running requests: end them with an error now."""

    model: str
    cause: str


@dataclass(frozen=True, slots=True)
class PullWeights:
    """Download the model's weights (`sparkd-pull@<id>.service`) before its start goes on."""

    model: str


Effect = (
    StartUnit
    | SubmitStart
    | StopUnit
    | Grant
    | Reject
    | WatchDeadline
    | ArmIdleTimer
    | DisarmIdleTimer
    | WakeAfter
    | AwaitHealthy
    | DiagnoseFailedStart
    | Ready
    | AbortInFlight
    | PullWeights
)
