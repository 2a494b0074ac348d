"""sparkd.toml's swap hold: a duration or "auto", which is the default."""

from __future__ import annotations

import pytest

from sparkd.schema import FieldError, validate
from sparkd.settings import Settings


def test_the_swap_hold_is_worked_out_by_default() -> None:
    assert Settings().swap_hold == "auto"
    assert validate(Settings, {}).swap_hold == "auto"


@pytest.mark.parametrize(("written", "meant"), [("auto", "auto"), ("90s", 90.0), ("10m", 600.0), (0, 0.0)])
def test_a_swap_hold_is_a_duration_or_auto(written: object, meant: object) -> None:
    assert validate(Settings, {"swap_hold": written}).swap_hold == meant


@pytest.mark.parametrize("written", ["soon", -5, True])
def test_a_swap_hold_that_is_neither_says_what_it_may_be(written: object) -> None:
    with pytest.raises(FieldError, match=r'^swap_hold: .*(duration|negative).*or "auto"$'):
        validate(Settings, {"swap_hold": written})
