"""GLM-4.7-Flash (AWQ) on GB10: applied once, when its image is built.

- speed: the Triton MLA decode used a fixed 4 KV splits; more splits for long
  sequences keep GB10's SMs busy: max(32, min(128, max_seq_len // 1500)).
- MLA guard: a quantised kv_b_proj has no `.weight`; assume bf16 then.
- missing kernels: the cutlass_scaled_mm_supports_* helpers raise
  AttributeError when the kernels are compiled out for sm_121: answer False.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
from patchlib import Patch, run  # noqa: E402

PATCHES = [
    Patch(
        "mla-kv-splits",
        "vllm.v1.attention.backends.mla.triton_mla",
        "sparkd: dynamic KV splits for long sequences",
        r"num_kv_splits\s*=\s*4\b",
        "num_kv_splits = max(32, min(128, attn_metadata.max_seq_len // 1500))",
    ),
    Patch(
        "mla-quantised-kv-b-proj",
        "vllm.model_executor.layers.mla",
        "sparkd: a quantised kv_b_proj has no weight; assume bf16",
        r"(\w+)\s*=\s*self\.kv_b_proj\.weight\.dtype",
        r"\1 = getattr(getattr(self.kv_b_proj, 'weight', None), 'dtype', __import__('torch').bfloat16)",
    ),
    Patch(
        "cutlass-support-probes",
        "vllm._custom_ops",
        "sparkd: kernels compiled out for sm_121 are simply not supported",
        r"^(\s*)return torch\.ops\._C\.(cutlass_scaled_mm_supports_\w+)\((.*)\)\s*$",
        r"\1return bool(getattr(torch.ops._C, '\2', lambda *a: False)(\3))",
    ),
]

if __name__ == "__main__":
    run(PATCHES)
