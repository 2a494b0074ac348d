from __future__ import annotations

from pathlib import Path

import pytest

from sparkd.memory import MemoryBook, has_settled, mem_available


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


def test_a_models_need_is_the_drop_in_available_memory_since_its_start() -> None:
    book = MemoryBook()
    book.start_began("big", available=100)
    assert book.sample("big", available=60) == 40
    assert book.sample("big", available=70) == 30
    assert book.peaks == {"big": 40}
    assert book.sample("other", available=10) is None


def test_the_fit_gate_compares_the_recorded_peak_with_what_is_free() -> None:
    book = MemoryBook({"big": 40})
    assert book.fits("big", 50)
    assert not book.fits("big", 39)
    assert book.fits("never-seen", 0)


def test_peaks_survive_a_restart_as_json() -> None:
    book = MemoryBook({"a": 5})
    assert MemoryBook.from_json(book.to_json()).peaks == {"a": 5}
    assert MemoryBook.from_json("[]").peaks == {}
