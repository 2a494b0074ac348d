"""What sparkd knows right now, as one JSON document (`GET /sparkd/status`, `sparkd status`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sparkd import __version__, names
from sparkd.catalogue import Catalogue
from sparkd.lifecycle import Phase
from sparkd.memory import MemoryBook
from sparkd.progress import Progress
from sparkd.sizing import sizing
from sparkd.tenancy import Tenancy


@dataclass(frozen=True)
class Disk:
    """What the status reads beside the scheduler, by model: downloads under way, what starting
    engines' logs say, and the size of pulled weights."""

    pulls: Mapping[str, Progress] = field(default_factory=dict)
    loading: Mapping[str, str] = field(default_factory=dict)
    pulled_bytes: Mapping[str, int] = field(default_factory=dict)
    not_pulled: frozenset[str] = frozenset()  # hub downloads still to do

    def weights(self, model_id: str) -> str | None:
        """ "pulled", "not pulled", or None for weights that are no hub download."""
        if model_id in self.not_pulled:
            return "not pulled"
        return "pulled" if model_id in self.pulled_bytes else None


def snapshot(
    scheduler: Tenancy,
    catalogue: Catalogue,
    now: float,
    started_at: float,
    memory: MemoryBook,
    available: int | None,
    unit_memory: Mapping[str, tuple[int | None, int | None]],
    disk: Disk = Disk(),
) -> dict[str, Any]:
    models = []
    for model in catalogue.enabled():
        view = scheduler.view(model.id, now)
        current, peak = unit_memory.get(model.id, (None, None))
        sized = sizing(model, disk.pulled_bytes.get(model.id), memory.peaks.get(model.id), None)
        models.append(
            {
                "id": model.id,
                "role": model.role.value,
                "status": model.status.value,
                "phase": view.phase.value,
                "start_step": view.start_step.value if view.start_step is not None else None,
                "unit": model.unit_name,
                "since_seconds": round(now - view.since, 1) if view.phase is not Phase.STOPPED else None,
                "in_flight": view.in_flight,
                "queued": view.queued,
                "idle_seconds": _rounded(view.idle_seconds),
                "idle_stop_in_seconds": _rounded(view.idle_stop_in),
                "start_estimate_seconds": round(view.start_estimate, 1),
                "last_failure": view.last_failure,
                "memory_bytes": current,
                "memory_peak_bytes": peak,
                "observed_need_bytes": memory.peaks.get(model.id),
                "need_bytes": sized.need,
                "need_measured": sized.need_measured,
                "fits_now": sized.need <= available if sized.need is not None and available else None,
                "pull": _pull(disk.pulls.get(model.id)),
                "weights": disk.weights(model.id),
                "loading": disk.loading.get(model.id),
                "nodes": model.nodes,
            }
        )
    return {
        "sparkd": {
            "version": __version__,
            "uptime_seconds": round(now - started_at, 1),
            "tenant": scheduler.tenant(),
            "queued": scheduler.queued(),
            "memory_available_bytes": available,
        },
        "models": models,
        "worker_halves": _worker_halves(scheduler, now),
    }


def _worker_halves(scheduler: Tenancy, now: float) -> list[dict[str, Any]]:
    """The halves of split models this Spark runs for its peer: leased while the peer serves them."""
    halves = []
    for half, policy in scheduler.policies.items():
        if not policy.worker:
            continue
        view = scheduler.view(half, now)
        halves.append(
            {
                "model": half.removeprefix(names.WORKER),
                "unit": names.model_unit(half),
                "phase": view.phase.value,
                "since_seconds": round(now - view.since, 1) if view.phase is not Phase.STOPPED else None,
                "leased": view.in_flight > 0,
                "queued": view.queued,
                "others_waiting": scheduler.others_want_gpu(half),
                "last_failure": view.last_failure,
            }
        )
    return halves


def _pull(progress: Progress | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {
        "done_bytes": progress.done,
        "total_bytes": progress.total,
        "rate": round(progress.rate),
        "line": progress.line(),
    }


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 1) if seconds is not None else None
