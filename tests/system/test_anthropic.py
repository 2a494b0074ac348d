"""The official `anthropic` SDK against sparkd in front of the real vLLM CPU demo: cold, streamed, counted."""

from __future__ import annotations

import anthropic
import pytest
from anthropic.types import MessageParam, ToolParam
from testbed import PrivateSystemd

from tests.system.conftest import wait_for
from tests.system.sparkd_bed import KEY, URL

HELLO: list[MessageParam] = [{"role": "user", "content": "Say hello in three words."}]


def sdk() -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0, timeout=300)


def test_a_streamed_message_waits_for_a_cold_model_then_arrives(sparkd: PrivateSystemd) -> None:
    sparkd.run("systemctl", "stop", "sparkd-demo.service")
    wait_for(lambda: sparkd.unit_state("sparkd-demo.service") != "active", 60, "the demo model to stop")
    with sdk() as client, client.messages.stream(model="demo", max_tokens=24, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip()
    assert final.usage.output_tokens > 0
    assert sparkd.unit_state("sparkd-demo.service") == "active"


def test_a_message_and_its_token_count(sparkd: PrivateSystemd) -> None:
    with sdk() as client:
        reply = client.messages.create(model="demo", max_tokens=16, messages=HELLO)
        assert reply.role == "assistant" and reply.content and reply.content[0].type == "text"
        counted = client.messages.count_tokens(model="demo", messages=HELLO)
    assert counted.input_tokens > 5


def test_tools_are_stripped_for_the_demo_which_has_no_tool_parser(sparkd: PrivateSystemd) -> None:
    """vLLM without a tool parser refuses tools; sparkd strips them for a model marked without tools."""
    weather: ToolParam = {
        "name": "weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with sdk() as client:
        raw = client.messages.with_raw_response.create(
            model="demo", max_tokens=16, messages=HELLO, tools=[weather]
        )
    assert "tools_stripped" in raw.headers["X-Sparkd-Rewrites"]
    assert raw.parse().content


def test_a_refusal_is_the_sdks_own_exception(sparkd: PrivateSystemd) -> None:
    with sdk() as client, pytest.raises(anthropic.NotFoundError) as refused:
        client.messages.create(model="no-such-model", max_tokens=16, messages=HELLO)
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "not_found_error"
