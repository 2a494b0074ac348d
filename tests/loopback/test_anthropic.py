"""Anthropic's Messages API through sparkd on loopback, spoken by the official `anthropic` SDK."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anthropic
import pytest
from anthropic.types import MessageParam, ToolParam

from tests.fake_engine import RECEIVED
from tests.loopback.harness import KEY, Bed, post, run
from tests.waiting import eventually

HELLO: list[MessageParam] = [{"role": "user", "content": "hi"}]


def client(bed: Bed, key: str = KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=bed.url, api_key=key, max_retries=0)


def anthropic_error(payload: dict[str, object]) -> str:
    """The error's type, after checking the body is Anthropic's envelope and nothing else."""
    assert payload["type"] == "error", payload
    error = payload["error"]
    assert isinstance(error, dict) and set(error) == {"type", "message"}, payload
    return str(error["type"])


class TestMessages:
    def test_a_message_is_answered_and_the_engine_sees_no_key(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with client(bed) as sdk:
                reply = await sdk.messages.create(model="alpha", max_tokens=64, messages=HELLO)
            assert reply.content[0].type == "text" and reply.content[0].text.startswith("word0")
            [(path, headers, body)] = bed.engines["alpha"][RECEIVED].requests
            assert path == "/v1/messages"
            assert "x-api-key" not in headers and "authorization" not in headers
            assert headers["anthropic-version"]  # the SDK's, passed on
            assert json.loads(body)["max_tokens"] == 64

        run(tmp_path, scenario)

    def test_a_streamed_message_arrives_event_by_event(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with (
                client(bed) as sdk,
                sdk.messages.stream(model="alpha", max_tokens=64, messages=HELLO) as stream,
            ):
                text = "".join([piece async for piece in stream.text_stream])
                final = await stream.get_final_message()
            assert text == "word0 word1 word2 word3 word4 "
            assert final.stop_reason == "end_turn"

        run(tmp_path, scenario)

    def test_a_cold_start_streams_comments_that_the_sdk_skips(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            body = {"model": "alpha", "max_tokens": 64, "messages": HELLO, "stream": True}
            async with bed.session.post(bed.url + "/v1/messages", json=body, headers=bed.headers()) as r:
                raw = (await r.read()).decode()
            assert raw.startswith(": sparkd: ")  # progress while the model starts
            assert raw.index("event: message_start") < raw.index("event: message_stop")
            async with (
                client(bed) as sdk,
                sdk.messages.stream(model="alpha", max_tokens=8, messages=HELLO) as stream,
            ):
                assert (await stream.get_final_message()).content

        run(tmp_path, scenario, engine_options={"alpha": {"start_delay": 1.5}})

    def test_tokens_are_counted_by_the_engine(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            async with client(bed) as sdk:
                counted = await sdk.messages.count_tokens(model="alpha", messages=HELLO)
            assert counted.input_tokens == 7
            [(path, _, _)] = bed.engines["alpha"][RECEIVED].requests
            assert path == "/v1/messages/count_tokens"

        run(tmp_path, scenario)

    def test_an_engine_dying_mid_stream_ends_it_with_an_error_event(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            body = {"model": "alpha", "max_tokens": 64, "messages": HELLO, "stream": True}
            await post(bed, "/v1/chat/completions", {"model": "alpha", "messages": HELLO})  # warm
            async with bed.session.post(bed.url + "/v1/messages", json=body, headers=bed.headers()) as r:
                raw = (await r.read()).decode()
            last = raw.strip().split("\n\n")[-1]
            assert last.startswith("event: error\ndata: ")
            assert anthropic_error(json.loads(last.split("data: ", 1)[1])) == "api_error"

        run(tmp_path, scenario, engine_options={"alpha": {"die_after": 2, "chunks": 10}})

    def test_tools_are_stripped_for_a_model_without_tool_support(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            tool: ToolParam = {"name": "read", "input_schema": {"type": "object", "properties": {}}}
            async with client(bed) as sdk:
                reply = await sdk.messages.with_raw_response.create(
                    model="alpha", max_tokens=64, messages=HELLO, tools=[tool]
                )
            assert "tools_stripped" in reply.headers["X-Sparkd-Rewrites"]
            [(_, _, body)] = bed.engines["alpha"][RECEIVED].requests
            assert "tools" not in json.loads(body)

        run(tmp_path, scenario, more={"alpha": 'tool_support = "none"'})

    def test_without_rewrites_the_body_arrives_byte_for_byte(self, tmp_path: Path) -> None:
        async def scenario(bed: Bed) -> None:
            raw = b'{"model":"beta","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
            status, _, _ = await post(bed, "/v1/messages", raw)
            assert status == 200
            assert bed.engines["beta"][RECEIVED].requests[0][2] == raw

        run(tmp_path, scenario)


class TestErrorsInAnthropicsEnvelope:
    """Each refusal raises the SDK's own exception class, with Anthropic's error type."""

    @pytest.mark.parametrize(
        ("case", "exception", "kind"),
        [
            ("wrong key", anthropic.AuthenticationError, "authentication_error"),
            ("unknown model", anthropic.NotFoundError, "not_found_error"),
            ("bad field", anthropic.BadRequestError, "invalid_request_error"),
            ("openai-only model", anthropic.BadRequestError, "invalid_request_error"),
            ("too large", anthropic.APIStatusError, "request_too_large"),
            ("queue full", anthropic.RateLimitError, "rate_limit_error"),
            ("start failed", anthropic.InternalServerError, "overloaded_error"),
        ],
    )
    def test_each_refusal(
        self, tmp_path: Path, case: str, exception: type[anthropic.APIStatusError], kind: str
    ) -> None:
        async def scenario(bed: Bed) -> None:
            model, key, messages = "alpha", KEY, HELLO
            if case == "wrong key":
                key = "wrong-key-0123456789abcdef"
            elif case == "unknown model":
                model = "no-such-model"
            elif case == "bad field":
                messages = [{"role": "user", "content": 5}]  # type: ignore[list-item,misc]
            elif case == "openai-only model":
                model = "helper"
            elif case == "too large":
                messages = [{"role": "user", "content": "x" * 2_000_000}]
            elif case == "queue full":
                bed.units.slow_start.add("sparkd-alpha.service")
                chat = {"model": "alpha", "messages": HELLO}
                waiting = asyncio.ensure_future(post(bed, "/v1/chat/completions", chat))
                await eventually(lambda: bed.runtime.scheduler.queued("alpha") == 1, "a request in the queue")
            elif case == "start failed":
                bed.units.fail_start.add("sparkd-alpha.service")
            async with client(bed, key) as sdk:
                with pytest.raises(exception) as raised:
                    await sdk.messages.create(model=model, max_tokens=16, messages=messages)
            body = raised.value.body
            assert isinstance(body, dict) and anthropic_error(body) == kind
            if kind in ("rate_limit_error", "overloaded_error"):
                assert int(raised.value.response.headers["Retry-After"]) >= 1
            if case == "queue full":
                waiting.cancel()

        run(tmp_path, scenario, queue_cap=1)
