"""The runtime patches in custom-docker-containers/mods: each applies once, skips what it does not know."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

MODS = Path(__file__).resolve().parents[2] / "custom-docker-containers" / "mods"
sys.path.insert(0, str(MODS / "lib"))

from patchlib import Patch, apply  # type: ignore[import-not-found]  # noqa: E402


def patches_of(mod: str) -> list[Patch]:
    spec = importlib.util.spec_from_file_location(f"mod_{mod}", MODS / mod / "patch.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.PATCHES)


# Source as the patched releases have it (trimmed), and what each patch must leave behind.
CASES = {
    "kv-cache-null-blocks": (
        "def f(blocks):\n    for blk in blocks:\n"
        "        assert blk.block_hash is not None\n        use(blk)\n",
        "if blk.is_null or blk.block_hash is None:\n            continue",
    ),
    "fused-moe-strides": (
        "def kernel(a, stride_am: tl.int64, stride_ak: tl.int64):\n    pass\n",
        "def kernel(a, stride_am, stride_ak):",
    ),
    "autoround-gate": (
        "class G:\n    def __init__(self):\n"
        "        self.gate = ReplicatedLinear(c.hidden_size, 1, bias=False, quant_config=None, prefix=p)\n",
        "bias=False, quant_config=quant_config, prefix=p)",
    ),
    "rope-ignore-keys-set": (
        "def f(required, received, ignore_keys_at_rope_validation):\n"
        "    return required - received - ignore_keys_at_rope_validation\n",
        "received - set(ignore_keys_at_rope_validation)",
    ),
    "mla-kv-splits": (
        "def f(attn_metadata):\n    num_kv_splits = 4\n",
        "max(32, min(128, attn_metadata.max_seq_len // 1500))",
    ),
    "mla-quantised-kv-b-proj": (
        "class M:\n    def f(self):\n        dtype = self.kv_b_proj.weight.dtype\n",
        "getattr(getattr(self.kv_b_proj",
    ),
    "cutlass-support-probes": (
        "def cutlass_scaled_mm_supports_fp4(cap):\n"
        "    return torch.ops._C.cutlass_scaled_mm_supports_fp4(cap)\n",
        "getattr(torch.ops._C, 'cutlass_scaled_mm_supports_fp4', lambda *a: False)(cap)",
    ),
}
ALL = [
    p
    for mod in (
        "fix-qwen3-coder-next",
        "fix-qwen3-next-autoround",
        "fix-qwen3.5-autoround",
        "fix-glm-4.7-flash-awq",
    )
    for p in patches_of(mod)
]


def test_every_patch_has_a_case() -> None:
    assert {p.name for p in ALL} == set(CASES)


@pytest.mark.parametrize("patch", ALL, ids=lambda p: p.name)
def test_a_patch_applies_once(patch: Patch, tmp_path: Path) -> None:
    source, expected = CASES[patch.name]
    target = tmp_path / "module.py"
    target.write_text(source)
    assert apply(patch, target) == "applied"
    patched = target.read_text()
    assert expected in patched
    compile(patched, "module.py", "exec")  # still Python
    assert apply(patch, target) == "already applied"
    assert target.read_text() == patched


@pytest.mark.parametrize("patch", ALL, ids=lambda p: p.name)
def test_a_patch_skips_code_it_does_not_know(patch: Patch, tmp_path: Path) -> None:
    target = tmp_path / "module.py"
    target.write_text("x = 1\n")
    assert apply(patch, target).startswith("skipped")
    assert target.read_text() == "x = 1\n"


def test_a_module_that_is_not_installed_is_skipped() -> None:
    assert apply(Patch("p", "no_such_module_anywhere", "m", "a", "b")).startswith("skipped")
