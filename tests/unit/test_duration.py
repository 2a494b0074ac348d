from __future__ import annotations

import pytest

from sparkd.duration import format_seconds, parse_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("20m", 1200.0),
        ("1h30m", 5400.0),
        ("1800s", 1800.0),
        ("250ms", 0.25),
        (1.5, 1.5),
    ],
)
def test_durations_read_the_way_people_write_them(text: object, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "20 minutes", "-5", True, [1], "5x"])
def test_anything_else_is_refused(text: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked where it reaches users
        parse_seconds(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (30, "30s"), (1200, "20m"), (5400, "1h30m"), (86400, "1d")]
)
def test_formatting_is_the_shortest_exact_spelling(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
    assert parse_seconds(text) == seconds
