"""How many tokens an answer generated, from the `usage` the engine put at its end.

OpenAI's shape (`completion_tokens`) and Anthropic's (`output_tokens`), in a
whole JSON answer or in a stream's last events (OpenAI streams carry usage
only when the client asked for it with `stream_options.include_usage`).
Read after the answer, and only while a dashboard watches.
"""

from __future__ import annotations

import json


def generated_tokens(tail: bytes) -> int | None:
    """The output token count in the answer's end, or None when it has none."""
    if b'"usage"' not in tail:
        return None
    # SSE events end with a blank line; a whole JSON answer is one piece.
    for piece in reversed(tail.split(b"\n\n")):
        found = _from(piece)
        if found is not None:
            return found
    return None


def _from(piece: bytes) -> int | None:
    text = piece.strip()
    for line in text.split(b"\n"):  # an SSE event: its data line
        if line.startswith(b"data:"):
            text = line[5:].strip()
    try:
        document = json.loads(text)
    except ValueError:
        return None
    usage = document.get("usage") if isinstance(document, dict) else None
    if not isinstance(usage, dict):
        return None
    count = usage.get("completion_tokens", usage.get("output_tokens"))
    return count if isinstance(count, int) else None
