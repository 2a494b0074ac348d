"""The gateway's lifecycle on loopback: swaps and queues, engines failing, operator routes, progress."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import openai
import pytest
from aiohttp import web

from tests.fake_engine import RECEIVED, make_app
from tests.loopback.harness import CHAT, KEY, Bed, error_code, post, run
from tests.waiting import eventually


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

    def test_page_cache_is_dropped_before_a_model_that_fits_only_without_it(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, _ = await post(bed, "/v1/chat/completions", CHAT)
            assert status == 200
            # alpha needed 40 GiB: 64 are available but only 8 free, the rest is page cache.
            assert bed.units.started == ["sparkd-drop-caches.service", "sparkd-alpha.service"]
            status, _, _ = await post(bed, "/v1/chat/completions", {**CHAT, "model": "beta"})
            assert status == 200  # beta never ran: nothing says it needs more than is free
            assert bed.units.started[2:] == ["sparkd-beta.service"]

        run(
            tmp_path,
            scenario,
            drop_page_cache="yes",
            free_memory=8 * 2**30,
            memory_peaks={"alpha": 40 * 2**30},
        )

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
            await eventually(
                lambda: bed.engines["alpha"][RECEIVED].cancelled > 0, "the engine to see the close"
            )
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
            await eventually(lambda: "sparkd-alpha.service" in bed.units.started, "systemd to be asked")
            async with bed.session.post(bed.url + "/sparkd/models/alpha/stop", headers=bed.headers()) as r:
                assert r.status == 202
            # Not wedged in stopping:
            await eventually(lambda: bed.runtime.scheduler.phase("alpha").value == "stopped", "alpha stopped")
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
            await eventually(lambda: bed.runtime.scheduler.phase("alpha").value == "ready", "alpha ready")
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
