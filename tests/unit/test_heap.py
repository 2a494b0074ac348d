"""The heap is trimmed once per quiet spell after work, never while busy and never twice in a row."""

from __future__ import annotations

from sparkd.heap import TrimWhenQuiet


def test_a_trim_comes_once_after_a_busy_spell_has_been_quiet_long_enough() -> None:
    trim = TrimWhenQuiet(quiet=2.0)
    ticks = [(True, 0.0), (True, 1.0), (False, 2.0), (False, 2.9), (False, 3.0), (False, 4.0), (False, 9.0)]
    assert [trim.due(busy, now) for busy, now in ticks] == [False, False, False, False, True, False, False]


def test_a_daemon_that_never_worked_is_never_trimmed() -> None:
    trim = TrimWhenQuiet(quiet=2.0)
    assert not any(trim.due(False, float(now)) for now in range(100))


def test_work_again_starts_a_new_spell() -> None:
    trim = TrimWhenQuiet(quiet=2.0)
    assert [
        trim.due(b, t) for b, t in [(True, 0.0), (False, 2.0), (True, 3.0), (False, 4.0), (False, 5.0)]
    ] == [
        False,
        True,
        False,
        False,
        True,
    ]
