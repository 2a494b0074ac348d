"""A starting engine's log lines, read as the few words `sparkd start` and `sparkd status` show."""

from __future__ import annotations

import pytest

from sparkd.engine_log import loading_progress

# Lines as vLLM 0.32 prints them (its format strings; the first is from the demo's own start).
VLLM = [
    "(EngineCore pid=21) INFO 11-29 21:51:45 [core.py:133] Initializing a V1 LLM engine (v0.32.0) with "
    "config: model='/hf/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/0a94', "
    "speculative_config=None",
    "(EngineCore pid=21) INFO 11-29 21:51:47 [weight_utils.py:1094] Loading safetensors checkpoint shards:  "
    "50% Completed | 7/14 [00:21<00:21,  3.01s/it]",
    "(EngineCore pid=21) INFO 11-29 21:52:09 [default_loader.py:502] Loading weights took 42.31 seconds",
    "(EngineCore pid=21) INFO 11-29 21:52:10 [gpu_model_runner.py:5150] Model loading took 61.3 GiB memory "
    "and 44.120000 seconds",
    "(EngineCore pid=21) INFO 11-29 21:52:40 [monitor.py:20] torch.compile took 29.81 s in total",
    "(EngineCore pid=21) INFO 11-29 21:52:41 [gpu_worker.py:760] Available KV cache memory: 38.21 GiB",
    "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):  45%|████▌     | 30/67 [00:05<00:06,  5.9it/s]",
    "(EngineCore pid=21) INFO 11-29 21:53:02 [gpu_model_runner.py:6582] Graph capturing finished in 18 secs, "
    "took 1.21 GiB",
    "(EngineCore pid=21) INFO 11-29 21:53:03 [core.py:403] init engine "
    "(profile, create kv cache, warmup model) took 52.31 s",
    "(APIServer pid=1) INFO:     Application startup complete.",
]


@pytest.mark.parametrize(
    ("upto", "said"),
    [
        (1, "loading the model"),
        (2, "loading weights: 50% (7/14 shards)"),
        (3, "weights loaded in 42s"),
        (4, "model loaded: 61.3 GiB in 44s"),
        (5, "compiled in 30s"),
        (6, "KV cache: 38.2 GiB"),
        (7, "capturing CUDA graphs: 45%"),
        (8, "CUDA graphs captured in 18s"),
        (9, "engine ready in 52s, starting the API server"),
        (10, "API server up"),
    ],
)
def test_the_latest_step_in_the_log_is_what_a_person_reads(upto: int, said: str) -> None:
    assert loading_progress([*VLLM[:upto], "(APIServer pid=1) WARNING unrelated chatter"]) == said


def test_a_log_that_names_no_step_yet_says_nothing() -> None:
    assert loading_progress(["Started sparkd model demo.", "podman: container init"]) is None
    assert loading_progress([]) is None


def test_sglang_steps_are_read_too() -> None:
    lines = ["[2026-11-29 10:00:00] Load weight begin. avail mem=118.21 GB"]
    assert loading_progress(lines) == "loading weights"
    lines.append(
        "[2026-11-29 10:00:09] Load weight end. type=Qwen3ForCausalLM, dtype=torch.bfloat16, "
        "avail mem=116.5 GB, mem usage=1.71 GB."
    )
    assert loading_progress(lines) == "model loaded: 1.7 GB"
