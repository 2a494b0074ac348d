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
