"""Qwen3.5 AutoRound with transformers 5: rope validation compared a list with a set.

`ignore_keys_at_rope_validation` may arrive as a list; the validator does
set arithmetic with it. Wrap it in set(...), vendored here so that no
start-up fetches a patch from the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
from patchlib import Patch, run  # noqa: E402

PATCHES = [
    Patch(
        "rope-ignore-keys-set",
        "transformers.modeling_rope_utils",
        "sparkd: ignore_keys_at_rope_validation as a set",
        r"([-|&]\s*)ignore_keys_at_rope_validation\b",
        r"\1set(ignore_keys_at_rope_validation)",
    ),
]

if __name__ == "__main__":
    run(PATCHES)
