"""docs/reliability.md: every section, written by a run that measured all of it."""

from __future__ import annotations

import re
from collections import Counter

from tests.reliability import REPORT, SECTIONS, sections_of


def test_the_committed_report_has_every_section_with_its_figures() -> None:
    sections = sections_of(REPORT.read_text())
    assert [s.title for s in SECTIONS if s.title not in sections] == []
    for section in SECTIONS:
        text = sections[section.title]
        assert re.search(r"^Run: \d{4}-\d\d-\d\d \d\d:\d\d UTC on ", text, flags=re.M), section.title
        for label in section.labels.values():
            assert re.search(rf"^\| {re.escape(label)} \| [\d,]+ \|$", text, flags=re.M), (
                section.title,
                label,
            )


def test_a_section_not_measured_is_kept_as_it_was(tmp_path: object, monkeypatch: object) -> None:
    from pathlib import Path

    import pytest

    from tests import reliability

    assert isinstance(tmp_path, Path) and isinstance(monkeypatch, pytest.MonkeyPatch)
    report = tmp_path / "reliability.md"
    report.write_text(
        reliability.HEADER + "\n## Faults\n\nRun: 2020-01-01 00:00 UTC on x.\n\n| What | Figure |\n"
    )
    monkeypatch.setattr(reliability, "REPORT", report)
    monkeypatch.setattr(reliability, "FIGURES", Counter({"inputs_tried": 7}))
    reliability.write_report({"tests/loopback/test_hostile.py"})
    sections = sections_of(report.read_text())
    assert "2020-01-01" in sections["Faults"]
    assert "| Hostile inputs tried" in sections["Hostile input"] and "| 7 |" in sections["Hostile input"]
