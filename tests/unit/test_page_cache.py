"""Dropping clean page cache before a start: only when the model fits what is available but not
what is free (vLLM counts free memory), and only when the setting allows it."""

from __future__ import annotations

import pytest

from sparkd.effects import SubmitStart
from tests.unit.test_scheduler import A, scheduler

GIB = 2**30


@pytest.mark.parametrize(
    ("on", "need", "estimate", "free", "available", "drop"),
    [
        (True, 40, None, 8, 64, True),  # the page cache holds what the model needs
        (True, 40, None, 48, 64, False),  # free memory is enough already
        (True, 80, None, 8, 64, False),  # it would not fit even without the cache: dropping helps no one
        (True, None, 40, 8, 64, True),  # never measured: the estimate decides
        (True, None, None, 8, 64, False),  # nothing says what it needs
        (False, 40, None, 8, 64, False),  # the setting is off
    ],
)
def test_the_page_cache_is_dropped_only_when_that_is_what_stands_in_the_way(
    on: bool, need: int | None, estimate: int | None, free: int, available: int, drop: bool
) -> None:
    s = scheduler()
    s.drop_page_cache = on
    s.on_request(1, A, now=0)
    attempt = s.states[A].start_attempt
    effects = s.on_start_memory(
        A,
        attempt,
        available * GIB,
        need * GIB if need else None,
        0,
        free=free * GIB,
        estimate=estimate * GIB if estimate else None,
    )
    assert effects == [SubmitStart(A, attempt, available * GIB, drop_page_cache=drop)]
