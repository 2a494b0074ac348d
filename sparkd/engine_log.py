"""What a starting engine's log says about its progress, in a few words for a person waiting.

vLLM (and SGLang) print where a start is: weight shards loaded, the model's
memory, compilation, CUDA graph capture, the server coming up. The latest
such line of the model unit's journal becomes `sparkd start`'s and
`sparkd status`'s "loading weights: 50% (1/2 shards)".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

Say = Callable[[re.Match[str]], str]

STEPS: list[tuple[re.Pattern[str], Say]] = [
    (
        re.compile(r"Loading safetensors checkpoint shards:\s*(\d+)% Completed \| (\d+)/(\d+)"),
        lambda m: f"loading weights: {m[1]}% ({m[2]}/{m[3]} shards)",
    ),
    (re.compile(r"Loading weights took ([\d.]+) seconds"), lambda m: f"weights loaded in {float(m[1]):.0f}s"),
    (
        re.compile(r"Model loading took ([\d.]+) GiB memory and ([\d.]+) seconds"),
        lambda m: f"model loaded: {float(m[1]):.1f} GiB in {float(m[2]):.0f}s",
    ),
    (re.compile(r"torch\.compile took ([\d.]+) s in total"), lambda m: f"compiled in {float(m[1]):.0f}s"),
    (re.compile(r"Available KV cache memory: ([\d.]+) GiB"), lambda m: f"KV cache: {float(m[1]):.1f} GiB"),
    (re.compile(r"Capturing CUDA graphs[^:]*:\s*(\d+)%"), lambda m: f"capturing CUDA graphs: {m[1]}%"),
    (re.compile(r"Graph capturing finished in (\d+) secs"), lambda m: f"CUDA graphs captured in {m[1]}s"),
    (
        re.compile(r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+)"),
        lambda m: f"engine ready in {float(m[1]):.0f}s, starting the API server",
    ),
    (re.compile(r"Application startup complete"), lambda m: "API server up"),
    # SGLang
    (
        re.compile(r"Load weight end\..*?mem usage=([\d.]+) GB"),
        lambda m: f"model loaded: {float(m[1]):.1f} GB",
    ),
    (re.compile(r"Load weight begin"), lambda m: "loading weights"),
    (re.compile(r"Capture cuda graph begin"), lambda m: "capturing CUDA graphs"),
    # Either engine, early on
    (re.compile(r"Initializing a V1 LLM engine|Starting to load model"), lambda m: "loading the model"),
]


def loading_progress(lines: Iterable[str]) -> str | None:
    """The latest step the log names, or None when it names none yet."""
    for line in reversed(list(lines)):
        for pattern, say in STEPS:
            found = pattern.search(line)
            if found:
                return say(found)
    return None
