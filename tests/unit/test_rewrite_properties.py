"""Properties of the rewrites over generated bodies and models: no crash, within the context, idempotent."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sparkd.catalogue import Model, ToolSupport
from sparkd.plan import RewriteError
from sparkd.rewrite import rewrite
from tests.unit.test_rewrite import CHAT, TOOL, image, model, text

EVERY_FLAG = dict(
    normalize_text_content=True,
    strict_alternation=True,
    llama_tool_guard=True,
    thinking_off_by_default=True,
    binary_thinking=True,
    fill_max_tokens=True,
    cap_max_tokens=True,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant", "tool"]),
        "content": st.one_of(
            st.text(max_size=200), st.lists(st.sampled_from([text("t"), image()]), max_size=3)
        ),
    },
)
CHAT_BODY = st.fixed_dictionaries(
    {"messages": st.lists(MESSAGE, max_size=6)},
    optional={
        "max_tokens": st.integers(-5, 10**7),
        "tools": st.just([TOOL]),
        "reasoning_effort": st.sampled_from(sorted(["none", "high", "odd"])),
        "thinking": st.booleans(),
    },
)
MODELS = st.builds(
    lambda ctx, tools, flags: model(context=ctx, tools=tools, **flags),
    st.integers(1024, 300_000),
    st.sampled_from(list(ToolSupport)),
    st.fixed_dictionaries({k: st.booleans() for k in EVERY_FLAG}),
)


@settings(max_examples=300, deadline=None)
@given(JSON, MODELS, st.sampled_from([CHAT, "completions", "responses", "embeddings"]))
def test_arbitrary_json_never_crashes_the_rewriter(document: Any, m: Model, endpoint: str) -> None:
    if not isinstance(document, dict):
        return  # the proxy refuses non-objects before any rewrite
    with contextlib.suppress(RewriteError):
        rewrite(document, m, endpoint)


@settings(max_examples=300, deadline=None)
@given(CHAT_BODY, MODELS)
def test_the_budget_plus_the_prompt_never_exceeds_the_context(body: dict[str, Any], m: Model) -> None:
    plan = rewrite(body, m, CHAT)
    budget = plan.document.get("max_tokens")
    if m.rewrites.cap_max_tokens and isinstance(budget, int) and budget > 1:
        assert plan.prompt_estimate + budget <= m.context_length


@settings(max_examples=300, deadline=None)
@given(CHAT_BODY, MODELS)
def test_rewriting_twice_equals_rewriting_once(body: dict[str, Any], m: Model) -> None:
    once = rewrite(body, m, CHAT).document
    assert rewrite(once, m, CHAT).document == once


@settings(max_examples=200, deadline=None)
@given(CHAT_BODY)
def test_with_every_rewrite_off_nothing_changes(body: dict[str, Any]) -> None:
    original = copy.deepcopy(body)
    plan = rewrite(body, model(), CHAT)
    assert plan.applied == []
    assert plan.document == original
    assert body == original  # the caller's document is never mutated
