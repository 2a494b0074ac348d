"""Figures the reliability suite measures, written to docs/reliability.md by the run that measured them."""

from __future__ import annotations

import datetime
import platform
from collections import Counter
from pathlib import Path

FIGURES: Counter[str] = Counter()
NOTES: dict[str, str] = {}
REPORT = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"

LABELS = {
    "faults_survived": "Faults injected and survived",
    "inputs_tried": "Hostile inputs tried (each answered with the right 4xx envelope, waking nothing)",
    "requests_sent": "Requests sent under load",
    "requests_ok": "... answered 200",
    "requests_refused": "... refused at once with 429 and Retry-After",
    "requests_lost_or_hung": "Requests lost or hung (must be 0)",
    "cold_starts": "Model starts during the 1000-request cold burst (must be 1)",
    "state_samples": "Unit-state samples taken by the independent tenancy checker",
    "two_tenant_moments": "Moments with two main tenants (must be 0)",
    "sparkd_rss_growth_kib": "sparkd's memory growth over the soak (KiB)",
}


def record(name: str, amount: int = 1) -> None:
    FIGURES[name] += amount


def note(name: str, text: str) -> None:
    NOTES[name] = text


HEADER = """\
# Reliability

Written by the test suite from its last run (`tests/system/test_faults.py`,
`tests/system/test_load.py`, `tests/loopback/test_hostile.py`); never edited by hand.
The full soak: `SPARKD_SOAK_SECONDS=600 scripts/test`.
"""


def write_report() -> None:
    if not FIGURES:
        return
    rows = [f"| {label} | {FIGURES.get(key, 0):,} |" for key, label in LABELS.items() if key in FIGURES]
    notes = [f"- {text}" for text in NOTES.values()]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (
        f"{platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    lines = [HEADER, f"Run: {now} on {machine}.", "", "| What | Figure |", "|---|---|", *rows, "", *notes, ""]
    REPORT.write_text("\n".join(lines))
