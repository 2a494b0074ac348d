"""Requests in the run loop: the future each waiting request awaits, its deadline, and running answers.

A ticket is a request's number. Waiting, it has a future that a `Grant`
or `Reject` settles, and perhaps a deadline timer; running, the engine's
answer is tracked under its model, so that `AbortInFlight` can end it.
One owner (the runtime), on the loop thread.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sparkd.effects import Grant, Reject
from sparkd.errors import ApiError


class Answer(Protocol):
    """An engine's answer being relayed (sparkd.engine_answer.EngineResponse)."""

    def release(self) -> None: ...


@dataclass
class Tickets:
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[int, asyncio.Future[Grant]] = field(default_factory=dict)
    _deadlines: dict[int, asyncio.TimerHandle] = field(default_factory=dict)
    _timers: set[asyncio.TimerHandle] = field(default_factory=set)
    _answers: dict[str, dict[int, Answer]] = field(default_factory=dict)

    def new(self) -> int:
        return next(self._numbers)

    def wait_for(self, ticket: int) -> asyncio.Future[Grant]:
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._waiting[ticket] = future
        return future

    def grant(self, grant: Grant) -> None:
        self._settle(grant.request, grant)

    def reject(self, reject: Reject) -> None:
        # A refusal that asking again cannot fix (no weights, say) comes without Retry-After.
        retry = {"Retry-After": str(max(1, round(reject.retry_after)))} if reject.retry_after > 0 else {}
        headers = {**retry, **dict(reject.headers)}
        self._settle(reject.request, ApiError(reject.status, reject.message, reject.code, None, headers))

    def watch(self, ticket: int, seconds: float, on_deadline: Callable[[int], None]) -> None:
        def expired() -> None:
            self._deadlines.pop(ticket, None)
            on_deadline(ticket)

        self._deadlines[ticket] = asyncio.get_running_loop().call_later(seconds, expired)

    def later(self, seconds: float, callback: Callable[[], None]) -> None:
        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle = asyncio.get_running_loop().call_later(seconds, run)
        self._timers.add(handle)

    def forget(self, ticket: int) -> None:
        """The client left while waiting."""
        self._waiting.pop(ticket, None)
        self._cancel_deadline(ticket)

    def track(self, model_id: str, ticket: int, answer: Answer) -> None:
        """Remember a running engine answer, to end it if the model's unit goes away."""
        self._answers.setdefault(model_id, {})[ticket] = answer

    def untrack(self, ticket: int) -> None:
        for answers in self._answers.values():
            answers.pop(ticket, None)

    def abort(self, model_id: str) -> None:
        for answer in list(self._answers.pop(model_id, {}).values()):
            answer.release()  # unfinished: its connection closes, the client's answer ends

    def close(self) -> None:
        for handle in [*self._deadlines.values(), *self._timers]:
            handle.cancel()
        self._deadlines.clear()
        self._timers.clear()

    def _settle(self, ticket: int, outcome: Grant | ApiError) -> None:
        future = self._waiting.pop(ticket, None)
        self._cancel_deadline(ticket)
        if future is None or future.done():
            return
        if isinstance(outcome, ApiError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _cancel_deadline(self, ticket: int) -> None:
        handle = self._deadlines.pop(ticket, None)
        if handle is not None:
            handle.cancel()
