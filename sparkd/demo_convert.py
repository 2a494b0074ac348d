"""Turn the SmolLM2 GGUF file into a Hugging Face folder that vLLM serves.

Runs inside the demo engine's own virtual environment (it needs torch,
transformers and gguf, which sparkd itself does not), as
``<venv>/bin/python -m sparkd.demo_convert GGUF_FILE OUT_DIR`` with sparkd's
source directory on ``PYTHONPATH``. Nothing here touches the network.
"""

from __future__ import annotations

import sys
from pathlib import Path


def convert(gguf_file: Path, out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer  # type: ignore[import-not-found]

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # The weights are dequantised on load; without dropping the GGUF marker
    # vLLM would look for a GGUF quantizer that the saved safetensors lack.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m sparkd.demo_convert GGUF_FILE OUT_DIR")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
