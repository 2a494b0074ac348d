"""The benchmark report: each figure beside its baseline, written into docs/benchmarks.md by the run."""

from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.tools import ROOT

REPORT = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results.json"


@dataclass
class Figure:
    name: str
    sparkd: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    reference: float | None = None  # nginx, where it applies
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.sparkd / self.baseline


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _baseline_cell(figure: Figure) -> str:
    return "-" if figure.baseline is None else f"{figure.baseline_name} {fmt(figure.baseline)}"


def write_report(figures: list[Figure], quick: bool, installed: str) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    rows = [
        f"| {f.name} | {fmt(f.sparkd)} | {_baseline_cell(f)} | {fmt(f.reference)} | "
        f"{fmt(f.ratio) if f.ratio is not None else '-'} | {f.target} | "
        f"{ {True: 'met', False: '**missed**', None: '-'}[f.met] } |"
        for f in figures
    ]
    text = REPORT.read_text() if REPORT.exists() else ""
    marker = "<!-- results -->"
    head = text.split(marker)[0] if marker in text else text
    results = "\n".join(
        [
            marker,
            f"## Latest results ({now}{', quick mode' if quick else ''})",
            "",
            f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
            f"{installed}. Written by `bench/run` from this run.",
            "",
            "| Figure | sparkd | Baseline | nginx | Ratio to baseline | Target | |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    REPORT.write_text(head + results)
    RESULTS.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
