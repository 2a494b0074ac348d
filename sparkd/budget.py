"""The token budget: a completion limit that fits the model's context, from an estimate or an exact count.

The estimate is generous (characters / 4, plus per-message and per-image
costs); when it leaves under a quarter of the context, or would cap the
request, the proxy asks the engine's /tokenize and the budget is computed
again from the exact count.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sparkd.catalogue import Model
from sparkd.plan import Plan, RewriteError

CHARS_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 20
OVERHEAD_TOKENS = 500
IMAGE_TOKENS = 1500
# With an exact count from the engine's tokenizer, only the template's own
# tokens are unknown; a small margin covers them.
EXACT_COUNT_MARGIN = 64
# Ask the engine for an exact count when the estimate leaves less than this
# share of the context for the answer (or the request would be capped).
CLOSE_TO_LIMIT = 0.25


def estimate_prompt_tokens(body: dict[str, Any], endpoint: str) -> int:
    """A generous guess from characters: 4 per token, plus per-message and per-image costs."""
    total = OVERHEAD_TOKENS
    if endpoint == "chat/completions":
        for message in body.get("messages") or []:
            total += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"))
            if message.get("tool_calls"):
                total += _json_tokens(message["tool_calls"])
    elif endpoint == "completions":
        total += _content_tokens(body.get("prompt"))
    elif endpoint == "messages":  # Anthropic's: the system prompt apart, content in blocks
        total += _content_tokens(body.get("system"))
        for message in body.get("messages") or []:
            if isinstance(message, dict):
                total += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"))
    elif endpoint == "responses":
        total += _content_tokens(body.get("instructions")) + _content_tokens(body.get("input"))
    if body.get("tools"):
        total += _json_tokens(body["tools"])
    return total


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return math.ceil(len(content) / CHARS_PER_TOKEN)
    if isinstance(content, list):
        total = 0
        for item in content:
            if isinstance(item, int):
                total += 1  # a token id (completions prompt)
            elif isinstance(item, str):
                total += math.ceil(len(item) / CHARS_PER_TOKEN)
            elif isinstance(item, dict):
                kind = item.get("type", "")
                if "image" in str(kind):
                    total += IMAGE_TOKENS
                elif "text" in item:
                    total += _content_tokens(item["text"])
                elif "content" in item:
                    total += PER_MESSAGE_TOKENS + _content_tokens(item["content"])
                else:
                    total += _json_tokens(item)
            elif isinstance(item, list):
                total += _content_tokens(item)
        return total
    return _json_tokens(content)


def _json_tokens(value: Any) -> int:
    return math.ceil(len(json.dumps(value)) / CHARS_PER_TOKEN)


def _budget_fields(endpoint: str) -> tuple[str, ...]:
    if endpoint == "responses":
        return ("max_output_tokens",)
    if endpoint in ("completions", "messages"):
        return ("max_tokens",)
    return ("max_completion_tokens", "max_tokens")


def apply_budget(plan: Plan, model: Model, endpoint: str, exact_prompt: int | None) -> None:
    flags, body = model.rewrites, plan.document
    if not (flags.fill_max_tokens or flags.cap_max_tokens):
        return
    names = _budget_fields(endpoint)
    requested: Any = None
    for name in names:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RewriteError(name, f"`{name}` must be a whole number")
            requested = int(value) if requested is None else requested
    context = model.context_length
    if exact_prompt is not None:
        prompt, margin = exact_prompt, EXACT_COUNT_MARGIN
    else:
        prompt = estimate_prompt_tokens(body, endpoint)
        margin = (
            flags.safety_buffer_tokens if flags.safety_buffer_tokens is not None else max(512, context // 10)
        )
    plan.prompt_estimate = prompt
    room = max(1, context - prompt - margin)
    if requested is None or requested < 1:
        if not flags.fill_max_tokens:
            return
        budget, how = room, "max_tokens_filled"
    elif requested > room and flags.cap_max_tokens:
        budget, how = room, "max_tokens_capped"
    else:
        budget, how = requested, ""
    if exact_prompt is None and (how == "max_tokens_capped" or room < CLOSE_TO_LIMIT * context):
        plan.wants_exact_count = True
    current = [body.get(name) for name in names]
    for name in names:
        body[name] = budget
    if how or current != [budget] * len(names):
        plan.applied.append(how or "max_tokens_normalised")


def tokenize_request(document: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
    """The body for the engine's /tokenize that counts this request's prompt, if it has one."""
    if endpoint == "chat/completions":
        request = {"model": document.get("model"), "messages": document.get("messages")}
        if document.get("tools"):
            request["tools"] = document["tools"]
        return request
    if endpoint == "completions" and isinstance(document.get("prompt"), str):
        return {"model": document.get("model"), "prompt": document["prompt"]}
    return None
