"""Figures the reliability suite measures, written to docs/reliability.md by the run that measured them.

The report has one section per test module. A run rewrites a section only
when it ran every test of that module and every one passed; other sections
stay as the run that measured them wrote them, each with its own date. So
`scripts/test tests/loopback` renews the hostile-input figures and leaves
the fault and load ones alone.
"""

from __future__ import annotations

import datetime
import platform
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FIGURES: Counter[str] = Counter()
NOTES: dict[str, str] = {}
REPORT = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


@dataclass(frozen=True)
class Section:
    title: str
    module: str  # the test module whose complete, passing run measures it
    labels: dict[str, str]


SECTIONS = (
    Section(
        "Faults",
        "tests/system/test_faults.py",
        {"faults_survived": "Faults injected and survived"},
    ),
    Section(
        "Hostile input",
        "tests/loopback/test_hostile.py",
        {"inputs_tried": "Hostile inputs tried (each answered with the right 4xx envelope, waking nothing)"},
    ),
    Section(
        "Load and soak",
        "tests/system/test_load.py",
        {
            "requests_sent": "Requests sent under load",
            "requests_ok": "... answered 200",
            "requests_refused": "... refused at once with 429 and Retry-After",
            "requests_lost_or_hung": "Requests lost or hung (must be 0)",
            "cold_starts": "Model starts during the 1000-request cold burst (must be 1)",
            "state_samples": "Unit-state samples taken by the independent tenancy checker",
            "two_tenant_moments": "Moments with two main tenants (must be 0)",
            "sparkd_rss_growth_kib": "sparkd's memory growth over the soak (KiB)",
        },
    ),
)

HEADER = """\
# Reliability

Written by the test suite, one section per module, each by the last run that ran all of
that module's tests and passed them (`tests/system/test_faults.py`,
`tests/loopback/test_hostile.py`, `tests/system/test_load.py`); never edited by hand.
The full soak: `SPARKD_SOAK_SECONDS=600 scripts/test`.
"""


def record(name: str, amount: int = 1) -> None:
    FIGURES[name] += amount


def note(section: str, text: str) -> None:
    """A sentence under the section's table (by its title)."""
    NOTES[section] = text


def section_text(section: Section, now: str, machine: str) -> str:
    rows = [f"| {label} | {FIGURES.get(key, 0):,} |" for key, label in section.labels.items()]
    notes = [f"- {NOTES[section.title]}"] if section.title in NOTES else []
    lines = [
        f"## {section.title}",
        "",
        f"Run: {now} on {machine}.",
        "",
        "| What | Figure |",
        "|---|---|",
        *rows,
    ]
    return "\n".join([*lines, "", *notes]).rstrip() + "\n"


def sections_of(text: str) -> dict[str, str]:
    """The report's sections by title, each as written (its heading included)."""
    found: dict[str, str] = {}
    for match in re.finditer(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S):
        found[match.group(1)] = f"## {match.group(1)}\n{match.group(2)}".rstrip() + "\n"
    return found


def write_report(complete: set[str]) -> None:
    """Rewrite the sections whose modules ran whole and passed (`complete`); keep the others."""
    measured = [s for s in SECTIONS if s.module in complete]
    if not measured:
        return
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (
        f"{platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    kept = sections_of(REPORT.read_text()) if REPORT.exists() else {}
    parts = [HEADER]
    for section in SECTIONS:
        if section in measured:
            parts.append(section_text(section, now, machine))
        elif section.title in kept:
            parts.append(kept[section.title])
    REPORT.write_text("\n".join(parts))
