"""The dashboard's event hub: bounded history, bounded queues, and a slow reader never blocks."""

from __future__ import annotations

import asyncio

from sparkd.events import HISTORY, QUEUE, EventHub, state_changes


def test_history_keeps_the_latest_events_only() -> None:
    hub = EventHub()
    for i in range(HISTORY["request"] + 10):
        hub.publish("request", {"n": i})
    recent = hub.recent()["request"]
    assert len(recent) == HISTORY["request"] and recent[-1] == {"n": HISTORY["request"] + 9}


def test_a_slow_subscriber_loses_its_oldest_events_and_publishing_never_waits() -> None:
    async def scenario() -> None:
        hub = EventHub()
        queue = hub.subscribe()
        for i in range(QUEUE + 5):
            hub.publish("sample", {"n": i})
        assert queue.qsize() == QUEUE
        assert (await queue.get()) == ("sample", {"n": 5})
        hub.unsubscribe(queue)
        hub.publish("sample", {"n": -1})
        assert queue.qsize() == QUEUE - 1  # unsubscribed: nothing more arrives

    asyncio.run(scenario())


def test_only_models_whose_state_changed_are_news() -> None:
    before = {"a": ("ready", None, 0, 0), "b": ("stopped", None, 0, 0)}
    now = {"a": ("ready", None, 1, 0), "b": ("stopped", None, 0, 0), "c": ("starting", "asked systemd", 0, 1)}
    assert state_changes(before, now) == ["a", "c"]


def test_three_hours_of_samples_and_a_full_history_stay_within_two_megabytes() -> None:
    import time
    import tracemalloc

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    hub = EventHub()
    request = {
        "request_id": "9f2c1a3b-1f4e",
        "model": "qwen3.6-35b-a3b-fp8-mtp",
        "endpoint": "chat/completions",
        "status": 200,
        "duration_ms": 1234.5,
        "ttfb_ms": 88.1,
        "queue_ms": 0.4,
        "cold_start": "no",
        "bytes": 18211,
        "key": "laptop",
    }
    for i in range(10 * max(HISTORY.values())):  # far more than an hour of traffic, each kind
        now = time.time() + i
        hub.publish("request", {**request, "at": now, "tokens_per_s": 41.5})
        hub.publish(
            "sample",
            {"at": now, "available_bytes": 60 * 2**30, "models": {"a": 2**34}, "cgroups": {"a": 2**30}},
        )
        hub.publish(
            "state",
            {
                "at": now,
                "model": "a",
                "phase": "ready",
                "was": "starting",
                "step": None,
                "in_flight": 1,
                "queued": 0,
                "took": 60.0,
            },
        )
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert 2**20 // 4 < held < 2 * 2**20, f"{held / 2**20:.1f} MiB"  # it holds them, and no more
