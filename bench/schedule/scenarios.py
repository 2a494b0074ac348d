"""What `python -m bench.schedule` replays: the policies side by side, on every trace, per profile."""

from __future__ import annotations

from bench.schedule.generate import GENERATORS

# Each policy as the Simulation's (that is, the Scheduler's) options.
POLICIES: dict[str, dict[str, object]] = {
    "original stack (429 when busy)": {"refuse_when_busy": True},
    "llama-swap (strict FIFO)": {"strict_order": True},
    "sparkd, drain then swap": {"swap_hold": 0.0},
    "sparkd, hold 600 s": {"swap_hold": 600.0},
    "sparkd, auto hold (default)": {"swap_hold": "auto"},
}
DEFAULT = "sparkd, auto hold (default)"
FIFO = "llama-swap (strict FIFO)"
TRACES = list(GENERATORS)  # bench/schedule/traces/<name>.csv
PROFILES = ("spark", "cpu-demo")  # bench/schedule/profiles/<name>.toml
