#!/usr/bin/env python3
"""Import the original Compose stack's 42 model services into sparkd's catalogue.

    scripts/import-original-models.py [ORIGINAL_MODELS_JSON] [OUT_DIR]

Reads the original stack's model records (one per id, later release winning
where both releases define a model) and writes one TOML file per original
compose group into OUT_DIR (default: sparkd/models). The output is what
sparkd ships; a unit test re-runs this import and fails when the shipped files
differ, so change this script (or override a model in /etc/sparkd/models.d)
rather than editing the generated files.

What the import does, record by record:
- `${VAR:-default}` becomes its default (the setting stays overridable in the catalogue);
- the engine's own --host/--port/--served-model-name go away (the renderer decides how an
  engine listens and what it is called) and so does the placeholder VLLM_API_KEY (sparkd
  owns auth); --max-model-len/--context-length becomes `context_length`;
- relative volume paths map onto sparkd's configured directories;
- images become fully qualified names, so podman never guesses a registry;
- the validator's hard-coded id lists and substring rules become per-model `rewrites` flags.
Where the original disagrees with itself, FIXES below says which value wins and why; the
reason is written next to the value in the generated file.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "reference" / "original-models.json"
DEFAULT_OUT = ROOT / "sparkd" / "models"

FIRST_PORT = 18001  # 18000 is the demo model's

# The validator's hard-coded sets (original-stack.md section 3.1), now catalogue fields.
DEFAULT_NON_THINKING = {
    "glm-4.7-flash-awq",
    "nemotron-3-nano-30b-nvfp4",
    "huihui-qwen3.5-35b-a3b-abliterated",
    "huihui-qwen3.6-27b-abliterated",
    "qwen3.5-122b-a10b-int4-autoround",
    "qwen3.6-27b-fp8",
    "qwen3.6-27b-fp8-mtp",
    "qwen3.6-35b-a3b-fp8",
    "qwen3.6-35b-a3b-fp8-mtp",
}
BINARY_THINKING = {
    "qwen3.6-27b-fp8",
    "qwen3.6-27b-fp8-mtp",
    "qwen3.6-35b-a3b-fp8",
    "qwen3.6-35b-a3b-fp8-mtp",
    "huihui-qwen3.6-27b-abliterated",
}
SMALL_CONTEXT_BUFFER = BINARY_THINKING  # the same five lanes got a fixed 4096-token buffer

# Client-safe context ceilings, from the original's soak evidence (original-stack.md 4.6).
# The model clients start with: validated, fits beside the utility, tools and reasoning.
RECOMMENDED = "gpt-oss-20b"
# Download sizes (GB, approximate, from the hub's model pages) where the repository's name does
# not tell the parameters or the quantisation (sparkd/sizing.py reads the others from the name).
WEIGHTS_GB = {
    "gpt-oss-120b": 65.3,
    "gpt-oss-20b": 13.8,
    "deepseek-ocr": 6.7,
    "glm-4.5-air-derestricted-fp4": 62,
    "glm-4.5-air-fp4": 62,
    "glm-4.6v-flash-fp4": 6.5,
    "glm-4.7-flash-awq": 18,
    "huihui-gemma4-e2b-abliterated": 10.2,
    "mistral-nemo-instruct-2407": 24.5,
    "phi-4-multimodal-instruct-fp4": 4.5,
    "phi-4-reasoning-plus-fp4": 9.5,
    "qwen3-coder-next-int4-autoround": 45,
}
# A chat template some lanes copy from another model's download: that model's id.
TEMPLATE_PROVIDERS = {"Qwen/Qwen3.5-0.8B": "qwen3.5-0.8b"}
CLIENT_CONTEXT = {
    "gpt-oss-20b": 108000,
    "gpt-oss-120b": 108000,
    "glm-4.7-flash-awq": 108000,
    "gemma4-26b-a4b": 240000,
    "huihui-gemma4-e2b-abliterated": 120000,
    "qwen3.6-27b-fp8": 240000,
    "qwen3.6-27b-fp8-mtp": 240000,
    "qwen3.6-35b-a3b-fp8": 240000,
    "qwen3.6-35b-a3b-fp8-mtp": 240000,
    "huihui-qwen3.5-35b-a3b-abliterated": 200000,
    "qwen3-coder-next-int4-autoround": 524000,
    "nemotron-3-nano-30b-nvfp4": 110000,
    "qwen3.5-0.8b": 8192,
}

# Original inconsistencies (original-stack.md 4.4, 3.4): model -> field -> why the value below wins.
FIXES: dict[str, dict[str, str]] = {
    "qwen3-vl-30b-instruct": {
        "context_length": "the original's models.json said 65536 but vLLM was started with 32768; "
        "the served value wins so that budgets are capped to what the engine accepts",
    },
    "qwen3-vl-30b-thinking-instruct": {
        "context_length": "the original's models.json said 65536 but vLLM was started with 32768; "
        "the served value wins so that budgets are capped to what the engine accepts",
        "args": "the original passed --quantization modelopt_fp4 for an AWQ checkpoint; vLLM reads "
        "the AWQ method from the checkpoint, so the contradicting flag is dropped",
    },
    "qwen3.5-122b-a10b-int4-autoround": {
        "context_length": "the original served --max-model-len auto; the model's native 262144 "
        "(its models.json value) is written out so the budget cap and the engine agree",
    },
    "gpt-oss-20b": {
        "args": "the 120B lanes use the openai_gptoss reasoning parser and the 20B did not; the same "
        "harmony format needs the same parser, or reasoning leaks into the answer",
    },
    "qwen-math": {
        "volumes": "the original mounted a second Hugging Face cache for this model only; "
        "one shared cache avoids downloading the same files twice",
    },
    "glm-4.6v-flash-fp4": {
        "image": "the original's VLLM_TRACK_IMAGE_TF5 had two defaults (this local cu131 build and "
        "the external helper's vllm-node-tf5); they are different images, so each keeps its own",
    },
    "qwen3-vl-32b-instruct-fp4": {
        "args": "--tensor_parallel_size spelled the vLLM way (--tensor-parallel-size)",
    },
}

_SUBST = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}")


def resolve(value: str) -> str:
    return _SUBST.sub(lambda m: m.group(2), value)


def qualify_image(image: str) -> str:
    image = resolve(image)
    first = image.split("/")[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    if image.startswith("local/"):
        return "localhost/" + with_tag(image.removeprefix("local/"))
    if "/" not in image:
        return "localhost/" + with_tag(image)  # built on the machine, never pulled
    return "docker.io/" + image


def with_tag(name: str) -> str:
    return name if ":" in name.rsplit("/", maxsplit=1)[-1] else name + ":latest"


def map_volume(spec: str, model_id: str) -> str:
    host, _, rest = spec.partition(":")
    prefixes = [
        ("../vllm_cache_huggingface", "{hf_cache}"),
        ("../models/vllm_cache_huggingface", "{hf_cache}"),
        ("../models", "{models}"),
        ("../flashinfer_cache", "{cache}/flashinfer"),
        ("../torch_extensions", "{cache}/torch_extensions"),
        ("../torchinductor", "{cache}/torchinductor"),
        # The GPT-OSS images carry their own FlashInfer fork: its JIT caches stay apart.
        ("../.cache", "{cache}/mxfp4"),
        ("../mods", "{data}/mods"),
        ("../plugins", "{data}/plugins"),
        ("../media", "{state}/media"),
    ]
    for old, new in prefixes:
        if host == old or host.startswith(old + "/"):
            return new + host[len(old) :] + ":" + rest
    raise SystemExit(f"{model_id}: no mapping for volume {spec!r}")


def model_weights(record: dict[str, Any]) -> str:
    if record["weights"]:
        return str(record["weights"])
    command = record["command"]  # the SGLang utility names its weights only in its command
    return str(command[command.index("--model-path") + 1])


def split_command(record: dict[str, Any]) -> tuple[str, list[str], list[str], dict[str, str]]:
    """(engine, launcher, args, taken) with sparkd-owned flags taken out of args."""
    command = [resolve(str(part)) for part in record["command"]]
    weights = model_weights(record)
    engine = "sglang" if "sglang.launch_server" in command else "vllm"
    at = command.index(weights)
    launcher = command[:at]
    if launcher and launcher[-1] in ("--model", "--model-path"):
        launcher = launcher[:-1]
    rest = command[at + 1 :]
    taken: dict[str, str] = {}
    args: list[str] = []
    owned = {"--host", "--port", "--served-model-name", "--max-model-len", "--context-length"}
    i = 0
    while i < len(rest):
        if rest[i] in owned:
            taken[rest[i]] = rest[i + 1]
            i += 2
            continue
        args.append(rest[i])
        i += 1
    return engine, launcher, args, taken


def convert(record: dict[str, Any], port: int) -> dict[str, Any]:
    model_id = record["id"]
    meta = record["gateway_meta"] or {}
    engine, launcher, args, taken = split_command(record)
    entry: dict[str, Any] = {}

    if not record["enabled_by_default"]:
        entry["status"] = "disabled"
    elif meta.get("experimental"):
        entry["status"] = "experimental"
    else:
        entry["status"] = "validated"
    lifecycle = meta.get("lifecycle", "normal")
    entry["role"] = {"normal": "main", "exclusive": "exclusive", "utility": "utility"}[lifecycle]
    entry["description"] = f"{model_weights(record)} on {engine}"

    entry["engine"] = engine
    entry["image"] = qualify_image(record["image"])
    entry["weights"] = model_weights(record)
    default_launcher = ["vllm", "serve"] if engine == "vllm" else ["python3", "-m", "sglang.launch_server"]
    entrypoint = record["entrypoint"]
    if entrypoint is not None:
        # The original replaced the image's entrypoint; the first word stays the
        # entrypoint and the rest (a wrapper script) leads the command.
        entry["entrypoint"] = entrypoint[0] if entrypoint else ""
        launcher = list(entrypoint[1:]) + launcher
    if launcher != default_launcher:
        entry["launcher"] = launcher

    if model_id == "qwen3-vl-30b-thinking-instruct":
        at = args.index("--quantization")
        del args[at : at + 2]
    if model_id == "gpt-oss-20b" and "--reasoning-parser" not in args:
        args += ["--reasoning-parser", "openai_gptoss"]
    args = ["--tensor-parallel-size" if a == "--tensor_parallel_size" else a for a in args]
    entry["args"] = args

    environment = {k: resolve(str(v)) for k, v in record["environment"].items() if k != "VLLM_API_KEY"}
    if environment:
        entry["environment"] = environment
    volumes = list(dict.fromkeys(map_volume(v, model_id) for v in record["volumes"]))
    if any(v.startswith("{data}/mods/") for v in volumes):
        # sparkd's runtime patches share a helper library (custom-docker-containers/mods/lib).
        volumes.append("{data}/mods/lib:/workspace/mods/lib:ro")
    entry["volumes"] = volumes
    if record["shm_size"]:
        entry["shm_size"] = record["shm_size"]
    if record["ulimits"]:
        entry["ulimits"] = {k: int(v) for k, v in record["ulimits"].items()}
    if record["devices"]:
        entry["devices"] = list(record["devices"])

    weights = entry["weights"]
    if "/" in weights and not weights.startswith("/"):
        # Gated repositories (Gemma, Llama) need a token; any download is better with one.
        # The unit names the secret's file only once `sparkd secret set HF_TOKEN` stored it.
        entry["secrets"] = ["HF_TOKEN"]
    if model_id in WEIGHTS_GB:
        entry["weights_gb"] = WEIGHTS_GB[model_id]
    template_from = environment.get("QWEN35_CHAT_TEMPLATE_MODEL_ID")
    if template_from in TEMPLATE_PROVIDERS:
        entry["needs"] = [TEMPLATE_PROVIDERS[template_from]]
    if model_id == RECOMMENDED:
        entry["recommended"] = True
    entry["port"] = port
    period = record["healthcheck_start_period"]
    if period:
        entry["start_timeout"] = period
    if lifecycle == "utility":
        entry["keep_warm"] = True

    served = taken.get("--max-model-len") or taken.get("--context-length")
    context = int(meta["maxModelLen"]) if served is None or served == "auto" else int(served)
    entry["context_length"] = context
    if model_id in CLIENT_CONTEXT:
        entry["client_context"] = min(CLIENT_CONTEXT[model_id], context)

    profile = meta.get("validatorProfile", "default")
    tools = meta.get("toolSupport") or ("full" if "--enable-auto-tool-choice" in args else "none")
    if profile in ("small-no-tools", "vl"):
        tools = "none"
    elif profile == "coder-force-tools":
        tools = "force-required"
    entry["tool_support"] = tools
    if meta.get("multimodal"):
        entry["multimodal"] = True

    rewrites: dict[str, Any] = {}
    if model_id in SMALL_CONTEXT_BUFFER:
        rewrites["safety_buffer_tokens"] = 4096
    if meta.get("normalizeTextContent") and not meta.get("multimodal"):
        rewrites["normalize_text_content"] = True
    # The original keyed these on "gemma"/"llama" in the id (validator L307), for
    # the models it served; disabled models never reached the validator.
    if meta and ("gemma" in model_id or "llama" in model_id):
        rewrites["strict_alternation"] = True
    if meta and "llama" in model_id:
        rewrites["llama_tool_guard"] = True
    if model_id in DEFAULT_NON_THINKING:
        rewrites["thinking_off_by_default"] = True
    if model_id in BINARY_THINKING:
        rewrites["binary_thinking"] = True
    if rewrites:
        entry["rewrites"] = rewrites

    if meta.get("notes"):
        entry["notes"] = meta["notes"]
    if meta.get("sourceRecipe"):
        entry["source_recipe"] = meta["sourceRecipe"]
    return entry


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list) and any(str(v).startswith("--") for v in value):
        return "[\n" + "".join(f"    {line},\n" for line in _flag_lines(value)) + "]"
    if isinstance(value, list):
        if len(value) <= 4 and sum(len(str(v)) for v in value) < 60:
            return "[" + ", ".join(toml_value(v) for v in value) + "]"
        return "[\n" + "".join(f"    {toml_value(v)},\n" for v in value) + "]"
    raise TypeError(value)


def _flag_lines(words: list[str]) -> list[str]:
    """Engine arguments one flag a line, each with its values, as people read a command line."""
    lines: list[list[str]] = []
    for word in words:
        if word.startswith("--") or not lines:
            lines.append([])
        lines[-1].append(toml_value(word))
    return [", ".join(line) for line in lines]


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def render_group(group: str, models: list[tuple[str, dict[str, Any]]]) -> str:
    out = [
        f"# sparkd catalogue: the original stack's '{group}' models.",
        "# Generated by scripts/import-original-models.py; do not edit. To change a model,",
        "# override its fields in /etc/sparkd/models.d/*.toml (see docs/configuration.md).",
    ]
    for model_id, entry in models:
        fixes = FIXES.get(model_id, {})
        out.append("")
        out.append(f"[models.{toml_key(model_id)}]")
        tables = {k: v for k, v in entry.items() if isinstance(v, dict)}
        for key, value in entry.items():
            if key in tables:
                continue
            if key in fixes:
                out.append(f"# Why: {fixes[key]}.")
            out.append(f"{key} = {toml_value(value)}")
        for name, table in tables.items():
            out.append("")
            out.append(f"[models.{toml_key(model_id)}.{name}]")
            out.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


def generate(source: Path) -> dict[str, str]:
    """File name -> TOML text for every compose group of the original."""
    records = json.loads(source.read_text(encoding="utf-8"))["models"]
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for port, record in enumerate(sorted(records, key=lambda r: r["id"]), start=FIRST_PORT):
        groups.setdefault(record["compose_group"], []).append((record["id"], convert(record, port)))
    return {f"{group}.toml": render_group(group, models) for group, models in sorted(groups.items())}


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    out_dir = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in generate(source).items():
        (out_dir / name).write_text(text, encoding="utf-8")
        print(f"wrote {out_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
