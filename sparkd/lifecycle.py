"""A model's lifecycle as the scheduler keeps it: phases, start steps, policy, and the view others read.

Only `sparkd.scheduler` writes a `ModelState`; everything else (status,
metrics, the status line, the proxy's progress lines) reads a `ModelView`,
a frozen copy made on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sparkd.catalogue import Model, Role

DEFAULT_START_ESTIMATE = 60.0  # seconds, until a model's first start has been measured
KEPT_WARM_BACKOFF = (10.0, 30.0, 120.0, 600.0)  # after 1, 2, 3, 4+ failed starts in a row
# A model whose starts failed this many times in a row is not started again
# for a while (doubling from a minute up to ten): requests get a 503 at once
# instead of each one paying for a start that will fail.
CRASH_LOOP_AFTER = 3
CRASH_LOOP_BACKOFF = (60.0, 600.0)


class Phase(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"


class StartStep(StrEnum):
    """Where a STARTING model's start is; it decides what a unit-state signal means.

    Until the start job has ended, the unit's own states are not news: it
    passes through inactive while it loads, and signals about the unit's
    previous run (a crash, the stop that followed) may still be on their
    way. The job's result decides. After the job, the unit is active, and
    leaving that is the new engine's failure.
    """

    CHECKING = "checking memory"  # StartUnit decided; the runtime measures memory
    PULLING = "downloading weights"  # its weights were never pulled: sparkd-pull@<id> runs
    ASKED = "asked systemd"  # StartUnit sent; its job not yet known
    JOB = "start job running"
    PROBING = "waiting for health"  # the unit is active; its engine's health route decides
    JOINING = "waiting for the worker half"  # split: healthy here, its half on the peer not yet running
    FAILING = "failing"  # the start failed; its cause is being gathered


@dataclass(frozen=True)
class Policy:
    """The part of a catalogue model that scheduling needs."""

    role: Role
    idle_timeout: float
    min_uptime: float
    start_timeout: float
    keep_warm: bool = False
    # Across two Sparks: its worker half runs on the peer, for as long as this half starts or runs.
    split: bool = False
    # The worker half of a model another Spark serves: ready once its unit runs (it serves
    # nothing), held by that Spark's lease (a request in flight), stopped when the lease ends.
    worker: bool = False

    @classmethod
    def of(cls, model: Model, host_has_gpu: bool = True) -> Policy:
        # A GPU model is never kept warm on a machine without a GPU: it
        # could only fail to start, again and again.
        keep_warm = model.keep_warm and (host_has_gpu or not model.gpu)
        split = model.nodes > 1
        return cls(model.role, model.idle_timeout, model.min_uptime, model.start_timeout, keep_warm, split)

    @classmethod
    def worker_half(cls, model: Model) -> Policy:
        return cls(model.role, 0.0, 0.0, model.start_timeout, worker=True)

    @property
    def holds_gpu(self) -> bool:
        return self.role is not Role.UTILITY


@dataclass
class ModelState:
    phase: Phase = Phase.STOPPED
    in_flight: set[int] = field(default_factory=set)
    since: float = 0.0  # when the phase began
    ready_at: float | None = None
    last_done: float | None = None
    start_requested: float | None = None
    start_durations: list[float] = field(default_factory=list)
    failures_in_a_row: int = 0
    retry_at: float = 0.0  # no start before this (keep-warm retries, crash-loop back-off)
    idle_timer_armed: bool = False
    warm_until: float = 0.0  # `sparkd keep-warm`: no idle stop before this
    last_failure: str | None = None
    start_step: StartStep | None = None  # while STARTING
    start_attempt: int = 0  # counts starts, so answers about an older one are dropped
    start_job: str | None = None  # systemd's job path for the current start
    # A job's end can be signalled before the StartUnit reply reaches the
    # loop (the two travel separately); such ends wait here to be claimed.
    early_job_results: dict[str, str] = field(default_factory=dict)
    # Split across two Sparks: since when the Spark holding its worker half has someone waiting
    # for its GPU (that Spark's lease says so); None while nobody does.
    peer_waits_since: float | None = None
    worker_joined: bool = False  # split: the peer said its worker half runs, for this start

    def start_estimate(self) -> float:
        """Seconds a start takes: the longest of the last three measured, or a default."""
        return max(self.start_durations[-3:]) if self.start_durations else DEFAULT_START_ESTIMATE


@dataclass(frozen=True)
class Waiter:
    request: int
    model: str
    since: float


@dataclass(frozen=True)
class ModelView:
    """One model as the scheduler sees it at `now`: what status pages, metrics and progress lines read."""

    id: str
    role: Role
    phase: Phase
    since: float
    start_step: StartStep | None
    in_flight: int
    queued: int
    idle_seconds: float | None  # since its last answer, when nothing runs
    idle_stop_in: float | None  # seconds until an idle stop, when one is due
    start_estimate: float
    last_start_seconds: float | None
    last_failure: str | None
    keep_warm: bool


def backoff(failures_in_a_row: int, keep_warm: bool) -> float | None:
    """Seconds before a model whose starts failed is started again; None: at the next request."""
    if keep_warm:
        return KEPT_WARM_BACKOFF[min(failures_in_a_row, len(KEPT_WARM_BACKOFF)) - 1]
    if failures_in_a_row < CRASH_LOOP_AFTER:
        return None
    first, longest = CRASH_LOOP_BACKOFF
    return float(min(longest, first * 2 ** (failures_in_a_row - CRASH_LOOP_AFTER)))
