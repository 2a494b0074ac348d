"""The gateway on loopback: real aiohttp both ways, fake engines, fake systemd."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import openai
import pytest
from aiohttp import web
from multidict import CIMultiDict

from tests.fake_engine import RECEIVED, make_app
from tests.loopback.harness import KEY, Bed, gateway

Scenario = Callable[[Bed], Awaitable[None]]
CHAT = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}


def run(tmp_path: Path, scenario: Scenario, **options: object) -> None:
    async def main() -> None:
        async with gateway(tmp_path, **options) as bed:  # type: ignore[arg-type]
            await asyncio.wait_for(scenario(bed), timeout=30)

    asyncio.run(main())


async def post(
    bed: Bed, path: str, body: object, key: str | None = KEY, headers: dict[str, str] | None = None
) -> tuple[int, Mapping[str, str], dict[str, object]]:
    all_headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with bed.session.post(bed.url + path, data=data, headers=all_headers) as response:
        text = await response.read()
        payload = json.loads(text) if text.startswith(b"{") else {}
        return response.status, CIMultiDict(response.headers), payload


def error_code(payload: dict[str, object]) -> object:
    error = payload["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    return error["code"]


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
                "/tokenize",
                "/v1/../tokenize",
                "/v1/alpha/tokenize",
                "/sleep",
                "/metrics/../tokenize",
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
            for _ in range(50):
                if bed.units.reset:
                    break
                await asyncio.sleep(0.01)
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


class TestSwapsAndQueues:
    def test_a_request_for_another_model_swaps_after_the_current_one_stops(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            status, _, payload = await post(bed, "/v1/chat/completions", {**CHAT, "model": "beta"})
            assert (status, payload["model"]) == (200, "beta")
            assert bed.units.started == ["sparkd-alpha.service", "sparkd-beta.service"]
            assert bed.units.stopped == ["sparkd-alpha.service"]

        run(tmp_path, scenario)

    def test_the_utility_runs_beside_the_main_model(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            status, _, _ = await post(bed, "/v1/chat/completions", {**CHAT, "model": "helper"})
            assert status == 200
            assert bed.units.stopped == []

        run(tmp_path, scenario)

    def test_a_full_queue_answers_429_with_retry_after_at_once(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            results = await asyncio.gather(*(post(bed, "/v1/chat/completions", CHAT) for _ in range(6)))
            statuses = sorted(status for status, _, _ in results)
            assert statuses == [200, 200, 429, 429, 429, 429]
            rejected = [h for status, h, _ in results if status == 429]
            assert all(int(h["Retry-After"]) >= 1 for h in rejected)

        run(tmp_path, scenario, queue_cap=2, engine_options={"alpha": {"start_delay": 0.3}})

    def test_refuse_policy_answers_busy_like_the_original(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            status, headers, payload = await post(bed, "/v1/chat/completions", {**CHAT, "model": "beta"})
            assert (status, error_code(payload)) == (429, "model_busy")
            assert headers["X-Busy-Model"] == "alpha"
            assert bed.units.stopped == []

        run(tmp_path, scenario, busy_policy="refuse")

    def test_the_fit_gate_refuses_a_model_that_needed_more_than_is_free(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/chat/completions", CHAT)
            assert (status, error_code(payload)) == (503, "model_start_failed")
            assert "needed 100.0 GiB before and 64.0 GiB is available" in str(payload)
            assert bed.units.started == []
            status, _, _ = await post(bed, "/v1/chat/completions", {**CHAT, "model": "beta"})
            assert status == 200

        run(tmp_path, scenario, fit_gate=True, memory_peaks={"alpha": 100 * 2**30})

    def test_a_model_that_fails_to_start_gets_a_503_naming_the_cause(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            bed.units.fail_start.add("sparkd-alpha.service")
            started = time.monotonic()
            status, _, payload = await post(bed, "/v1/chat/completions", CHAT)
            assert (status, error_code(payload)) == (503, "model_start_failed")
            assert "CUDA out of memory" in str(payload)
            assert time.monotonic() - started < 2

        run(tmp_path, scenario)


class TestEnginesFailing:
    def test_an_engine_dying_mid_stream_ends_the_stream_with_an_error_event(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            body = json.dumps({**CHAT, "stream": True}).encode()
            async with bed.session.post(
                bed.url + "/v1/chat/completions", data=body, headers=bed.headers()
            ) as r:
                text = (await r.read()).decode()
            assert text.count("word") == 2
            last = text.strip().split("\n\n")[-1]
            assert json.loads(last.removeprefix("data: "))["error"]["code"] == "engine_died"

        run(tmp_path, scenario, engine_options={"alpha": {"die_after": 2}})

    def test_a_client_that_leaves_cancels_the_engines_work(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            body = json.dumps({**CHAT, "stream": True}).encode()
            async with bed.session.post(
                bed.url + "/v1/chat/completions", data=body, headers=bed.headers()
            ) as r:
                await r.content.readany()
            for _ in range(100):
                if bed.engines["alpha"][RECEIVED].cancelled:
                    break
                await asyncio.sleep(0.02)
            assert bed.engines["alpha"][RECEIVED].cancelled == 1
            assert bed.runtime.scheduler.view("alpha", 0).in_flight == 0

        run(tmp_path, scenario, engine_options={"alpha": {"interval": 0.2, "chunks": 20}})

    def test_an_engine_that_died_unnoticed_is_brought_back_for_the_request_that_found_it(
        self, tmp_path: Path
    ) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            port = bed.catalogue.models["alpha"].engine_port
            await bed.runners["alpha"].cleanup()  # the engine is gone; systemd has not said so

            async def engine_comes_back() -> None:
                runner = web.AppRunner(make_app("alpha"))
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                bed.runners["alpha"] = runner

            bed.units.on_start["sparkd-alpha.service"] = engine_comes_back
            status, _, payload = await post(bed, "/v1/chat/completions", CHAT)
            assert status == 200, payload
            assert bed.units.stopped == ["sparkd-alpha.service"]
            assert bed.units.started == ["sparkd-alpha.service"] * 2

        run(tmp_path, scenario)

    def test_an_engine_that_died_and_does_not_come_back_is_a_503_naming_the_cause(
        self, tmp_path: Path
    ) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            model = bed.catalogue.models["alpha"]
            object.__setattr__(model, "port", 9)  # nothing listens on the discard port
            object.__setattr__(model, "start_timeout", 0.5)
            status, _, payload = await post(bed, "/v1/chat/completions", CHAT)
            assert (status, error_code(payload)) == (503, "model_start_failed")
            assert "no healthy answer" in payload["error"]["message"]  # type: ignore[index]

        run(tmp_path, scenario)


class TestOperatorRoutes:
    def test_metrics_parse_as_prometheus_text(self, tmp_path: Path) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            await post(bed, "/v1/chat/completions", {**CHAT, "model": "beta"})
            async with bed.session.get(bed.url + "/metrics", headers=bed.headers()) as response:
                text = await response.text()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            requests = {
                (s.labels["model"], s.labels["status"]): s.value
                for s in families["sparkd_requests"].samples
                if s.name == "sparkd_requests_total"
            }
            assert requests == {("alpha", "200"): 1.0, ("beta", "200"): 1.0}
            assert {s.labels["model"] for s in families["sparkd_model_starts"].samples} == {"alpha", "beta"}
            stops = [s.labels for s in families["sparkd_model_stops"].samples if s.name.endswith("_total")]
            assert stops == [{"model": "alpha", "reason": "swap"}]
            phases = {
                (s.labels["model"], s.labels["phase"])
                for s in families["sparkd_model_phase"].samples
                if s.value == 1
            }
            assert ("beta", "ready") in phases and ("alpha", "stopped") in phases
            assert "sparkd_time_to_first_byte_seconds" in families
            assert "sparkd_model_start_seconds" in families

        run(tmp_path, scenario)

    def test_metrics_and_status_need_a_key(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            for path in ("/metrics", "/sparkd/status"):
                async with bed.session.get(bed.url + path) as response:
                    assert response.status == 401

        run(tmp_path, scenario)

    def test_status_shows_each_models_phase_and_requests(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            await post(bed, "/v1/chat/completions", CHAT)
            async with bed.session.get(bed.url + "/sparkd/status", headers=bed.headers()) as response:
                status = await response.json()
            assert status["sparkd"]["tenant"] == "alpha"
            alpha = next(m for m in status["models"] if m["id"] == "alpha")
            assert (alpha["phase"], alpha["in_flight"], alpha["queued"]) == ("ready", 0, 0)
            assert alpha["idle_stop_in_seconds"] > 0
            assert alpha["memory_bytes"] == 123 * 2**20

        run(tmp_path, scenario)

    def test_a_model_stopped_while_it_starts_can_start_again(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            bed.units.slow_start.add("sparkd-alpha.service")
            async with bed.session.post(bed.url + "/sparkd/models/alpha/start", headers=bed.headers()) as r:
                assert r.status == 202
            await asyncio.sleep(0.05)
            async with bed.session.post(bed.url + "/sparkd/models/alpha/stop", headers=bed.headers()) as r:
                assert r.status == 202
            await asyncio.sleep(0.05)
            assert bed.runtime.scheduler.phase("alpha").value == "stopped"  # not wedged in stopping
            bed.units.slow_start.clear()
            status, _, _ = await post(bed, "/v1/chat/completions", CHAT)
            assert status == 200

        run(tmp_path, scenario)

    def test_start_stop_and_keep_warm_by_hand(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async def control(path: str) -> dict[str, object]:
                async with bed.session.post(bed.url + path, headers=bed.headers()) as response:
                    assert response.status == 202, await response.text()
                    return dict(await response.json())

            await control("/sparkd/models/alpha/start")
            for _ in range(100):
                if bed.runtime.scheduler.phase("alpha").value == "ready":
                    break
                await asyncio.sleep(0.02)
            await control("/sparkd/models/alpha/keep-warm?for=2h")
            scheduler = bed.runtime.scheduler
            now = bed.runtime.clock()
            assert scheduler.idle_deadline("alpha", now) - now == pytest.approx(7200, abs=5)
            await control("/sparkd/models/alpha/stop")
            assert bed.units.stopped == ["sparkd-alpha.service"]
            async with bed.session.post(
                bed.url + "/sparkd/models/alpha/keep-warm?for=soon", headers=bed.headers()
            ) as response:
                assert response.status == 400

        run(tmp_path, scenario)


class TestLoadingProgress:
    def test_a_streaming_client_hears_what_the_cold_start_is_doing(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            body = json.dumps({**CHAT, "stream": True}).encode()
            async with bed.session.post(
                bed.url + "/v1/chat/completions", data=body, headers=bed.headers()
            ) as r:
                assert r.status == 200
                text = (await r.read()).decode()
            comments = [line for line in text.splitlines() if line.startswith(": sparkd:")]
            assert comments
            assert "starting alpha" in comments[0]
            assert text.rstrip().endswith("data: [DONE]")

        run(tmp_path, scenario, engine_options={"alpha": {"start_delay": 2.5}})

    def test_the_sdk_sees_progress_as_reasoning_and_an_unchanged_answer(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            client = openai.AsyncOpenAI(base_url=bed.url + "/v1", api_key=KEY, max_retries=0)
            stream = await client.chat.completions.create(
                model="beta", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            reasoning, content = [], []
            async for chunk in stream:
                delta = chunk.choices[0].delta
                reasoning.append((delta.model_extra or {}).get("reasoning_content") or "")
                content.append(delta.content or "")
            assert "starting beta" in "".join(reasoning)
            assert "".join(content) == "word0 word1 word2 word3 word4 "
            await client.close()

        run(tmp_path, scenario, engine_options={"beta": {"start_delay": 1.5}})

    def test_a_failure_after_the_stream_began_arrives_as_an_error_event(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            bed.units.fail_start.add("sparkd-alpha.service")
            body = json.dumps({**CHAT, "stream": True}).encode()
            async with bed.session.post(
                bed.url + "/v1/chat/completions", data=body, headers=bed.headers()
            ) as r:
                text = (await r.read()).decode()
            last = text.strip().split("\n\n")[-1]
            assert json.loads(last.removeprefix("data: "))["error"]["code"] == "model_start_failed"

        run(tmp_path, scenario)

    def test_without_streaming_the_client_gets_plain_status_codes(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            bed.units.fail_start.add("sparkd-alpha.service")
            status, _, payload = await post(bed, "/v1/chat/completions", CHAT)
            assert (status, error_code(payload)) == (503, "model_start_failed")

        run(tmp_path, scenario)
