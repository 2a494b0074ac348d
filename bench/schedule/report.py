"""docs/scheduling.md and its figure, written by `python -m bench.schedule` from the run it just did."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from bench.schedule.replay import Outcome

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "scheduling.md"
FIGURE = ROOT / "docs" / "scheduling" / "two-agents.svg"
COLUMNS = {
    "served": ("served", "{:,.0f}"),
    "refused": ("refusals", "{:,.0f}"),
    "lost": ("lost", "{:.0f}"),
    "wait_mean_s": ("wait mean (s)", "{:.1f}"),
    "wait_p95_s": ("wait p95 (s)", "{:.1f}"),
    "wait_max_s": ("longest wait (s)", "{:,.0f}"),
    "over_deadline": ("past deadline", "{:.0f}"),
    "starts": ("GPU starts", "{:,.0f}"),
    "loading_share": ("GPU loading", "{:.0%}"),
    "hours": ("work done in (h)", "{:.1f}"),
}


@dataclass
class Run:
    """Every replay of one `python -m bench.schedule`: (profile, trace, policy) -> outcome."""

    outcomes: dict[tuple[str, str, str], Outcome] = field(default_factory=dict)
    seconds: dict[tuple[str, str, str], float] = field(default_factory=dict)  # wall time of each replay
    requests: dict[str, int] = field(default_factory=dict)  # trace -> its steps


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool


def table(run: Run, profile: str, trace: str, policies: list[str]) -> list[str]:
    lines = [
        "| policy | " + " | ".join(name for name, _ in COLUMNS.values()) + " | replay (s) |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    for policy in policies:
        summary = run.outcomes[profile, trace, policy].summary()
        cells = [form.format(summary[key]) for key, (_, form) in COLUMNS.items()]
        lines.append(f"| {policy} | " + " | ".join(cells) + f" | {run.seconds[profile, trace, policy]:.2f} |")
    return lines


def intervals(phases: list[tuple[float, str, str]], until: float) -> list[tuple[str, str, float, float]]:
    """(model, phase, from, to) for every stretch a model spent in one phase, cut at `until`."""
    current: dict[str, tuple[str, float]] = {}
    out = []
    for at, model, phase in [*phases, *((until, m, "") for m in sorted({m for _, m, _ in phases}))]:
        if model in current:
            was, since = current[model]
            if since < until:
                out.append((model, was, since, min(at, until)))
        current[model] = (phase, at)
    return out


def timeline_svg(outcomes: dict[str, Outcome], models: list[str], hours: float = 3.0) -> str:
    """Which model held the GPU, loading (light) or serving (dark), over the first `hours`, per policy."""
    width, row, left, until = 900, 26, 230, hours * 3600
    colours = {models[0]: ("#9ecae1", "#1f6fb4"), models[1]: ("#fdae6b", "#d95f0e")}
    scale = (width - left - 10) / until
    parts = [
        f'<text x="{left + h * 3600 * scale:.0f}" y="20" font-size="11" text-anchor="middle">{h} h</text>'
        for h in range(int(hours) + 1)
    ]
    for index, (policy, outcome) in enumerate(outcomes.items()):
        y = 30 + index * (row + 8)
        parts.append(f'<text x="4" y="{y + 17}" font-size="13">{policy}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{width - left - 10}" height="{row}" fill="#f2f2f2"/>')
        for model, phase, since, to in intervals(outcome.machine.phases, until):
            if model in colours and phase in ("starting", "ready"):
                fill = colours[model][0 if phase == "starting" else 1]
                x, w = left + since * scale, max(0.5, (to - since) * scale)
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row}" fill="{fill}"/>')
    y = 30 + len(outcomes) * (row + 8) + 14
    for i, (model, shade, label) in enumerate(
        (m, k, t) for m in models for k, t in enumerate(("loading", "serving"))
    ):
        x, fill = left + i * 160, colours[model][shade]
        parts.append(f'<rect x="{x}" y="{y - 11}" width="12" height="12" fill="{fill}"/>')
        parts.append(f'<text x="{x + 16}" y="{y}" font-size="12">{model} {label}</text>')
    height = y + 12
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(parts) + "</svg>\n"
    )


def write(
    run: Run, profiles: tuple[str, ...], traces: list[str], policies: list[str], targets: list[Target]
) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    FIGURE.write_text(
        timeline_svg({p: run.outcomes["spark", "two-agents", p] for p in policies}, ["coder", "reasoner"])
    )
    lines = [
        "# Scheduling on a day of agent traffic",
        "",
        f"Written by `python -m bench.schedule` on {now}, from the run it just did: the real",
        "`sparkd.scheduler.Scheduler` driven by a virtual clock (`bench/schedule/sim.py`), engines",
        "simulated from `bench/schedule/profiles/*.toml` (each number with its source), clients",
        "replaying `bench/schedule/traces/*.csv` (written by `bench/schedule/generate.py`, seeded).",
        "Clients wait for each answer before the next step where the trace says so, as agents do,",
        "and send a refused request again after 30 s. A wait runs from a request's first sending to",
        'its grant (time to first byte, less the engine\'s own); "work done in" is when the last',
        "client had its last answer: the same work takes longer when the GPU spends its time loading.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {t.what} | {t.measured} | {'met' if t.met else '**missed**'} |" for t in targets],
        "",
        "## Two agents on two models, DGX Spark profile",
        "",
        "Which model held the GPU over the first three hours, loading (light) or serving (dark):",
        "",
        "![GPU timeline per policy](scheduling/two-agents.svg)",
        "",
    ]
    for profile in profiles:
        lines += [f"## Profile `{profile}`", ""]
        for trace in traces:
            lines += [f"### `{trace}` ({run.requests[trace]:,} requests)", ""]
            lines += table(run, profile, trace, policies)
            lines.append("")
    REPORT.write_text("\n".join(lines))
