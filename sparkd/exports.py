"""Client configuration generated from the catalogue (`sparkd export ...`), with client-safe context ceilings.

Coding agents fill the whole context they are told about; the catalogue's
`client_context` is the ceiling that soak tests showed to work (the original
kept these by hand in opencode.json).
"""

from __future__ import annotations

import json
from typing import Any

from sparkd.catalogue import ApiFamily, Catalogue, Model, Role, Status, ToolSupport

KEY_ENV = "SPARKD_API_KEY"


def context_of(model: Model) -> int:
    return model.client_context or model.context_length


def output_limit(model: Model) -> int:
    """A completion budget that leaves most of the context for the prompt."""
    return max(256, min(32768, context_of(model) // 4))


def _listed(catalogue: Catalogue) -> list[Model]:
    return catalogue.enabled()


def reasons(model: Model) -> bool:
    """Whether the model thinks before answering: its engine parses reasoning, or it has thinking switches."""
    flags = model.rewrites
    return "--reasoning-parser" in model.args or flags.binary_thinking or flags.thinking_off_by_default


def default_model(catalogue: Catalogue, family: ApiFamily = ApiFamily.OPENAI) -> Model | None:
    """The model a client starts with: the catalogue's recommended one, else the first validated GPU
    main model, else any main one."""
    mains = [m for m in catalogue.enabled() if m.role is not Role.UTILITY and m.serves(family)]
    validated = [m for m in mains if m.status is Status.VALIDATED and m.gpu]
    return next((m for m in mains if m.recommended), next(iter(validated), mains[0] if mains else None))


def opencode(catalogue: Catalogue, base_url: str) -> str:
    models: dict[str, Any] = {}
    for model in _listed(catalogue):
        entry: dict[str, Any] = {
            "name": f"{model.id} ({model.status.value})",
            "limit": {"context": context_of(model), "output": output_limit(model)},
            "tool_call": model.tool_support is not ToolSupport.NONE,
            "reasoning": reasons(model),
        }
        if model.multimodal:
            entry["modalities"] = {"input": ["text", "image"], "output": ["text"]}
        models[model.id] = entry
    default = default_model(catalogue)
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


def claude_code(catalogue: Catalogue, base_url: str, key: str | None) -> str:
    """The environment Claude Code reads to use sparkd's Messages API (base URL without /v1)."""
    main = default_model(catalogue, ApiFamily.ANTHROPIC)
    utility = catalogue.utility
    small = utility if utility is not None and utility.serves(ApiFamily.ANTHROPIC) else main
    lines = [
        f"export ANTHROPIC_BASE_URL={base_url.removesuffix('/').removesuffix('/v1')}",
        f"export ANTHROPIC_AUTH_TOKEN={key or '<your sparkd API key: sparkd key create>'}",
        # Claude Code calls home for telemetry and updates: not from a LAN box.
        "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    ]
    if main is not None:
        lines.append(f"export ANTHROPIC_MODEL={main.id}")
    if small is not None:
        # The small, fast model for titles and summaries: older releases read the first name.
        lines.append(f"export ANTHROPIC_SMALL_FAST_MODEL={small.id}")
        lines.append(f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={small.id}")
    return "\n".join(lines) + "\n"
