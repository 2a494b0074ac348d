"""Load weight shards in natural order (model-2 before model-10) with fastsafetensors.

Sorting shard names as text put model-00010 before model-00002 for some
MXFP4 checkpoints, and fastsafetensors then mapped tensors to the wrong
ranks. Applied once to a vLLM source tree at image build time.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "# sparkd: natural sort of weight shards"


def main(tree: Path) -> None:
    target = tree / "vllm" / "model_executor" / "model_loader" / "weight_utils.py"
    if not target.is_file():
        print(f"natural sort: {target} not found; skipped")
        return
    text = target.read_text()
    if MARKER in text:
        return
    pattern = r"(hf_weights_files\s*=\s*)sorted\((hf_weights_files)\)"
    natural = r"\1sorted(\2, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', p)])"
    patched, count = re.subn(pattern, natural, text)
    if count == 0:
        print("natural sort: nothing to patch; skipped")
        return
    if "\nimport re\n" not in patched:
        patched = "import re\n" + patched
    target.write_text(f"{MARKER}\n{patched}")
    print("natural sort: applied")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
