from __future__ import annotations

import json

from sparkd.catalogue import load_catalogue
from sparkd.exports import cline, openai_env, opencode


def test_opencode_gets_every_enabled_model_with_its_client_safe_ceiling() -> None:
    catalogue = load_catalogue()
    config = json.loads(opencode(catalogue, "http://spark:8009/v1"))
    provider = config["provider"]["sparkd"]
    assert provider["options"] == {"baseURL": "http://spark:8009/v1", "apiKey": "{env:SPARKD_API_KEY}"}
    models = provider["models"]
    assert set(models) == {m.id for m in catalogue.enabled()}
    assert models["gpt-oss-20b"]["limit"]["context"] == 108000  # not the served 131072
    assert models["qwen3.6-35b-a3b-fp8"]["reasoning"] is True
    assert models["qwen2.5-vl-7b"]["tool_call"] is False
    assert config["small_model"] == "sparkd/qwen3.5-0.8b"
    assert config["model"].startswith("sparkd/")


def test_cline_profiles_carry_context_and_images() -> None:
    profiles = json.loads(cline(load_catalogue(), "http://spark:8009/v1"))
    gemma = next(p for p in profiles if p["openAiModelId"] == "gemma4-26b-a4b")
    assert gemma["openAiModelInfo"]["contextWindow"] == 240000
    assert gemma["openAiModelInfo"]["supportsImages"] is True


def test_openai_env_is_two_exports() -> None:
    assert openai_env("http://spark:8009/v1", "sk-x").splitlines() == [
        "export OPENAI_BASE_URL=http://spark:8009/v1",
        "export OPENAI_API_KEY=sk-x",
    ]


def test_the_recommended_model_is_the_default_and_gpt_oss_reasons() -> None:
    """One default for every export, from the catalogue; gpt-oss parses reasoning, so it is marked so."""
    import json

    from sparkd.catalogue import load_catalogue
    from sparkd.exports import claude_code, default_model, opencode

    catalogue = load_catalogue()
    recommended = [m.id for m in catalogue if m.recommended]
    assert recommended == ["gpt-oss-20b"]
    default = default_model(catalogue)
    assert default is not None and default.id == "gpt-oss-20b"
    config = json.loads(opencode(catalogue, "http://spark:8009/v1"))
    assert config["model"] == "sparkd/gpt-oss-20b"
    assert config["provider"]["sparkd"]["models"]["gpt-oss-20b"]["reasoning"] is True
    assert "export ANTHROPIC_MODEL=gpt-oss-20b\n" in claude_code(catalogue, "http://spark:8009/v1", None)
