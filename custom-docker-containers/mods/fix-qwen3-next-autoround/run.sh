#!/bin/bash
# Entrypoint wrapper: patch (best effort), then run the engine command unchanged.
python3 /workspace/mods/fix-qwen3-next-autoround/patch.py || true
exec "$@"
