from __future__ import annotations

from pathlib import Path

import pytest

from sparkd.memory import has_settled, mem_available


def test_available_memory_is_read_in_bytes(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n")
    assert mem_available(meminfo) == 20_000_000 * 1024


def test_a_meminfo_without_the_field_is_an_error(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1 kB\n")
    with pytest.raises(ValueError, match="MemAvailable"):
        mem_available(meminfo)


@pytest.mark.parametrize(
    ("samples", "settled"),
    [([100], False), ([50, 100], False), ([100, 100], True), ([90, 100, 100.5], True), ([100, 120], False)],
)
def test_memory_has_settled_when_it_stops_changing(samples: list[int], settled: bool) -> None:
    assert has_settled(samples) is settled
