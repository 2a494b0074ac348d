"""The engines' other public routes through sparkd: routed by model, forwarded as they are."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
import pytest

from tests.fake_engine import RECEIVED
from tests.loopback.harness import Bed, error_code, post, run

ROUTES = [
    "/v1/rerank",
    "/rerank",
    "/v2/rerank",
    "/v1/score",
    "/score",
    "/pooling",
    "/classify",
    "/detokenize",
]


class TestRoutedByModel:
    @pytest.mark.parametrize("path", [*ROUTES, "/tokenize"])
    def test_each_route_reaches_the_models_engine_unchanged(self, tmp_path: Path, path: str) -> None:
        async def scenario(bed: Bed) -> None:
            raw = json.dumps({"model": "alpha", "query": "q", "documents": ["a", "b"]}).encode()
            status, headers, _ = await post(bed, path, raw)
            assert status == 200
            assert "X-Request-Id" in headers
            [(received_path, received_headers, body)] = bed.engines["alpha"][RECEIVED].requests
            assert (received_path, body) == (path, raw)
            assert "authorization" not in received_headers

        run(tmp_path, scenario)

    def test_an_alias_is_sent_as_the_models_id(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, headers, _ = await post(bed, "/v1/rerank", {"model": "alpha-alias", "query": "q"})
            assert status == 200 and headers["X-Sparkd-Rewrites"] == "model_name"
            assert json.loads(bed.engines["alpha"][RECEIVED].requests[0][2])["model"] == "alpha"

        run(tmp_path, scenario)

    def test_without_a_model_the_route_is_a_400_that_says_so(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/score", {"text_1": "a", "text_2": "b"})
            assert (status, error_code(payload)) == (400, "missing_model")
            assert bed.units.started == []

        run(tmp_path, scenario)

    @pytest.mark.parametrize(
        "path", ["/sleep", "/wake_up", "/collective_rpc", "/reset_prefix_cache", "/pause", "/server_info"]
    )
    def test_admin_routes_stay_unreachable(self, tmp_path: Path, path: str) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, path, {"model": "alpha"})
            assert (status, error_code(payload)) == (404, "unknown_route")
            assert bed.engines["alpha"][RECEIVED].requests == []

        run(tmp_path, scenario)


class TestStoredResponses:
    def test_a_response_id_goes_back_to_its_model_after_a_swap(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            body = {"model": "beta", "input": "hi"}
            status, _, created = await post(bed, "/v1/responses", body)
            assert status == 200
            response_id = created["id"]
            await post(
                bed,
                "/v1/chat/completions",
                {"model": "alpha", "messages": [{"role": "user", "content": "x"}]},
            )
            async with bed.session.get(f"{bed.url}/v1/responses/{response_id}", headers=bed.headers()) as r:
                assert r.status == 200
                assert (await r.json())["path"] == f"/v1/responses/{response_id}"
            status, _, _ = await post(bed, f"/v1/responses/{response_id}/cancel", b"")
            assert status == 200
            paths = [path for path, _, _ in bed.engines["beta"][RECEIVED].requests]
            assert paths[-2:] == [f"/v1/responses/{response_id}", f"/v1/responses/{response_id}/cancel"]

        run(tmp_path, scenario)

    def test_an_unknown_response_id_is_a_404(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with bed.session.get(f"{bed.url}/v1/responses/resp_nope", headers=bed.headers()) as r:
                assert r.status == 404
                assert (await r.json())["error"]["type"] == "not_found_error"

        run(tmp_path, scenario)


class TestModelCard:
    def test_one_model_is_described_like_in_the_list(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with bed.session.get(f"{bed.url}/v1/models/alpha-alias", headers=bed.headers()) as r:
                card = await r.json()
            assert (card["id"], card["object"], card["state"]) == ("alpha", "model", "stopped")
            assert card["api_families"] == ["openai", "anthropic"]
            async with bed.session.get(f"{bed.url}/v1/models/nope", headers=bed.headers()) as r:
                assert r.status == 404

        run(tmp_path, scenario)


def form(model: str | None, payload: bytes, model_last: bool = False) -> aiohttp.FormData:
    data = aiohttp.FormData()
    if model is not None and not model_last:
        data.add_field("model", model)
    data.add_field("file", io.BytesIO(payload), filename="talk.wav", content_type="audio/wav")
    data.add_field("language", "en")
    if model is not None and model_last:
        data.add_field("model", model)
    return data


class TestAudioUploads:
    @pytest.mark.parametrize("model_last", [False, True])
    def test_an_upload_reaches_its_model_whole_wherever_the_model_field_is(
        self, tmp_path: Path, model_last: bool
    ) -> None:
        async def scenario(bed: Bed) -> None:
            audio = bytes(range(256)) * 12_000  # 3 MB: beyond what is kept in memory
            async with bed.session.post(
                f"{bed.url}/v1/audio/transcriptions",
                data=form("alpha", audio, model_last),
                headers=bed.headers(),
            ) as r:
                assert r.status == 200, await r.text()
                answer = await r.json()
            [(path, headers, body)] = bed.engines["alpha"][RECEIVED].requests
            assert path == "/v1/audio/transcriptions"
            assert answer["bytes"] == len(body) and audio in body
            assert headers["Content-Type"].startswith("multipart/form-data; boundary=")

        run(tmp_path, scenario)

    def test_an_upload_over_the_limit_is_a_413_and_wakes_nothing(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with bed.session.post(
                f"{bed.url}/v1/audio/translations",
                data=form("alpha", b"x" * 3_000_000),
                headers=bed.headers(),
            ) as r:
                assert r.status == 413
                assert (await r.json())["error"]["code"] == "body_too_large"
            assert bed.units.started == []

        run(tmp_path, scenario, max_upload=1_000_000)

    def test_a_form_without_a_model_is_a_400(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with bed.session.post(
                f"{bed.url}/v1/audio/transcriptions", data=form(None, b"abc"), headers=bed.headers()
            ) as r:
                assert r.status == 400
                assert (await r.json())["error"]["code"] == "missing_model"

        run(tmp_path, scenario)

    def test_a_body_that_is_not_a_form_is_a_400(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            status, _, payload = await post(bed, "/v1/audio/transcriptions", {"model": "alpha"})
            assert (status, error_code(payload)) == (400, "invalid_form")

        run(tmp_path, scenario)
