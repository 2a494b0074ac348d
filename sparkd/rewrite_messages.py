"""The rewrites for Anthropic's Messages API: the same catalogue fields, in that API's shapes.

A Messages body keeps its system prompt in `system`, its content in blocks
(text, image, tool_use, tool_result) and its tools as `{name, description,
input_schema}`; `max_tokens` is required. Each rewrite below is the Messages
form of one in `sparkd.rewrite`, applied in the same order and reported
under the same name in `X-Sparkd-Rewrites`.
"""

from __future__ import annotations

import copy
from typing import Any

from sparkd.budget import apply_budget
from sparkd.catalogue import Model, ToolSupport
from sparkd.plan import Plan, RewriteError
from sparkd.rewrite import GUARD_INSTRUCTION, annotate_schema, step, strip_fields, thinking_flags

MESSAGES = "messages"
COUNT_TOKENS = "messages/count_tokens"
TOOL_FIELDS = ("tools", "tool_choice")
TOOL_BLOCKS = ("tool_use", "tool_result")


def rewrite_messages(
    document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None = None
) -> Plan:
    """Apply every rewrite the model's catalogue fields ask for to a Messages body (or a count of one)."""
    flags = model.rewrites
    body = copy.deepcopy(document)
    plan = Plan(body)
    messages = _messages(body)
    if model.tool_support is ToolSupport.NONE:
        step(plan, "tools_stripped", strip_fields(body, TOOL_FIELDS))
    elif model.tool_support is ToolSupport.FORCE_REQUIRED:
        step(plan, "tool_choice_required", _force_tool_choice(body, messages))
    if flags.llama_tool_guard:
        step(plan, "tool_guard", _tool_guard(body))
    if flags.strict_alternation:
        step(plan, "alternation", _alternate(body, messages))
    if flags.normalize_text_content and not model.multimodal:
        step(plan, "text_content", _normalize_text_content(body))
    if flags.binary_thinking:
        step(plan, "thinking_mapped", _map_thinking(body))
    if flags.thinking_off_by_default:
        step(plan, "thinking_off", _thinking_off(body))
    if endpoint == MESSAGES:
        apply_budget(plan, model, MESSAGES, exact_prompt)
    return plan


def count_request(document: dict[str, Any]) -> dict[str, Any]:
    """The body for the engine's own /v1/messages/count_tokens that counts this request's prompt."""
    return {k: v for k, v in document.items() if k in ("model", "messages", "system", "tools", "tool_choice")}


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise RewriteError("messages", "`messages` must be an array")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RewriteError(where, f"{where} must be an object with a string `role`")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise RewriteError(f"{where}.content", f"{where}.content must be a string or an array of blocks")
        if isinstance(content, list) and not all(isinstance(block, dict) for block in content):
            raise RewriteError(f"{where}.content", f"every block of {where}.content must be an object")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise RewriteError("system", "`system` must be a string or an array of text blocks")
    return messages


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [block for block in content or [] if isinstance(block, dict)]


def _text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")


def _force_tool_choice(body: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    if not body.get("tools") or body.get("tool_choice", {"type": "auto"}) != {"type": "auto"}:
        return False
    if any(b.get("type") == "tool_result" for m in messages for b in _blocks(m["content"])):
        return False
    body["tool_choice"] = {"type": "any"}
    return True


def _tool_guard(body: dict[str, Any]) -> bool:
    tools = body.get("tools")
    if not tools:
        return False
    if not isinstance(tools, list):
        raise RewriteError("tools", "`tools` must be an array")
    system = _blocks(body.get("system"))
    if GUARD_INSTRUCTION in _text(system):
        return False
    body["system"] = [{"type": "text", "text": GUARD_INSTRUCTION}, *system]
    for index, tool in enumerate(tools):
        if isinstance(tool, dict) and "input_schema" in tool:
            annotate_schema(tool["input_schema"], f"tools[{index}].input_schema")
    return True


def _alternate(body: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    """`system` into the first user turn, consecutive turns of one role merged, a user turn first."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if turns and turns[-1]["role"] == message["role"]:
            turns[-1] = {
                **turns[-1],
                "content": [*_blocks(turns[-1]["content"]), *_blocks(message["content"])],
            }
        else:
            turns.append(message)
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": " "}]})
    system = _text(_blocks(body.get("system")))
    if system:
        instruction = {"type": "text", "text": f"[System Instruction]\n{system}\n\n"}
        turns[0] = {**turns[0], "content": [instruction, *_blocks(turns[0]["content"])]}
        del body["system"]
    if turns == messages:
        return False
    body["messages"] = turns
    return True


def _normalize_text_content(body: dict[str, Any]) -> bool:
    """Blocks that are all text become one string; tool and image blocks keep the list as it is."""
    changed = False
    for message in body["messages"]:
        blocks = message["content"]
        if isinstance(blocks, list) and blocks and all(b.get("type") == "text" for b in blocks):
            message["content"] = _text(blocks)
            changed = True
    system = body.get("system")
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        body["system"] = _text(system)
        changed = True
    return changed


def _map_thinking(body: dict[str, Any]) -> bool:
    """`thinking` and `output_config.effort` as the template's on/off flags (the fields stay)."""
    thinking = body.get("thinking")
    wanted: bool | None = None
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
            raise RewriteError("thinking", "`thinking.type` must be enabled, disabled or adaptive")
        wanted = thinking["type"] != "disabled"
    output = body.get("output_config")
    effort = output.get("effort") if isinstance(output, dict) else None
    if wanted is None and isinstance(effort, str):
        wanted = effort.lower() != "none"
    if wanted is None:
        return False
    return thinking_flags(body, wanted)


def _thinking_off(body: dict[str, Any]) -> bool:
    if "thinking" in body:
        return False  # the client chose
    return thinking_flags(body, False)
