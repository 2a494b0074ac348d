"""Qwen3-Coder-Next on GB10: two vLLM fixes and a Triton allocator.

- crash: the KV-cache manager asserted that every cached block has a hash;
  null blocks (placeholders) have none, so skip them instead.
- slowness: int64 stride annotations in the fused-MoE Triton kernel made it
  several times slower on GB10; plain strides are enough for these sizes.
- allocator: Triton's default NullAllocator fails for kernels that need
  scratch memory; route it through torch's caching allocator.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
from patchlib import Patch, run  # noqa: E402

PATCHES = [
    Patch(
        "kv-cache-null-blocks",
        "vllm.v1.core.single_type_kv_cache_manager",
        "sparkd: skip null blocks instead of asserting a block hash",
        r"^(\s*)assert (\w+)\.block_hash is not None\s*$",
        r"\1if \2.is_null or \2.block_hash is None:\n\1    continue",
    ),
    Patch(
        "fused-moe-strides",
        "vllm.model_executor.layers.fused_moe.fused_moe",
        "sparkd: plain strides in the fused-MoE kernel (int64 ones are slow on GB10)",
        r"(stride_\w+): tl\.int64",
        r"\1",
    ),
]

ALLOCATOR = '''\
# sparkd: let Triton kernels that need scratch memory use torch's caching allocator.
try:
    import torch
    import triton

    def _sparkd_alloc(size: int, alignment: int, stream: object) -> object:
        return torch.empty(size, device="cuda", dtype=torch.int8)

    triton.set_allocator(_sparkd_alloc)
except Exception:  # no GPU torch or an older Triton: nothing to do
    pass
'''


def install_allocator() -> None:
    for directory in site.getsitepackages():
        target = Path(directory)
        if target.is_dir():
            try:
                (target / "_sparkd_triton_alloc.py").write_text(ALLOCATOR)
                (target / "_sparkd_triton_alloc.pth").write_text("import _sparkd_triton_alloc\n")
                print("sparkd patch triton-allocator: applied", file=sys.stderr)
            except OSError as error:
                print(f"sparkd patch triton-allocator: skipped: {error}", file=sys.stderr)
            return


if __name__ == "__main__":
    run(PATCHES)
    install_allocator()
