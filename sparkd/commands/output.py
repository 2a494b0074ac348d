"""What the commands print: aligned tables, sizes, durations."""

from __future__ import annotations

from collections.abc import Sequence


def ago(seconds: float | None) -> str:
    from sparkd.duration import format_seconds

    return "-" if seconds is None else format_seconds(seconds)


def size(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.1f} GiB"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def bar(done: float, total: float, width: int = 24) -> str:
    """`[#########               ]`: how far `done` is of `total`."""
    filled = min(width, round(width * done / total)) if total else width
    return "[" + "#" * filled + " " * (width - filled) + "]"
