"""Peers on loopback: a model only another sparkd serves is listed here and answered through here,
its scheduling answers passed back unchanged; a peer that is down is reported and fails fast."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from sparkd import secrets
from sparkd.settings import Peer
from tests.loopback.harness import KEY, Bed, error_code, gateway, post

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def two_sparkds(tmp_path: Path, scenario, peer_url: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """`here` serves alpha and helper (beta is off here); `there` serves all three; here's peer is there."""

    async def main() -> None:
        async with gateway(tmp_path / "there") as there:
            secrets.store(tmp_path / "here" / "secrets", "PEER_KEY", KEY)
            peer = Peer("spark-b", peer_url or there.url)
            off = {"beta": 'status = "disabled"'}
            async with gateway(tmp_path / "here", peers=(peer,), more=off, check_settled=False) as here:
                await asyncio.wait_for(scenario(here, there), timeout=30)

    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    asyncio.run(main())


async def listed(bed: Bed) -> dict[str, dict[str, object]]:
    async with bed.session.get(bed.url + "/v1/models", headers=bed.headers()) as response:
        return {m["id"]: m for m in (await response.json())["data"]}


def test_a_peer_only_model_is_listed_with_its_host_and_answered_through_this_sparkd(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        models = await listed(here)
        assert models["beta"]["owned_by"] == "sparkd@spark-b" and models["beta"]["sparkd"] == {
            "host": "spark-b"
        }
        assert models["alpha"]["owned_by"] == "sparkd"  # its own, not the peer's copy
        status, headers, payload = await post(here, "/v1/chat/completions", {**CHAT, "model": "beta"})
        assert status == 200, payload
        assert headers["X-Sparkd-Peer"] == "spark-b"
        assert (
            there.units.started == ["sparkd-beta.service"] and "sparkd-beta.service" not in here.units.started
        )
        # Anthropic's route too.
        status, _, payload = await post(here, "/v1/messages", {**CHAT, "model": "beta"})
        assert status == 200, payload

    two_sparkds(tmp_path, scenario)


def test_the_peers_scheduling_answers_reach_the_client_unchanged(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        there.units.fail_start.add("sparkd-beta.service")
        status, headers, payload = await post(here, "/v1/chat/completions", {**CHAT, "model": "beta"})
        assert (status, error_code(payload)) == (503, "model_start_failed")
        assert "Retry-After" in headers

    two_sparkds(tmp_path, scenario)


def test_a_peer_that_is_down_is_reported_and_never_waited_on(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        began = time.monotonic()
        status, _, payload = await post(here, "/v1/chat/completions", {**CHAT, "model": "beta"})
        assert (status, error_code(payload)) == (404, "model_not_found")  # no peer lists it
        async with here.session.get(here.url + "/sparkd/status", headers=here.headers()) as response:
            peers = (await response.json())["peers"]
        assert peers[0]["name"] == "spark-b" and peers[0]["up"] is False and peers[0]["error"]
        assert time.monotonic() - began < 5

    two_sparkds(tmp_path, scenario, peer_url="http://127.0.0.1:9")


def test_the_peer_key_is_sent_to_the_peer_and_a_wrong_one_is_the_peers_refusal(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        secrets.store(tmp_path / "here" / "secrets", "PEER_KEY", "not-the-peers-key")
        status, _, payload = await post(here, "/v1/chat/completions", {**CHAT, "model": "beta"})
        assert status == 404, json.dumps(payload)  # the peer refused to list its models: none known

    two_sparkds(tmp_path, scenario)
