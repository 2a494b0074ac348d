"""Durations as people write them in config files: ``90``, ``"90s"``, ``"20m"``, ``"1h30m"``."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from sparkd.schema import Parse

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_seconds(value: object) -> float:
    """Seconds from a number (taken as seconds) or a string of number+unit parts."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '20m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration (examples: 30, '90s', '20m', '1h30m')")
    else:
        raise ValueError("a duration is a number of seconds or a string like '20m'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_seconds(seconds: float) -> str:
    """The shortest exact ``1h30m``-style spelling of a whole number of seconds."""
    whole = round(seconds)
    if whole == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# A field that a file may write as 90, "90s" or "20m"; `Annotated[float, Bounds(gt=0), DURATION]`
# when it has bounds too (the parse comes last, so it runs first).
DURATION = Parse(parse_seconds)
Seconds = Annotated[float, DURATION]


def parse_seconds_or_auto(value: object) -> float | str:
    """The word auto as it is, anything else as a duration."""
    if value == "auto":
        return "auto"
    try:
        return parse_seconds(value)
    except ValueError as error:
        raise ValueError(f'{error}, or "auto"') from None


# A duration that may also be "auto" (sparkd works it out).
SecondsOrAuto = Annotated[float | Literal["auto"], Parse(parse_seconds_or_auto)]
