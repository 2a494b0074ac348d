#!/bin/bash
# Install the Qwen 3.5 chat template that the Qwen 3.6 lanes pass with --chat-template.
#
# The template ships inside the Qwen/Qwen3.5-0.8B snapshot (the utility model),
# so no extra download is needed once the utility has run: copy it from the
# Hugging Face cache (or from QWEN35_CHAT_TEMPLATE_SOURCE) to the destination.
set -u
model_id=${QWEN35_CHAT_TEMPLATE_MODEL_ID:-Qwen/Qwen3.5-0.8B}
cache_root=${QWEN35_CHAT_TEMPLATE_CACHE_ROOT:-/models}
destination=${QWEN35_CHAT_TEMPLATE_DESTINATION:-/workspace/unsloth.jinja}
source=${QWEN35_CHAT_TEMPLATE_SOURCE:-}
if [ -z "$source" ]; then
  dir="$cache_root/models--${model_id//\//--}/snapshots"
  source=$(ls -1d "$dir"/*/chat_template.jinja 2>/dev/null | head -n 1)
fi
if [ -z "$source" ] || [ ! -f "$source" ]; then
  echo "sparkd: no chat template for $model_id under $cache_root; start the utility model once" \
       "(it downloads $model_id) or set QWEN35_CHAT_TEMPLATE_SOURCE" >&2
  exit 1
fi
mkdir -p "$(dirname "$destination")"
cp "$source" "$destination"
echo "sparkd: chat template $source -> $destination" >&2
