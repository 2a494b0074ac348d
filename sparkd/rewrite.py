"""Per-model request compatibility: pure functions of (request body, model's catalogue fields).

Coding agents send requests that some models' chat templates and parsers
reject. The original stack's validator patched them; these are the same
rewrites, driven only by catalogue fields (never by the model's name), and
without its bugs: images, multimodal parts and tool_call_ids survive, a body
sparkd cannot understand is refused with a 400 naming the field (never
forwarded half-processed), and every change is reported in `X-Sparkd-Rewrites`.

Order, and why: content normalisation, tool stripping and forced tool choice
first (they change what the template sees), then the Llama guard (it adds a
system instruction) before role alternation (which folds system text into
the first user turn), then thinking flags, and the token budget last, so it
is computed from the body that is actually sent.
"""

from __future__ import annotations

import copy
from typing import Any

from sparkd.budget import apply_budget
from sparkd.catalogue import Model, ToolSupport
from sparkd.plan import Plan, RewriteError

TOOL_FIELDS = ("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls")
EFFORTS = {"none", "minimal", "low", "medium", "high", "xhigh", "max", "auto"}

GUARD_INSTRUCTION = (
    "Tool calling rules: pass tool arguments as JSON values matching each parameter's type "
    "(an array or object is written as raw JSON, never as a quoted string). "
    "Answer greetings and small talk in plain text without calling any tool."
)
RAW_JSON_NOTE = "Give this as raw JSON, not as a string."
QUESTION_NOTE = "Use this only to ask for information a task needs, never in reply to a greeting."


def rewrite(document: dict[str, Any], model: Model, endpoint: str, exact_prompt: int | None = None) -> Plan:
    """Apply every rewrite the model's catalogue fields ask for. Raises RewriteError on bad types.

    `exact_prompt`: the engine tokenizer's count for this prompt, when a first
    pass asked for it (`Plan.wants_exact_count`).
    """
    flags = model.rewrites
    chat = endpoint == "chat/completions"
    # Copy what may change, so the caller's document stays as it was: nested
    # parts only when a rewrite that edits them is on (the common case copies
    # one small dict, which matters on the request path).
    edits_nested = chat and (
        flags.normalize_text_content
        or flags.strict_alternation
        or flags.llama_tool_guard
        or flags.binary_thinking
        or flags.thinking_off_by_default
        or model.tool_support is ToolSupport.FORCE_REQUIRED
    )
    body = copy.deepcopy(document) if edits_nested else dict(document)
    plan = Plan(body)
    messages = _messages(body) if chat else None

    text_only = messages is not None and flags.normalize_text_content and not model.multimodal
    normalized = text_only and messages is not None and _normalize_text_content(messages)
    if endpoint in ("chat/completions", "responses"):
        if model.tool_support is ToolSupport.NONE:
            step(plan, "tools_stripped", strip_fields(body, TOOL_FIELDS))
        elif model.tool_support is ToolSupport.FORCE_REQUIRED and messages is not None:
            step(plan, "tool_choice_required", _force_tool_choice(body, messages))
    if messages is not None and flags.llama_tool_guard:
        step(plan, "tool_guard", _llama_tool_guard(body, messages))
    if messages is not None and flags.strict_alternation:
        step(plan, "alternation", _alternate(body, messages))
    if text_only:
        # Alternation may have built new part lists: a text-only template still needs strings.
        normalized = _normalize_text_content(body["messages"]) or normalized
        step(plan, "text_content", normalized)
    if chat and flags.binary_thinking:
        step(plan, "thinking_mapped", _map_thinking(body))
    if chat and flags.thinking_off_by_default:
        step(plan, "thinking_off", _thinking_off(body))
    if endpoint != "embeddings":
        apply_budget(plan, model, endpoint, exact_prompt)
    return plan


def step(plan: Plan, name: str, changed: bool) -> None:
    if changed:
        plan.applied.append(name)


# Validation helpers ----------------------------------------------------------


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise RewriteError("messages", "`messages` must be an array of message objects")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RewriteError(f"messages[{index}]", f"messages[{index}] must be an object")
        if not isinstance(message.get("role"), str):
            raise RewriteError(f"messages[{index}].role", f"messages[{index}].role must be a string")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise RewriteError(
                f"messages[{index}].content",
                f"messages[{index}].content must be a string, an array of parts or null",
            )
        if isinstance(content, list):
            for part_index, part in enumerate(content):
                if not isinstance(part, dict):
                    raise RewriteError(
                        f"messages[{index}].content[{part_index}]",
                        f"messages[{index}].content[{part_index}] must be an object",
                    )
    return messages


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def _text_of(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


# The rewrites ----------------------------------------------------------------


def _normalize_text_content(messages: list[dict[str, Any]]) -> bool:
    changed = False
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") == "text" for p in content):
            message["content"] = _text_of(content)
            changed = True
    return changed


def strip_fields(body: dict[str, Any], fields: tuple[str, ...]) -> bool:
    """Remove `fields` from the body; whether any was there."""
    present = [name for name in fields if name in body]
    for name in present:
        del body[name]
    return bool(present)


def _force_tool_choice(body: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise RewriteError("tools", "`tools` must be an array")
    if not tools or any(m["role"] == "tool" for m in messages):
        return False
    if body.get("tool_choice", "auto") != "auto":
        return False
    body["tool_choice"] = "required"
    return True


def _llama_tool_guard(body: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    tools = body.get("tools")
    if not tools:
        return False
    if not isinstance(tools, list):
        raise RewriteError("tools", "`tools` must be an array")
    if any(GUARD_INSTRUCTION in _text_of(_parts(m.get("content"))) for m in messages):
        return False  # already guarded (perhaps folded into a user turn): twice changes nothing
    messages.insert(0, {"role": "system", "content": GUARD_INSTRUCTION})
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            raise RewriteError(f"tools[{index}].function", f"tools[{index}].function must be an object")
        if "parameters" in function:
            annotate_schema(function["parameters"], f"tools[{index}].function.parameters")
        if function.get("name") == "question":
            description = function.get("description")
            if description is not None and not isinstance(description, str):
                raise RewriteError(
                    f"tools[{index}].function.description", "a tool description must be a string"
                )
            if not description:
                function["description"] = QUESTION_NOTE
            elif QUESTION_NOTE not in description:
                function["description"] = f"{description} {QUESTION_NOTE}"
    return True


def annotate_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, child in properties.items():
            if isinstance(child, dict) and child.get("type") in ("array", "object"):
                description = child.get("description")
                if not isinstance(description, str) or not description:
                    child["description"] = RAW_JSON_NOTE
                elif RAW_JSON_NOTE not in description:
                    child["description"] = f"{description} ({RAW_JSON_NOTE})"
            annotate_schema(child, f"{where}.properties.{name}")
    annotate_schema(schema.get("items"), f"{where}.items")


def _alternate(body: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    """System text into the first user turn, consecutive user/assistant turns merged, user first."""
    system_parts: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "system":
            system_parts += _parts(message.get("content"))
            continue
        previous = turns[-1] if turns else None
        if (
            previous is not None
            and previous["role"] == message["role"]
            and message["role"] in ("user", "assistant")
        ):
            _merge_into(previous, message)
        else:
            turns.append(message)
    if system_parts:
        instruction = {"type": "text", "text": f"[System Instruction]\n{_text_of(system_parts)}\n\n"}
        others = [p for p in system_parts if p.get("type") != "text"]
        if not turns or turns[0]["role"] != "user":
            turns.insert(0, {"role": "user", "content": ""})
        first = turns[0]
        if isinstance(first.get("content"), str) and not others:
            first["content"] = instruction["text"] + first["content"]
        else:
            first["content"] = [instruction, *others, *_parts(first.get("content"))]
    elif turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": " "})
    elif not turns:
        turns.append({"role": "user", "content": " "})
    if turns == messages:
        return False
    body["messages"] = turns
    return True


def _merge_into(previous: dict[str, Any], message: dict[str, Any]) -> None:
    a, b = previous.get("content"), message.get("content")
    if isinstance(a, str | None) and isinstance(b, str | None):
        previous["content"] = "\n\n".join(x for x in (a, b) if x)
    else:
        previous["content"] = [*_parts(a), *_parts(b)]
    if message.get("tool_calls"):
        previous["tool_calls"] = [*(previous.get("tool_calls") or []), *message["tool_calls"]]


def _kwargs(body: dict[str, Any]) -> dict[str, Any]:
    kwargs = body.get("chat_template_kwargs")
    if kwargs is None:
        kwargs = body["chat_template_kwargs"] = {}
    if not isinstance(kwargs, dict):
        raise RewriteError("chat_template_kwargs", "`chat_template_kwargs` must be an object")
    return kwargs


def _has_flag(kwargs: dict[str, Any]) -> bool:
    return "enable_thinking" in kwargs or "thinking" in kwargs


def _map_thinking(body: dict[str, Any]) -> bool:
    changed = False
    if "thinking" in body:
        thinking = body.pop("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "disabled"):
            thinking = thinking["type"] == "enabled"  # the Anthropic-style spelling
        if not isinstance(thinking, bool):
            raise RewriteError("thinking", "`thinking` must be true or false")
        kwargs = _kwargs(body)
        kwargs.setdefault("enable_thinking", thinking)
        kwargs.setdefault("thinking", thinking)
        changed = True
    effort = _pop_effort(body)
    if effort is not None:
        changed = True
        kwargs = _kwargs(body)
        if effort in EFFORTS and not _has_flag(kwargs):
            kwargs["enable_thinking"] = kwargs["thinking"] = effort != "none"
    return changed


def _pop_effort(body: dict[str, Any]) -> str | None:
    """Remove every spelling of reasoning effort; the value, lower-cased, if any was given."""
    found: Any = None
    for name in ("reasoning_effort", "reasoningEffort"):
        if name in body:
            found = body.pop(name) if found is None else (body.pop(name) and found)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and "effort" in reasoning:
        value = reasoning.pop("effort")
        found = value if found is None else found
        if not reasoning:
            del body["reasoning"]
    if found is None:
        return None
    if not isinstance(found, str):
        raise RewriteError("reasoning_effort", "`reasoning_effort` must be a string")
    return found.strip().lower()


def thinking_flags(body: dict[str, Any], enabled: bool) -> bool:
    """The chat template's thinking switches set to `enabled`, unless the client set one itself."""
    kwargs = _kwargs(body)
    if _has_flag(kwargs):
        return False
    kwargs["enable_thinking"] = kwargs["thinking"] = enabled
    return True


def _thinking_off(body: dict[str, Any]) -> bool:
    return thinking_flags(body, False)
