"""The scheduler's state in a few words: systemd's STATUS= line and the progress a waiting client sees."""

from __future__ import annotations

from sparkd.duration import format_seconds
from sparkd.lifecycle import Phase, StartStep
from sparkd.progress import Progress
from sparkd.tenancy import Tenancy


def status_line(scheduler: Tenancy, now: float) -> str:
    tenant = scheduler.tenant()
    parts = []
    if tenant is None:
        parts.append("no model running")
    else:
        view = scheduler.view(tenant, now)
        parts.append(f"{tenant} {view.phase.value}")
        parts.append(f"{view.in_flight} in flight")
        if view.idle_stop_in is not None:
            parts.append(f"idle stop in {format_seconds(view.idle_stop_in)}")
    utility = scheduler.utility()
    if utility and scheduler.phase(utility) is not Phase.STOPPED:
        parts.append(f"utility {utility} {scheduler.phase(utility).value}")
    parts.append(f"{scheduler.queued()} queued")
    return ", ".join(parts)


def waiting_for(scheduler: Tenancy, model_id: str, now: float, pull: Progress | None = None) -> str:
    """What a waiting request for `model_id` waits for, in a few words (`pull`: its download's progress)."""
    view = scheduler.view(model_id, now)
    holder = scheduler.tenant()
    if view.phase is Phase.STARTING and view.start_step is StartStep.PULLING:
        return f"pulling {model_id}: " + (pull.line() if pull is not None else "asking the hub")
    if view.phase is Phase.STARTING:
        elapsed = now - view.since
        left = view.start_estimate - elapsed
        hint = f"about {max(1, round(left))}s left" if left > 0 else "taking longer than last time"
        return f"starting {model_id}: {elapsed:.0f}s, {hint}"
    if holder is not None and holder != model_id:
        held = scheduler.view(holder, now)
        if held.phase is Phase.STOPPING:
            return f"stopping {holder} to make room for {model_id}"
        return f"waiting for {holder} to finish {held.in_flight} request(s)"
    return f"waiting for {model_id}"
