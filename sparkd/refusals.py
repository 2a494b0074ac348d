"""The scheduler's refusals: each a `Reject` with a message that says why and an honest Retry-After.

Pure functions of the state they are given; `sparkd.scheduler` decides
when to refuse, these say how.
"""

from __future__ import annotations

from sparkd.effects import Reject
from sparkd.lifecycle import ModelState, Phase, Policy

SWAP_ALLOWANCE = 15.0  # seconds a draining tenant takes to stop, in a Retry-After guess


def retry_after(state: ModelState, now: float, other_tenant: bool) -> float:
    """When asking again could succeed, in whole seconds, at least 1."""
    if state.phase is Phase.READY:
        return 1.0
    if state.phase is Phase.STARTING:
        return float(max(1, round(state.start_estimate() - (now - state.since))))
    wait = state.start_estimate() + (SWAP_ALLOWANCE if other_tenant else 0.0)
    return float(max(1, round(wait)))


def queue_full(request: int, model_id: str, queued: int, retry: float) -> Reject:
    return Reject(
        request, model_id, 429, "queue_full", f"{queued} requests already wait for {model_id!r}", retry
    )


def utility_paused(request: int, model_id: str, blocker: str, retry: float) -> Reject:
    message = f"{model_id!r} is paused while {blocker!r} needs all of the GPU's memory"
    return Reject(request, model_id, 503, "utility_paused", message, retry)


def backing_off(request: int, model_id: str, state: ModelState, now: float) -> Reject:
    message = (
        f"{model_id!r} failed to start {state.failures_in_a_row} times in a row and is not "
        f"started again for now; last cause: {state.last_failure}"
    )
    return Reject(
        request, model_id, 503, "model_start_failed", message, float(max(1, round(state.retry_at - now)))
    )


def start_failed(request: int, model_id: str, cause: str, retry: float) -> Reject:
    return Reject(
        request, model_id, 503, "model_start_failed", f"{model_id!r} failed to start: {cause}", retry
    )


def weights_missing(request: int, model_id: str) -> Reject:
    message = (
        f"{model_id!r} has no weights on this machine yet: download them with `sudo sparkd pull {model_id}` "
        "(pull_on_demand is off)"
    )
    return Reject(request, model_id, 409, "model_not_pulled", message, 0.0)


def waited_too_long(request: int, model_id: str, waited: float, tenant: str | None, retry: float) -> Reject:
    message = f"waited {waited:.0f}s for {model_id!r} (tenant: {tenant or 'none'}); giving up"
    return Reject(request, model_id, 503, "wait_deadline", message, retry)


def busy(
    request: int,
    model_id: str,
    holder: str,
    held: ModelState,
    policy: Policy,
    start_estimate: float,
    now: float,
) -> Reject:
    """The original stack's busy answer, headers and all, for `busy_policy = "refuse"`."""
    uptime = now - held.ready_at if held.ready_at is not None else 0.0
    idle = now - held.last_done if held.last_done is not None and not held.in_flight else 0.0
    release = max(policy.idle_timeout - idle, policy.min_uptime - uptime, 0.0)
    will_stop = policy.idle_timeout > 0 and not policy.keep_warm
    headers = (
        ("X-Busy-Model", holder),
        ("X-Model-Uptime-Sec", str(int(uptime))),
        ("X-Model-Idle-Sec", str(int(idle))),
        ("X-Time-Until-Release-Sec", str(int(release))),
        ("X-Model-Will-Auto-Stop", "true" if will_stop else "false"),
    )
    return Reject(
        request,
        model_id,
        429,
        "model_busy",
        f"{holder!r} holds the GPU; {model_id!r} can start when it is released",
        float(max(1, round(release + start_estimate))),
        headers,
    )
