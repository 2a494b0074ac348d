"""Waiting on a condition, not on the clock: every wait has a deadline and fails loudly when it passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Return as soon as `predicate()` holds; fail the test, naming `what`, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(0.005)


async def settled() -> None:
    """Fail the test if it left a task running: every task a test starts must end with it."""
    await asyncio.sleep(0)  # tasks cancelled a moment ago finish on this turn
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    if left:
        names = ", ".join(repr(task.get_coro()) for task in left[:5])
        pytest.fail(f"the test left {len(left)} task(s) running: {names}")


def eventually_sync(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """`eventually` for code without an event loop (threads, blocking clients)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(0.005)
