"""Generated tokens, read from the end of an answer in either API's shape."""

from __future__ import annotations

import pytest

from sparkd.usage import generated_tokens

OPENAI_BODY = (
    b'{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":12}}'
)
ANTHROPIC_BODY = b'{"type":"message","content":[],"usage":{"input_tokens":5,"output_tokens":7}}'
STREAM_END = (
    b'data: {"choices":[{"delta":{"content":"!"}}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":33}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_STREAM_END = (
    b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":21}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


@pytest.mark.parametrize(
    ("tail", "tokens"),
    [
        (OPENAI_BODY, 12),
        (ANTHROPIC_BODY, 7),
        (STREAM_END, 33),
        (ANTHROPIC_STREAM_END, 21),
        (b'data: {"choices":[{"delta":{"content":"!"}}]}\n\ndata: [DONE]\n\n', None),  # no include_usage
        (STREAM_END[40:], 33),  # the stream's end cut at any piece boundary before the usage event
        (b'{"usage": "odd"}', None),
        (b'not json at all, "usage"', None),
        (b"", None),
    ],
)
def test_the_generated_token_count_is_read_where_engines_put_it(tail: bytes, tokens: int | None) -> None:
    assert generated_tokens(tail) == tokens
