"""The gateway on loopback: real aiohttp both ways, fake engines, fake systemd."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from tests.fake_engine import RECEIVED
from tests.loopback.harness import CHAT, KEY, Bed, error_code, post, run
from tests.waiting import eventually


class TestAuthComesFirst:
    def test_no_key_is_401_and_wakes_nothing(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, headers, payload = await post(bed, "/v1/chat/completions", CHAT, key=None)
            assert (status, error_code(payload)) == (401, "invalid_api_key")
            assert "X-Request-Id" in headers
            assert bed.units.started == []

        run(tmp_path, scenario)

    def test_a_wrong_key_is_401(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, _ = await post(bed, "/v1/chat/completions", CHAT, key="wrong-key-0123456789abcdef")
            assert status == 401
            assert bed.units.started == []

        run(tmp_path, scenario)

    def test_x_api_key_works_and_keys_in_the_url_never_do(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, _ = await post(bed, "/v1/chat/completions", CHAT, key=None, headers={"x-api-key": KEY})
            assert status == 200
            status, _, payload = await post(bed, f"/v1/chat/completions?key={KEY}", CHAT, key=None)
            assert (status, error_code(payload)) == (401, "key_in_url")

        run(tmp_path, scenario)

    def test_the_control_socket_needs_no_key_and_the_network_still_does(self, tmp_path: Path) -> None:
        """Who may connect to the Unix socket is decided by its mode and group (sparkd-control.socket)."""

        async def scenario(bed: Bed) -> None:
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(bed.control))) as local:
                async with local.get("http://sparkd/sparkd/status") as response:
                    assert response.status == 200
                async with local.post("http://sparkd/v1/chat/completions", json=CHAT) as response:
                    assert response.status == 200
            async with bed.session.get(bed.url + "/sparkd/status") as response:
                assert response.status == 401

        run(tmp_path, scenario)

    def test_healthz_needs_no_key(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with bed.session.get(bed.url + "/healthz") as response:
                assert (response.status, await response.text()) == (200, "ok\n")

        run(tmp_path, scenario)

    def test_the_clients_credentials_never_reach_the_engine(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT, headers={"x-api-key": KEY, "Cookie": "c=1"})
            [(_, headers, _)] = bed.engines["alpha"][RECEIVED].requests
            assert not {"Authorization", "X-Api-Key", "Cookie"} & set(headers)
            assert headers["X-Request-Id"]

        run(tmp_path, scenario)


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"{not json", "invalid_json"),
            (b"[1, 2]", "invalid_json"),
            (b'{"messages": []}', "missing_model"),
            (b'{"model": 7}', "missing_model"),
            (b"\xff\xfe", "invalid_json"),
        ],
    )
    def test_bodies_sparkd_cannot_route_get_400(self, tmp_path: Path, body: bytes, code: str) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/chat/completions", body)
            assert (status, error_code(payload)) == (400, code)
            assert bed.units.started == []

        run(tmp_path, scenario)

    def test_an_unknown_model_is_404_with_close_matches(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/chat/completions", {**CHAT, "model": "alpah"})
            assert (status, error_code(payload)) == (404, "model_not_found")
            assert "'alpha'" in str(payload)
            status, _, _ = await post(bed, "/v1/chat/completions", {**CHAT, "model": "off"})
            assert status == 404

        run(tmp_path, scenario)

    def test_a_body_over_the_limit_is_413(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            big = io.BytesIO(b"x" * (1024 * 1024 + 1))
            async with bed.session.post(
                bed.url + "/v1/chat/completions", data=big, headers=bed.headers()
            ) as r:
                status, payload = r.status, await r.json()
            assert (status, error_code(payload)) == (413, "body_too_large")

        run(tmp_path, scenario)

    def test_engine_admin_routes_are_not_reachable(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            for path in (
                "/v1/../sleep",
                "/v1/alpha/tokenize",
                "/sleep",
                "/metrics/../collective_rpc",
            ):
                status, _, payload = await post(bed, path, {"model": "alpha", "prompt": "x"})
                assert status == 404, path
                assert error_code(payload) == "unknown_route"
            assert bed.engines["alpha"][RECEIVED].requests == []

        run(tmp_path, scenario)


class TestServing:
    def test_the_openai_sdk_gets_an_answer_from_a_cold_model(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            client = openai.AsyncOpenAI(base_url=bed.url + "/v1", api_key=KEY, max_retries=0)
            reply = await client.chat.completions.create(
                model="alpha", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content == "word0 word1 word2 word3 word4 "
            assert bed.units.started == ["sparkd-alpha.service"]
            await client.close()

        run(tmp_path, scenario)

    def test_a_start_that_became_healthy_clears_the_units_start_count(self, tmp_path: Path) -> None:
        # systemd counts every start of a failed unit against its start limit;
        # an engine that crashed and came back healthy is not a crash loop.
        async def scenario(bed: Bed) -> None:
            assert (await post(bed, "/v1/chat/completions", CHAT))[0] == 200
            await eventually(lambda: bool(bed.units.reset), "the unit's start count to be reset")
            assert bed.units.reset == ["sparkd-alpha.service"]

        run(tmp_path, scenario)

    def test_concurrent_requests_for_a_cold_model_join_one_start(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            results = await asyncio.gather(*(post(bed, "/v1/chat/completions", CHAT) for _ in range(20)))
            assert [status for status, _, _ in results] == [200] * 20
            assert bed.units.started == ["sparkd-alpha.service"]

        run(tmp_path, scenario)

    def test_sse_is_relayed_chunk_by_chunk_as_it_comes(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)  # warm
            arrivals = []
            body = json.dumps({**CHAT, "stream": True}).encode()
            async with bed.session.post(
                bed.url + "/v1/chat/completions", data=body, headers=bed.headers()
            ) as r:
                assert r.headers["Content-Type"].startswith("text/event-stream")
                async for _ in r.content.iter_any():
                    arrivals.append(time.monotonic())
            assert len(arrivals) >= 5
            assert arrivals[-1] - arrivals[0] >= 0.15  # spread out, not buffered into one write

        run(tmp_path, scenario, engine_options={"alpha": {"interval": 0.05}})

    def test_the_sdk_streams_through_sparkd(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            client = openai.AsyncOpenAI(base_url=bed.url + "/v1", api_key=KEY, max_retries=0)
            stream = await client.chat.completions.create(
                model="alpha", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            pieces = [chunk.choices[0].delta.content async for chunk in stream]
            assert "".join(p or "" for p in pieces) == "word0 word1 word2 word3 word4 "
            await client.close()

        run(tmp_path, scenario)

    def test_an_alias_and_the_path_form_reach_the_model_by_its_id(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/chat/completions", {**CHAT, "model": "alpha-alias"})
            assert (status, payload["model"]) == (200, "alpha")
            status, _, payload = await post(bed, "/v1/alpha/chat/completions", {"messages": CHAT["messages"]})
            assert (status, payload["model"]) == (200, "alpha")

        run(tmp_path, scenario)

    def test_bodies_are_forwarded_byte_for_byte(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            body = '{"model":"beta","messages":[{"role":"user","content":"€ \\u00e9 😀"}]}'.encode()
            _, headers, _ = await post(bed, "/v1/chat/completions", body)
            [(_, _, received)] = bed.engines["beta"][RECEIVED].requests
            assert received == body
            assert "X-Sparkd-Rewrites" not in headers

        run(tmp_path, scenario)

    def test_a_chunked_request_reaches_the_engine_with_a_length_and_no_transfer_encoding(
        self, tmp_path: Path
    ) -> None:
        # Original bug 7: client headers forwarded verbatim plus a new Content-Length.
        async def scenario(bed: Bed) -> None:
            body = json.dumps({**CHAT, "model": "beta"}).encode()

            async def chunks() -> AsyncIterator[bytes]:
                yield body[:10]
                yield body[10:]

            async with bed.session.post(
                bed.url + "/v1/chat/completions", data=chunks(), headers=bed.headers()
            ) as response:
                assert response.status == 200
            [(_, headers, received)] = bed.engines["beta"][RECEIVED].requests
            assert received == body
            assert "Transfer-Encoding" not in headers
            assert headers["Content-Length"] == str(len(body))

        run(tmp_path, scenario)

    def test_models_lists_every_enabled_model_with_its_state(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            async with bed.session.get(bed.url + "/v1/models", headers=bed.headers()) as response:
                listing = await response.json()
            by_id = {m["id"]: m for m in listing["data"]}
            assert listing["object"] == "list"
            assert set(by_id) == {"alpha", "beta", "helper"}
            assert (by_id["alpha"]["state"], by_id["beta"]["state"]) == ("ready", "stopped")
            assert by_id["alpha"]["context_length"] == 4096
            assert by_id["alpha"]["aliases"] == ["alpha-alias"]
            assert bed.units.started == ["sparkd-alpha.service"]  # listing wakes nothing

        run(tmp_path, scenario)

    def test_embeddings_are_served(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/embeddings", {"model": "alpha", "input": "hi"})
            assert (status, payload["object"]) == (200, "list")

        run(tmp_path, scenario)

    def test_cors_for_local_tools(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            origin = {"Origin": "http://localhost:5173"}
            async with bed.session.options(bed.url + "/v1/chat/completions", headers=origin) as response:
                assert response.status == 204
                assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
                assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
            _, headers, _ = await post(
                bed, "/v1/chat/completions", CHAT, headers={"Origin": "http://evil.example"}
            )
            assert "Access-Control-Allow-Origin" not in headers

        run(tmp_path, scenario)

    def test_a_web_ui_on_another_origin_is_allowed_once_configured(self, tmp_path: Path) -> None:
        """`cors_origins`: Open WebUI on its own host may call the API (with a key, still)."""

        async def scenario(bed: Bed) -> None:
            webui = {"Origin": "http://openwebui.lan:3000"}
            async with bed.session.options(bed.url + "/v1/models", headers=webui) as response:
                assert response.headers["Access-Control-Allow-Origin"] == "http://openwebui.lan:3000"
            status, headers, _ = await post(bed, "/v1/chat/completions", CHAT, headers=webui)
            assert (status, headers["Access-Control-Allow-Origin"]) == (200, "http://openwebui.lan:3000")
            status, headers, _ = await post(bed, "/v1/chat/completions", CHAT, key=None, headers=webui)
            assert status == 401 and headers["Access-Control-Allow-Origin"] == "http://openwebui.lan:3000"
            _, headers, _ = await post(
                bed, "/v1/chat/completions", CHAT, headers={"Origin": "http://other.lan"}
            )
            assert "Access-Control-Allow-Origin" not in headers

        run(tmp_path, scenario, cors_origins=("http://openwebui.lan:3000",))


class TestRewrites:
    def test_the_response_says_what_was_rewritten(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            _, headers, _ = await post(bed, "/v1/chat/completions", {**CHAT, "model": "alpha-alias"})
            assert headers["X-Sparkd-Rewrites"] == "max_tokens_filled,model_name"
            [(_, _, received)] = bed.engines["alpha"][RECEIVED].requests
            sent = json.loads(received)
            assert sent["model"] == "alpha"
            assert sent["max_tokens"] == sent["max_completion_tokens"] == 4096 - 521 - 512

        run(tmp_path, scenario)

    def test_tools_never_reach_a_model_without_tool_support(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
            status, headers, _ = await post(
                bed,
                "/v1/chat/completions",
                {**CHAT, "model": "helper", "tools": tools, "tool_choice": "auto"},
            )
            assert status == 200
            assert "tools_stripped" in headers["X-Sparkd-Rewrites"]
            [(_, _, received)] = bed.engines["helper"][RECEIVED].requests
            assert not {"tools", "tool_choice"} & set(json.loads(received))

        run(tmp_path, scenario)

    def test_a_field_of_the_wrong_type_is_400_naming_it_and_wakes_nothing(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/chat/completions", {**CHAT, "max_tokens": "many"})
            assert (status, error_code(payload)) == (400, "invalid_field")
            assert payload["error"]["param"] == "max_tokens"  # type: ignore[index]
            assert bed.units.started == []

        run(tmp_path, scenario)
