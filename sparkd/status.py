"""What sparkd knows right now, as one JSON document (`GET /sparkd/status`, `sparkd status`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparkd import __version__
from sparkd.catalogue import Catalogue
from sparkd.memory import MemoryBook
from sparkd.scheduler import Phase, Scheduler


def snapshot(
    scheduler: Scheduler,
    catalogue: Catalogue,
    now: float,
    started_at: float,
    memory: MemoryBook,
    available: int | None,
    unit_memory: Mapping[str, tuple[int | None, int | None]],
) -> dict[str, Any]:
    models = []
    for model in catalogue.enabled():
        state = scheduler.states[model.id]
        idle_for = now - state.last_done if state.last_done is not None and not state.in_flight else None
        policy = scheduler.policies[model.id]
        idle_stop_in = (
            max(0.0, scheduler.idle_deadline(model.id, now) - now)
            if state.phase is Phase.READY
            and not state.in_flight
            and policy.idle_timeout > 0
            and not policy.keep_warm
            else None
        )
        current, peak = unit_memory.get(model.id, (None, None))
        models.append(
            {
                "id": model.id,
                "role": model.role.value,
                "status": model.status.value,
                "phase": state.phase.value,
                "unit": model.unit_name,
                "since_seconds": round(now - state.since, 1) if state.phase is not Phase.STOPPED else None,
                "in_flight": len(state.in_flight),
                "queued": scheduler.queued(model.id),
                "idle_seconds": round(idle_for, 1) if idle_for is not None else None,
                "idle_stop_in_seconds": round(idle_stop_in, 1) if idle_stop_in is not None else None,
                "start_estimate_seconds": round(scheduler.start_estimate(model.id), 1),
                "last_failure": state.last_failure,
                "memory_bytes": current,
                "memory_peak_bytes": peak,
                "observed_need_bytes": memory.peaks.get(model.id),
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
    }
