"""Client configuration generated from the catalogue (`sparkd export ...`), with client-safe context ceilings.

Coding agents fill the whole context they are told about; the catalogue's
`client_context` is the ceiling that soak tests showed to work (the original
kept these by hand in opencode.json).
"""

from __future__ import annotations

import json
from typing import Any

from sparkd.catalogue import Catalogue, Model, Role, Status, ToolSupport

KEY_ENV = "SPARKD_API_KEY"


def context_of(model: Model) -> int:
    return model.client_context or model.context_length


def output_limit(model: Model) -> int:
    """A completion budget that leaves most of the context for the prompt."""
    return max(256, min(32768, context_of(model) // 4))


def _listed(catalogue: Catalogue) -> list[Model]:
    return catalogue.enabled()


def opencode(catalogue: Catalogue, base_url: str) -> str:
    models: dict[str, Any] = {}
    for model in _listed(catalogue):
        entry: dict[str, Any] = {
            "name": f"{model.id} ({model.status.value})",
            "limit": {"context": context_of(model), "output": output_limit(model)},
            "tool_call": model.tool_support is not ToolSupport.NONE,
            "reasoning": model.rewrites.binary_thinking or model.rewrites.thinking_off_by_default,
        }
        if model.multimodal:
            entry["modalities"] = {"input": ["text", "image"], "output": ["text"]}
        models[model.id] = entry
    mains = [m for m in catalogue.enabled() if m.role is not Role.UTILITY]
    default = next((m for m in mains if m.status is Status.VALIDATED and m.gpu), mains[0] if mains else None)
    config: dict[str, Any] = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "sparkd": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "sparkd (DGX Spark)",
                "options": {"baseURL": base_url, "apiKey": f"{{env:{KEY_ENV}}}"},
                "models": models,
            }
        },
    }
    if default is not None:
        config["model"] = f"sparkd/{default.id}"
    if catalogue.utility is not None:
        config["small_model"] = f"sparkd/{catalogue.utility.id}"
    return json.dumps(config, indent=2) + "\n"


def cline(catalogue: Catalogue, base_url: str) -> str:
    """One "OpenAI Compatible" provider profile per model, as Cline's settings name the fields."""
    profiles = []
    for model in _listed(catalogue):
        profiles.append(
            {
                "apiProvider": "openai",
                "openAiBaseUrl": base_url,
                "openAiApiKey": f"${{{KEY_ENV}}}",
                "openAiModelId": model.id,
                "openAiModelInfo": {
                    "contextWindow": context_of(model),
                    "maxTokens": output_limit(model),
                    "supportsImages": model.multimodal,
                    "supportsPromptCache": False,
                },
            }
        )
    return json.dumps(profiles, indent=2) + "\n"


def openai_env(base_url: str, key: str | None) -> str:
    return (
        f"export OPENAI_BASE_URL={base_url}\n"
        f"export OPENAI_API_KEY={key or '<your sparkd API key: sparkd key create>'}\n"
    )
