"""The dashboard's HTTP side on loopback: pages without a key, sessions as a way in, and every way
a session can be wrong or misused refused in the API's own envelope."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from sparkd.sessions import COOKIE, Sessions
from tests.loopback.harness import KEY, UI_SECRET, Bed, error_code, post, run


async def signed_in(bed: Bed) -> str:
    """A session's cookie value, from a login with the key."""
    async with bed.session.post(bed.url + "/ui/login", json={"key": KEY}) as response:
        assert response.status == 200
        cookie = response.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        return cookie.value


async def get(bed: Bed, path: str, cookie: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    async with bed.session.get(bed.url + path, headers=headers) as response:
        text = await response.read()
        return response.status, json.loads(text) if text.startswith(b"{") else {}


def test_the_pages_need_no_key_and_carry_a_strict_content_policy(tmp_path: Path) -> None:
    async def scenario(bed: Bed) -> None:
        async with bed.session.get(bed.url + "/ui/") as response:
            assert response.status == 200 and "<title>sparkd</title>" in await response.text()
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        async with bed.session.get(bed.url + "/ui/app.js") as response:
            assert response.status == 200
        status, payload = await get(bed, "/ui/../sparkd/status")
        assert status == 401
        status, payload = await get(bed, "/ui/secrets.txt")
        assert (status, error_code(payload)) == (404, "unknown_route")

    run(tmp_path, scenario)


def test_a_session_reads_and_acts_like_its_key(tmp_path: Path) -> None:
    async def scenario(bed: Bed) -> None:
        cookie = await signed_in(bed)
        status, payload = await get(bed, "/sparkd/status", cookie)
        assert status == 200 and payload["models"]
        status, _, answer = await post(
            bed,
            "/sparkd/models/alpha/start",
            {},
            key=None,
            headers={"Cookie": f"{COOKIE}={cookie}", "X-Sparkd-UI": "1"},
        )
        assert (status, answer["phase"]) == (202, "starting"), answer

    run(tmp_path, scenario)


def test_pull_asks_for_nothing_a_model_has_already(tmp_path: Path) -> None:
    async def scenario(bed: Bed) -> None:
        status, _, payload = await post(bed, "/sparkd/models/alpha/pull", {})
        assert (status, error_code(payload)) == (409, "nothing_to_pull")
        assert bed.units.started == []

    run(tmp_path, scenario)


def test_a_cross_site_request_riding_on_a_session_is_refused(tmp_path: Path) -> None:
    async def scenario(bed: Bed) -> None:
        cookie = await signed_in(bed)
        # What a form on another site could send: the cookie, without the dashboard's header.
        only_cookie = {"Cookie": f"{COOKIE}={cookie}"}
        status, _, payload = await post(bed, "/sparkd/models/alpha/start", {}, key=None, headers=only_cookie)
        assert (status, error_code(payload)) == (403, "cross_site_refused")
        assert bed.units.started == []

    run(tmp_path, scenario)


def test_bad_expired_and_orphaned_sessions_and_a_missing_key_are_refused(tmp_path: Path) -> None:
    async def scenario(bed: Bed) -> None:
        sessions = Sessions(UI_SECRET)
        expired = sessions.issue("me", now=time.time() - 2 * 86400)
        orphan = sessions.issue("no-such-key", now=time.time())
        for cookie in (None, "garbage", expired, orphan, (await signed_in(bed))[:-2] + "xx"):
            status, payload = await get(bed, "/sparkd/status", cookie)
            assert (status, error_code(payload)) == (401, "invalid_api_key"), cookie
        status, _, payload = await post(bed, "/ui/login", {"key": "wrong"}, key=None)
        assert (status, error_code(payload)) == (401, "invalid_api_key")
        status, _, payload = await post(bed, "/ui/login", b"not json", key=None)
        assert status == 400

    run(tmp_path, scenario)


def test_the_event_stream_starts_with_the_recent_history_and_then_follows(tmp_path: Path) -> None:
    async def scenario(bed: Bed) -> None:
        await post(bed, "/v1/chat/completions", hello("alpha"))
        headers = {"Authorization": f"Bearer {KEY}"}
        async with bed.session.get(bed.url + "/sparkd/events", headers=headers) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            kind, recent = await read_event(response)
            requests = recent["request"]
            assert kind == "recent" and isinstance(requests, list) and requests[-1]["model"] == "alpha"
            await post(
                bed,
                "/v1/chat/completions",
                {"model": "beta", "messages": [{"role": "user", "content": "hi"}]},
            )
            kind, data = await read_event(response)
            assert (kind, data["model"], data["status"]) == ("request", "beta", 200)
            # A dashboard watches: the engine's usage becomes tokens per second.
            assert isinstance(data["tokens_per_s"], float) and data["tokens_per_s"] > 0

    run(tmp_path, scenario)


def hello(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


async def read_event(response: aiohttp.ClientResponse) -> tuple[str, dict[str, object]]:
    kind, data = "", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and kind:
            return kind, json.loads(data)


def test_housekeeping_tells_the_dashboard_of_starts_and_samples_memory_with_each_units_cgroup(
    tmp_path: Path,
) -> None:
    from sparkd.activation import Notifier
    from sparkd.events import EventHub
    from sparkd.housekeeping import Housekeeping
    from sparkd.upstream import EnginePool

    async def scenario(bed: Bed) -> None:
        hub = EventHub()
        keeper = Housekeeping(
            bed.runtime, EnginePool(), Notifier(), tmp_path / "memory.json", 0, lambda: 0, asyncio.Event()
        )
        keeper.events = hub
        keeper.tick(bed.runtime.clock())  # first look: every model at rest, nothing to tell
        assert hub.recent()["state"] == []
        await post(bed, "/v1/chat/completions", hello("alpha"))
        keeper.tick(bed.runtime.clock())
        alpha = [e for e in hub.recent()["state"] if e["model"] == "alpha"]
        assert alpha and (alpha[-1]["was"], alpha[-1]["phase"]) == ("stopped", "ready")
        await keeper._publish_sample(hub)
        sample = hub.recent()["sample"][-1]
        assert sample["available_bytes"] == 64 * 2**30
        assert sample["cgroups"] == {"alpha": 123 * 2**20}  # the fake systemd's unit memory

    run(tmp_path, scenario)
