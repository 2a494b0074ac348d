"""Request rewrites, rule by rule, with the original validator's bugs as regression cases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sparkd.budget import estimate_prompt_tokens
from sparkd.catalogue import Model, Rewrites, ToolSupport, load_catalogue
from sparkd.plan import RewriteError
from sparkd.rewrite import GUARD_INSTRUCTION, QUESTION_NOTE, RAW_JSON_NOTE, rewrite

CHAT = "chat/completions"
OFF = Rewrites(fill_max_tokens=False, cap_max_tokens=False)


def model(
    context: int = 8192, tools: ToolSupport = ToolSupport.FULL, multimodal: bool = False, **flags: Any
) -> Model:
    rewrites = Rewrites(**{"fill_max_tokens": False, "cap_max_tokens": False, **flags})
    return Model(
        id="m",
        image="i",
        weights="w",
        context_length=context,
        tool_support=tools,
        multimodal=multimodal,
        rewrites=rewrites,
    )


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def image(url: str = "data:image/png;base64,AAAA") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "parameters": {
            "type": "object",
            "properties": {
                "paths": {"type": "array", "items": {"type": "string"}},
                "opts": {"type": "object", "description": "Options"},
                "n": {"type": "integer"},
            },
        },
    },
}


class TestTokenBudget:
    def test_a_missing_budget_is_filled_with_what_is_left(self) -> None:
        m = model(context=131072, fill_max_tokens=True, cap_max_tokens=True)
        plan = rewrite({"model": "m", "messages": [user("hi")]}, m, CHAT)
        # the original's verified figure for gpt-oss-20b and "hi": 131072 - (500 + 20 + 1) - 13107
        assert plan.document["max_tokens"] == plan.document["max_completion_tokens"] == 117444
        assert plan.applied == ["max_tokens_filled"]

    def test_an_oversized_budget_is_capped_and_both_fields_agree(self) -> None:
        m = model(context=8192, fill_max_tokens=True, cap_max_tokens=True)
        plan = rewrite({"model": "m", "messages": [user("hi")], "max_completion_tokens": 100000}, m, CHAT)
        assert plan.document["max_tokens"] == plan.document["max_completion_tokens"] == 8192 - 521 - 819
        assert plan.applied == ["max_tokens_capped"]
        assert plan.wants_exact_count

    def test_a_budget_that_fits_is_kept(self) -> None:
        m = model(context=8192, fill_max_tokens=True, cap_max_tokens=True)
        plan = rewrite({"model": "m", "messages": [user("hi")], "max_tokens": 100}, m, CHAT)
        assert plan.document["max_completion_tokens"] == 100
        assert plan.applied == ["max_tokens_normalised"]

    def test_the_fixed_buffer_of_the_qwen_lanes(self) -> None:
        # The original's unit test: an 800,000-character prompt on qwen3.6-27b-fp8.
        qwen = load_catalogue().resolve("qwen3.6-27b-fp8")
        assert qwen is not None
        plan = rewrite({"model": "x", "messages": [user("a" * 800_000)]}, qwen, CHAT)
        assert plan.document["max_tokens"] == 262144 - (200000 + 520) - 4096

    def test_prompt_and_input_and_tools_count_unlike_the_original(self) -> None:
        assert estimate_prompt_tokens({"prompt": "a" * 4000}, "completions") == 1500
        assert estimate_prompt_tokens({"input": "a" * 4000}, "responses") == 1500
        with_tools = estimate_prompt_tokens({"messages": [user("hi")], "tools": [TOOL] * 10}, CHAT)
        assert with_tools > estimate_prompt_tokens({"messages": [user("hi")]}, CHAT) + 100

    def test_each_endpoint_gets_its_own_budget_field(self) -> None:
        m = model(fill_max_tokens=True, cap_max_tokens=True)
        completions = rewrite({"model": "m", "prompt": "hi"}, m, "completions").document
        responses = rewrite({"model": "m", "input": "hi"}, m, "responses").document
        assert "max_completion_tokens" not in completions and completions["max_tokens"] > 0
        assert set(responses) == {"model", "input", "max_output_tokens"}

    def test_embeddings_carry_no_budget(self) -> None:
        m = model(fill_max_tokens=True, cap_max_tokens=True)
        assert rewrite({"model": "m", "input": "hi"}, m, "embeddings").applied == []

    def test_the_engine_count_replaces_the_guess(self) -> None:
        m = model(context=8192, fill_max_tokens=True, cap_max_tokens=True)
        body = {"model": "m", "messages": [user("x" * 20000)], "max_tokens": 8000}
        first = rewrite(body, m, CHAT)
        assert first.wants_exact_count
        exact = rewrite(body, m, CHAT, exact_prompt=3000)
        assert exact.document["max_tokens"] == 8192 - 3000 - 64
        assert not exact.wants_exact_count

    def test_a_budget_of_the_wrong_type_is_refused_by_name(self) -> None:
        m = model(fill_max_tokens=True, cap_max_tokens=True)
        with pytest.raises(RewriteError) as caught:
            rewrite({"model": "m", "messages": [], "max_tokens": "lots"}, m, CHAT)
        assert caught.value.param == "max_tokens"


class TestContentAndTools:
    def test_array_content_becomes_a_string_for_text_only_templates(self) -> None:
        m = model(normalize_text_content=True)
        plan = rewrite({"messages": [user([text("a"), text("b")])]}, m, CHAT)
        assert plan.document["messages"] == [user("a\nb")]
        assert plan.applied == ["text_content"]

    def test_multimodal_models_keep_their_parts(self) -> None:
        m = model(multimodal=True, normalize_text_content=True)
        body = {"messages": [user([text("a"), image()])]}
        assert rewrite(body, m, CHAT).document == body

    def test_tools_are_stripped_for_models_without_tool_support(self) -> None:
        m = model(tools=ToolSupport.NONE)
        body = {
            "messages": [user("hi")],
            **{f: [] for f in ("tools", "functions")},
            "tool_choice": "auto",
            "function_call": "auto",
            "parallel_tool_calls": True,
        }
        plan = rewrite(body, m, CHAT)
        assert plan.document == {"messages": [user("hi")]}
        assert plan.applied == ["tools_stripped"]

    @pytest.mark.parametrize(
        ("choice", "history", "forced"),
        [
            (None, [], True),
            ("auto", [], True),
            ("none", [], False),
            ({"type": "function", "function": {"name": "read"}}, [], False),
            (None, [{"role": "tool", "tool_call_id": "1", "content": "done"}], False),
        ],
    )
    def test_tool_choice_is_forced_only_before_a_first_tool_result(
        self, choice: Any, history: list[dict[str, Any]], forced: bool
    ) -> None:
        m = model(tools=ToolSupport.FORCE_REQUIRED)
        body: dict[str, Any] = {"messages": [user("fix it"), *history], "tools": [TOOL]}
        if choice is not None:
            body["tool_choice"] = choice
        result = rewrite(body, m, CHAT).document.get("tool_choice")
        assert (result == "required") is forced

    def test_no_tools_no_forcing(self) -> None:
        m = model(tools=ToolSupport.FORCE_REQUIRED)
        assert "tool_choice" not in rewrite({"messages": [user("hi")]}, m, CHAT).document


class TestAlternation:
    def test_system_folds_into_the_first_user_turn(self) -> None:
        m = model(strict_alternation=True)
        body = {"messages": [{"role": "system", "content": "Be brief."}, user("hi")]}
        assert rewrite(body, m, CHAT).document["messages"] == [user("[System Instruction]\nBe brief.\n\nhi")]

    def test_consecutive_turns_merge_and_the_user_speaks_first(self) -> None:
        m = model(strict_alternation=True)
        body = {"messages": [{"role": "assistant", "content": "Hello"}, user("a"), user("b")]}
        assert rewrite(body, m, CHAT).document["messages"] == [
            user(" "),
            {"role": "assistant", "content": "Hello"},
            user("a\n\nb"),
        ]

    def test_regression_array_system_prompt_and_images_survive(self) -> None:
        # Original bug 2: "[object Object]" and lost images on Gemma/Llama ids.
        m = model(strict_alternation=True, multimodal=True)
        body = {
            "messages": [
                {"role": "system", "content": [text("Rules")]},
                user([text("look"), image()]),
                user([image("data:image/png;base64,BBBB")]),
            ]
        }
        [first] = rewrite(body, m, CHAT).document["messages"]
        assert first["content"] == [
            text("[System Instruction]\nRules\n\n"),
            text("look"),
            image(),
            image("data:image/png;base64,BBBB"),
        ]
        assert "[object Object]" not in json.dumps(first)

    def test_regression_parallel_tool_results_keep_their_ids(self) -> None:
        # Original bug 3: consecutive tool messages merged, later tool_call_ids lost.
        m = model(strict_alternation=True)
        results = [{"role": "tool", "tool_call_id": str(i), "content": f"r{i}"} for i in range(3)]
        calls = {"role": "assistant", "content": None, "tool_calls": [{"id": str(i)} for i in range(3)]}
        body = {"messages": [user("go"), calls, *results]}
        out = rewrite(body, m, CHAT).document["messages"]
        assert [msg.get("tool_call_id") for msg in out if msg["role"] == "tool"] == ["0", "1", "2"]

    def test_regression_a_merge_that_once_hit_a_typo_is_rewritten_not_forwarded_raw(self) -> None:
        # Original bug 1: a ReferenceError made the validator forward the untouched body.
        m = model(strict_alternation=True, fill_max_tokens=True, cap_max_tokens=True)
        body = {
            "messages": [
                user("a"),
                user("b"),
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": "d"},
            ],
            "max_tokens": 10**9,
        }
        plan = rewrite(body, m, CHAT)
        assert [msg["role"] for msg in plan.document["messages"]] == ["user", "assistant"]
        assert plan.document["max_tokens"] < 8192

    def test_triggers_are_fields_never_names(self) -> None:
        # Original bug 10: substring rules. A model called "llama" without the flags is left alone.
        llama_named = Model(id="llama-3.3-70b-x", image="i", weights="w", context_length=8192, rewrites=OFF)
        body = {"messages": [{"role": "system", "content": "s"}, user("hi")], "tools": [TOOL]}
        assert rewrite(body, llama_named, CHAT).applied == []


class TestLlamaGuard:
    def test_the_guard_instructs_and_annotates_array_and_object_parameters(self) -> None:
        m = model(llama_tool_guard=True)
        plan = rewrite({"messages": [user("hi")], "tools": [TOOL]}, m, CHAT)
        messages, [tool] = plan.document["messages"], plan.document["tools"]
        assert messages[0] == {"role": "system", "content": GUARD_INSTRUCTION}
        properties = tool["function"]["parameters"]["properties"]
        assert properties["paths"]["description"] == RAW_JSON_NOTE
        assert properties["opts"]["description"] == f"Options ({RAW_JSON_NOTE})"
        assert "description" not in properties["n"]

    def test_regression_a_question_tool_without_description_gets_no_undefined(self) -> None:
        # Original bug 4: "undefined Only use this tool ...".
        m = model(llama_tool_guard=True)
        question = {"type": "function", "function": {"name": "question", "parameters": {"type": "object"}}}
        [tool] = rewrite({"messages": [user("hi")], "tools": [question]}, m, CHAT).document["tools"]
        assert tool["function"]["description"] == QUESTION_NOTE

    def test_without_tools_there_is_nothing_to_guard(self) -> None:
        assert rewrite({"messages": [user("hi")]}, model(llama_tool_guard=True), CHAT).applied == []


class TestThinking:
    def test_thinking_is_off_by_default_for_listed_models(self) -> None:
        plan = rewrite({"messages": [user("hi")]}, model(thinking_off_by_default=True), CHAT)
        assert plan.document["chat_template_kwargs"] == {"enable_thinking": False, "thinking": False}

    def test_an_explicit_client_flag_wins(self) -> None:
        body = {"messages": [user("hi")], "chat_template_kwargs": {"enable_thinking": True, "x": 1}}
        plan = rewrite(body, model(thinking_off_by_default=True), CHAT)
        assert plan.document["chat_template_kwargs"] == {"enable_thinking": True, "x": 1}

    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            ({"thinking": True}, True),
            ({"thinking": False}, False),
            ({"reasoning_effort": "none"}, False),
            ({"reasoning_effort": "low"}, True),
            ({"reasoningEffort": "HIGH"}, True),
            ({"reasoning": {"effort": "none"}}, False),
            ({"thinking": {"type": "enabled"}}, True),
        ],
    )
    def test_client_spellings_map_to_binary_thinking(self, extra: dict[str, Any], expected: bool) -> None:
        m = model(binary_thinking=True, thinking_off_by_default=True)
        out = rewrite({"messages": [user("hi")], **extra}, m, CHAT).document
        assert out["chat_template_kwargs"] == {"enable_thinking": expected, "thinking": expected}
        assert not {"thinking", "reasoning_effort", "reasoningEffort", "reasoning"} & set(out)

    def test_reasoning_keeps_its_other_fields(self) -> None:
        m = model(binary_thinking=True)
        out = rewrite({"messages": [], "reasoning": {"effort": "high", "summary": "auto"}}, m, CHAT).document
        assert out["reasoning"] == {"summary": "auto"}

    def test_an_unknown_effort_is_dropped_and_ignored(self) -> None:
        m = model(binary_thinking=True)
        out = rewrite({"messages": [], "reasoning_effort": "extreme"}, m, CHAT).document
        assert "reasoning_effort" not in out and out.get("chat_template_kwargs") == {}

    def test_other_models_pass_effort_through(self) -> None:
        body = {"messages": [], "reasoning": {"effort": "high"}}
        assert rewrite(body, model(), CHAT).document == body

    @pytest.mark.parametrize(
        ("field", "value"), [("thinking", "yes"), ("chat_template_kwargs", [1]), ("reasoning_effort", 3)]
    )
    def test_wrong_types_are_refused_by_name(self, field: str, value: Any) -> None:
        m = model(binary_thinking=True, thinking_off_by_default=True)
        with pytest.raises(RewriteError) as caught:
            rewrite({"messages": [], field: value}, m, CHAT)
        assert caught.value.param == field


class TestBadBodies:
    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"messages": "hi"}, "messages"),
            ({"messages": [1]}, "messages[0]"),
            ({"messages": [{"content": "x"}]}, "messages[0].role"),
            ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
            ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content[0]"),
        ],
    )
    def test_a_body_with_wrong_types_names_the_field(self, body: dict[str, Any], param: str) -> None:
        with pytest.raises(RewriteError) as caught:
            rewrite(body, model(), CHAT)
        assert caught.value.param == param
