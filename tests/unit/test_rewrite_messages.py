"""The rewrites in their Anthropic Messages form, rule by rule."""

from __future__ import annotations

from typing import Any

import pytest

from sparkd.catalogue import ToolSupport
from sparkd.plan import RewriteError
from sparkd.rewrite import GUARD_INSTRUCTION, RAW_JSON_NOTE
from sparkd.rewrite_messages import COUNT_TOKENS, MESSAGES, count_request, rewrite_messages
from tests.unit.test_rewrite import model, user

TOOL = {
    "name": "read",
    "description": "Read files",
    "input_schema": {
        "type": "object",
        "properties": {"paths": {"type": "array", "items": {"type": "string"}}},
    },
}


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 100, "messages": list(messages) or [user("hi")], **fields}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


class TestBudget:
    def test_max_tokens_beyond_the_context_is_capped(self) -> None:
        m = model(context=8192, fill_max_tokens=True, cap_max_tokens=True)
        plan = rewrite_messages(body(max_tokens=100_000), m, MESSAGES)
        assert plan.applied == ["max_tokens_capped"]
        assert 0 < plan.document["max_tokens"] < 8192 - plan.prompt_estimate

    def test_a_missing_max_tokens_is_filled_since_the_api_requires_it(self) -> None:
        m = model(context=8192, fill_max_tokens=True)
        document = body()
        del document["max_tokens"]
        plan = rewrite_messages(document, m, MESSAGES)
        assert plan.applied == ["max_tokens_filled"]
        assert plan.document["max_tokens"] > 0

    def test_the_system_prompt_counts_toward_the_prompt(self) -> None:
        m = model(context=32768, fill_max_tokens=True, cap_max_tokens=True)
        short = rewrite_messages(body(max_tokens=100_000), m, MESSAGES)
        long = rewrite_messages(body(max_tokens=100_000, system="x" * 40_000), m, MESSAGES)
        assert long.prompt_estimate >= short.prompt_estimate + 10_000

    def test_a_count_of_tokens_has_no_budget(self) -> None:
        m = model(context=8192, fill_max_tokens=True, cap_max_tokens=True)
        document = body()
        del document["max_tokens"]
        assert rewrite_messages(document, m, COUNT_TOKENS).applied == []

    def test_the_engines_count_request_carries_only_what_makes_the_prompt(self) -> None:
        document = body(system="be brief", tools=[TOOL], temperature=0.2, stream=True)
        assert set(count_request(document)) == {"model", "messages", "system", "tools"}


class TestTools:
    def test_a_model_without_tools_gets_none(self) -> None:
        m = model(tools=ToolSupport.NONE)
        plan = rewrite_messages(body(tools=[TOOL], tool_choice={"type": "auto"}), m, MESSAGES)
        assert plan.applied == ["tools_stripped"]
        assert "tools" not in plan.document and "tool_choice" not in plan.document

    def test_force_required_asks_for_a_tool_until_a_tool_result_came_back(self) -> None:
        m = model(tools=ToolSupport.FORCE_REQUIRED)
        assert rewrite_messages(body(tools=[TOOL]), m, MESSAGES).document["tool_choice"] == {"type": "any"}
        result = user([{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}])
        assert "tool_choice" not in rewrite_messages(body(result, tools=[TOOL]), m, MESSAGES).document

    def test_the_tool_guard_instructs_in_the_system_prompt_and_annotates_schemas(self) -> None:
        m = model(llama_tool_guard=True)
        plan = rewrite_messages(body(system="be brief", tools=[TOOL]), m, MESSAGES)
        assert plan.document["system"][0] == text(GUARD_INSTRUCTION)
        assert plan.document["system"][1] == text("be brief")
        paths = plan.document["tools"][0]["input_schema"]["properties"]["paths"]
        assert RAW_JSON_NOTE in paths["description"]
        assert rewrite_messages(plan.document, m, MESSAGES).applied == []  # guarded once


class TestAlternation:
    def test_system_folds_into_the_first_user_turn_and_turns_merge(self) -> None:
        m = model(strict_alternation=True)
        document = body(user("a"), user([text("b")]), {"role": "assistant", "content": "c"}, system="rules")
        plan = rewrite_messages(document, m, MESSAGES)
        assert "system" not in plan.document
        [first, second] = plan.document["messages"]
        assert first["content"] == [text("[System Instruction]\nrules\n\n"), text("a"), text("b")]
        assert second == {"role": "assistant", "content": "c"}

    def test_an_assistant_first_conversation_gets_a_user_turn_before_it(self) -> None:
        m = model(strict_alternation=True)
        plan = rewrite_messages(body({"role": "assistant", "content": "hello"}), m, MESSAGES)
        assert [t["role"] for t in plan.document["messages"]] == ["user", "assistant"]

    def test_an_alternating_conversation_is_left_alone(self) -> None:
        m = model(strict_alternation=True)
        assert rewrite_messages(body(user("a")), m, MESSAGES).applied == []


class TestContent:
    def test_text_blocks_become_one_string_for_a_text_only_template(self) -> None:
        m = model(normalize_text_content=True)
        plan = rewrite_messages(body(user([text("a"), text("b")]), system=[text("s")]), m, MESSAGES)
        assert plan.document["messages"][0]["content"] == "a\nb"
        assert plan.document["system"] == "s"

    def test_tool_blocks_are_kept_as_they_are(self) -> None:
        m = model(normalize_text_content=True)
        blocks = [text("see"), {"type": "tool_result", "tool_use_id": "t", "content": "ok"}]
        plan = rewrite_messages(body(user(blocks)), m, MESSAGES)
        assert plan.document["messages"][0]["content"] == blocks

    def test_the_callers_document_is_never_changed(self) -> None:
        m = model(normalize_text_content=True, strict_alternation=True)
        document = body(user([text("a")]), user("b"), system="s")
        before = repr(document)
        rewrite_messages(document, m, MESSAGES)
        assert repr(document) == before


class TestThinking:
    @pytest.mark.parametrize(
        ("fields", "enabled"),
        [
            ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, True),
            ({"thinking": {"type": "disabled"}}, False),
            ({"output_config": {"effort": "none"}}, False),
            ({"output_config": {"effort": "high"}}, True),
        ],
    )
    def test_thinking_and_effort_become_the_templates_switch(
        self, fields: dict[str, Any], enabled: bool
    ) -> None:
        plan = rewrite_messages(body(**fields), model(binary_thinking=True), MESSAGES)
        assert plan.applied == ["thinking_mapped"]
        assert plan.document["chat_template_kwargs"] == {"enable_thinking": enabled, "thinking": enabled}

    def test_thinking_is_off_by_default_unless_the_client_asks(self) -> None:
        m = model(thinking_off_by_default=True)
        assert (
            rewrite_messages(body(), m, MESSAGES).document["chat_template_kwargs"]["enable_thinking"] is False
        )
        asked = rewrite_messages(body(thinking={"type": "enabled", "budget_tokens": 1024}), m, MESSAGES)
        assert "chat_template_kwargs" not in asked.document


class TestBadBodies:
    @pytest.mark.parametrize(
        ("document", "param"),
        [
            ({"model": "m", "max_tokens": 1, "messages": "hi"}, "messages"),
            ({"model": "m", "max_tokens": 1, "messages": [{"content": "x"}]}, "messages[0]"),
            (
                {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 3}]},
                "messages[0].content",
            ),
            ({"model": "m", "max_tokens": 1, "messages": [], "system": 3}, "system"),
            ({"model": "m", "max_tokens": "lots", "messages": []}, "max_tokens"),
        ],
    )
    def test_a_wrong_type_is_a_400_naming_the_field(self, document: dict[str, Any], param: str) -> None:
        with pytest.raises(RewriteError) as refused:
            rewrite_messages(document, model(fill_max_tokens=True, cap_max_tokens=True), MESSAGES)
        assert refused.value.param == param
