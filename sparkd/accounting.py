"""After each answer: one metrics update and one structured journal entry.

Called once the answer is on its way (`call_soon`), so neither is part of
the client's wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sparkd.effects import Grant
from sparkd.events import EventHub
from sparkd.logs import RequestLog
from sparkd.metrics import Metrics
from sparkd.usage import generated_tokens

CLIENT_CLOSED = 499  # logged when the client hung up before the answer was complete


@dataclass(slots=True)
class Outcome:
    """How one request went, filled in as it goes."""

    request_id: str
    model: str
    endpoint: str
    started: float
    key: str | None
    status: int = 0
    first_byte: float | None = None
    sent: int = 0
    grant: Grant | None = None
    # The answer's end (a whole small body, or a stream's last two pieces): where engines put
    # `usage`, read after the answer only while a dashboard watches.
    tail: bytes = b""
    before_tail: bytes = b""


@dataclass
class Accounting:
    metrics: Metrics
    request_log: RequestLog
    events: EventHub | None = None  # the dashboard's live view

    def record(self, outcome: Outcome, finished: float) -> None:
        started, first_byte, grant = outcome.started, outcome.first_byte, outcome.grant
        waited = grant.waited if grant else finished - started
        ttfb = first_byte - started if first_byte else None
        self.metrics.request_done(outcome.model, outcome.status, finished - started, ttfb, waited)
        entry = {
            "request_id": outcome.request_id,
            "model": outcome.model,
            "endpoint": outcome.endpoint,
            "status": outcome.status,
            "duration_ms": round((finished - started) * 1000, 1),
            "ttfb_ms": round(ttfb * 1000, 1) if ttfb is not None else None,
            "queue_ms": round(waited * 1000, 1),
            "cold_start": "yes" if grant and grant.cold else "no",
            "bytes": outcome.sent,
            "key": outcome.key,
        }
        self.request_log.write(
            f"{outcome.request_id} {outcome.model} {outcome.endpoint} {outcome.status}", entry
        )
        if self.events is not None:
            event = {**entry, "at": time.time()}
            if self.events.watched:
                event["tokens_per_s"] = _tokens_per_second(outcome, finished - started - waited)
            self.events.publish("request", event)


def _tokens_per_second(outcome: Outcome, engine_seconds: float) -> float | None:
    """Generated tokens per second of the engine's time, where the answer says how many."""
    tokens = generated_tokens(outcome.before_tail + outcome.tail)
    if tokens is None or engine_seconds <= 0:
        return None
    return round(tokens / engine_seconds, 1)
