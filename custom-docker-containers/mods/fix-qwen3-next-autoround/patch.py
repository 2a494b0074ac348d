"""Qwen3-Next AutoRound checkpoints: the MoE gate must be quantised like its weights.

vLLM built the shared-expert gate with quant_config=None, so the int4
AutoRound gate weights failed to load; pass the model's quant_config on.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
from patchlib import Patch, run  # noqa: E402

PATCHES = [
    Patch(
        "autoround-gate",
        "vllm.model_executor.models.qwen3_next",
        "sparkd: the MoE gate gets the model's quant_config",
        r"(self\.gate\s*=\s*ReplicatedLinear\((?:[^()]|\([^()]*\))*?)quant_config=None",
        r"\1quant_config=quant_config",
    ),
]

if __name__ == "__main__":
    run(PATCHES)
