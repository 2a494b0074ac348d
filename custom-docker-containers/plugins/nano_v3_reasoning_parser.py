"""Reasoning parser `nano_v3` for NVIDIA Nemotron 3 Nano (vLLM --reasoning-parser-plugin).

With thinking switched off (chat_template_kwargs.enable_thinking = false) the
model still writes its answer where a reasoning block would be, and the
DeepSeek-R1 parser files it under reasoning, leaving no visible answer. This
parser moves it back to the content in that case.
"""

from __future__ import annotations

from typing import Any

from vllm.reasoning import ReasoningParserManager  # type: ignore[import-not-found]
from vllm.reasoning.deepseek_r1_reasoning_parser import DeepSeekR1ReasoningParser  # type: ignore[import-not-found]


@ReasoningParserManager.register_module("nano_v3")
class NanoV3ReasoningParser(DeepSeekR1ReasoningParser):  # type: ignore[misc]
    def extract_reasoning_content(self, model_output: str, request: Any) -> tuple[str | None, str | None]:
        reasoning, content = super().extract_reasoning_content(model_output, request)
        kwargs = getattr(request, "chat_template_kwargs", None) or {}
        if kwargs.get("enable_thinking") is False and content is None:
            return None, reasoning
        return reasoning, content
