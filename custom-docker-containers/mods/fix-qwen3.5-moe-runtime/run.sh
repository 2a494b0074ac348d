#!/bin/bash
# Entrypoint wrapper of the Qwen 3.5/3.6 lanes: the Coder-Next runtime fixes,
# the chat template when one is asked for, then the engine command unchanged.
python3 /workspace/mods/fix-qwen3-coder-next/patch.py || true
if [ -n "${QWEN35_CHAT_TEMPLATE_MODEL_ID:-}${QWEN35_CHAT_TEMPLATE_SOURCE:-}" ]; then
  bash /workspace/mods/fix-qwen3.5-chat-template/install.sh || exit 1
fi
exec "$@"
