"""sparkd's benchmarks: every figure measured against its baseline in the same run.

    bench/run [--quick] [--no-report]

sparkd runs exactly as installed: this checkout built into its .deb and
installed with apt (purged again at the end), with every feature on (auth,
per-request journal entries, rewrites, metrics), in the private systemd of
scripts/testbed.py, in front of fake engines with fixed timings
(tests/fake_engine.py) in real podman units. Baselines: the same request
sent straight to the engine, and one nginx hop (Debian's nginx) as the
reference reverse proxy. wrk drives the non-streaming figures; an asyncio
client counts chunks for the streaming ones.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from testbed import PrivateSystemd, install_sparkd

from bench import lifecycle
from bench.packaged import BASE_MODELS, packaged_sparkd
from bench.report import REPORT, Figure, write_report
from bench.tools import (
    ENGINE_A,
    ENGINE_STREAM,
    KEY,
    PACKAGED_SPARKD,
    SPARKD_PORT,
    dashboard_open,
    first_byte,
    nginx,
    stream_rate,
    wrk,
)

OPEN_DASHBOARD = "sparkd, dashboard open"


class Bench:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.seconds = 2.0 if quick else 10.0
        self.rounds = 1 if quick else 3  # turns each wrk target takes; figures are medians
        self.figures: list[Figure] = []
        self.bed = PrivateSystemd.existing() or PrivateSystemd.boot()
        self.sparkd = f"http://127.0.0.1:{SPARKD_PORT}"
        self.installed = ""  # what ran, for the report

    def install(
        self, settings: str = "quiet_exit = 0\nqueue_cap = 2000\n", models: str = BASE_MODELS
    ) -> None:
        listen = f"127.0.0.1:{SPARKD_PORT}"
        # Swaps at once: the swap figure is sparkd's own cost, not the policy's wait (docs/scheduling.md).
        settings = "swap_hold = 0\n" + settings
        install_sparkd(self.bed, listen, KEY, settings=settings, models=models, command=PACKAGED_SPARKD)

    def unit(self, model: str) -> str:
        return f"sparkd-{model}.service"

    def systemctl(self, *args: str) -> None:
        self.bed.run("systemctl", *args)

    def systemctl_cost(self) -> float:
        """Seconds a `systemctl` call from here takes to do nothing (median of five)."""
        took = []
        for _ in range(5):
            started = time.monotonic()
            self.systemctl("show", "--property=Id", self.unit("bench-a"))
            took.append(time.monotonic() - started)
        return statistics.median(took)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        ratio = f"  ratio {figure.ratio:.2f}" if figure.ratio is not None else ""
        base = f"  {figure.baseline_name} {figure.baseline:.3f}" if figure.baseline is not None else ""
        ref = f"  nginx {figure.reference:.3f}" if figure.reference is not None else ""
        verdict = {True: "met", False: "MISSED", None: ""}[figure.met]
        print(
            f"{figure.name:<48} sparkd {figure.sparkd:.3f} {figure.unit}{base}{ref}{ratio}  "
            f"[{figure.target}] {verdict}",
            flush=True,
        )

    def hot_path(self) -> None:
        runs = self._wrk_rounds()
        d, n, s = runs["direct"], runs["nginx"], runs["sparkd"]
        added = s[1]["p50_ms"] - d[1]["p50_ms"]
        self.add(
            Figure(
                "added latency, c=1, p50 (ms)",
                added,
                "ms",
                "direct p50",
                d[1]["p50_ms"],
                n[1]["p50_ms"] - d[1]["p50_ms"],
                "<= 0.3 ms added",
                added <= 0.3,
            )
        )
        self.add(
            Figure(
                "added latency, c=1, p99 (ms)",
                s[1]["p99_ms"] - d[1]["p99_ms"],
                "ms",
                "direct p99",
                d[1]["p99_ms"],
                n[1]["p99_ms"] - d[1]["p99_ms"],
                "reported",
            )
        )
        self.add(
            Figure(
                "request rate, c=64 (req/s)",
                s[64]["rps"],
                "req/s",
                "direct",
                d[64]["rps"],
                n[64]["rps"],
                ">= 3,000 req/s",
                s[64]["rps"] >= 3000,
            )
        )
        self.add(
            Figure(
                "latency, c=64, p50 (ms)",
                s[64]["p50_ms"],
                "ms",
                "direct",
                d[64]["p50_ms"],
                n[64]["p50_ms"],
                "reported",
            )
        )
        self.add(
            Figure(
                "latency, c=64, p99 (ms)",
                s[64]["p99_ms"],
                "ms",
                "direct",
                d[64]["p99_ms"],
                n[64]["p99_ms"],
                "reported",
            )
        )
        dm, sm = runs["direct messages"], runs["sparkd messages"]
        added = sm[1]["p50_ms"] - dm[1]["p50_ms"]
        self.add(
            Figure(
                "/v1/messages added latency, c=1, p50 (ms)",
                added,
                "ms",
                "direct p50",
                dm[1]["p50_ms"],
                None,
                "<= 0.3 ms added",
                added <= 0.3,
            )
        )
        self.add(
            Figure(
                "/v1/messages request rate, c=64 (req/s)",
                sm[64]["rps"],
                "req/s",
                "direct",
                dm[64]["rps"],
                None,
                ">= 3,000 req/s",
                sm[64]["rps"] >= 3000,
            )
        )
        # The same requests with a dashboard's live stream open: no work on the hot path.
        o = runs[OPEN_DASHBOARD]
        opened = o[1]["p50_ms"] - d[1]["p50_ms"]
        closed = s[1]["p50_ms"] - d[1]["p50_ms"]
        self.add(
            Figure(
                "added latency, c=1, p50, dashboard open (ms)",
                opened,
                "ms",
                "closed",
                closed,
                None,
                "within 0.05 ms of closed",
                opened <= closed + 0.05,
            )
        )
        self.add(
            Figure(
                "request rate, c=64, dashboard open (req/s)",
                o[64]["rps"],
                "req/s",
                "closed",
                s[64]["rps"],
                None,
                ">= 0.9x closed",
                o[64]["rps"] >= 0.9 * s[64]["rps"],
            )
        )
        errors = sum(r[c]["errors"] for r in runs.values() for c in (1, 64))
        if errors:
            print(f"warning: wrk counted {errors} errors", flush=True)

    def _wrk_rounds(self) -> dict[str, dict[int, dict[str, float]]]:
        """wrk at c=1 and c=64 against the engine alone, through nginx and through sparkd; medians.

        Chat completions through all three; Anthropic messages straight and through sparkd.
        """
        first_byte(self.sparkd)  # bench-a ready
        direct = f"http://127.0.0.1:{ENGINE_A}"
        # The three targets take turns, round after round, and each figure is
        # the median over rounds: the machine's own drift (other tenants,
        # frequency) then moves the baseline as much as sparkd.
        rounds: dict[str, dict[int, list[dict[str, float]]]] = {}
        with nginx(ENGINE_A) as via_nginx:
            targets = [
                ("direct", direct, "chat"),
                ("nginx", via_nginx, "chat"),
                ("sparkd", self.sparkd, "chat"),
                ("direct messages", direct, "messages"),
                ("sparkd messages", self.sparkd, "messages"),
                (OPEN_DASHBOARD, self.sparkd, "chat"),
            ]
            for _ in range(self.rounds):
                for name, url, api in targets:
                    for c in (1, 64):
                        with dashboard_open(self.sparkd) if name == OPEN_DASHBOARD else nullcontext():
                            measured = wrk(url, c, self.seconds, "bench-a", api)
                        rounds.setdefault(name, {}).setdefault(c, []).append(measured)
        return {
            name: {c: _medians(results) for c, results in by_concurrency.items()}
            for name, by_concurrency in rounds.items()
        }

    def streaming(self) -> None:
        first_byte(self.sparkd, model="bench-stream")
        direct = f"http://127.0.0.1:{ENGINE_STREAM}"
        for streams in (64, 256):
            with nginx(ENGINE_STREAM) as via_nginx:
                results = {
                    name: uvloop.run(stream_rate(url, streams, self.seconds))
                    for name, url in (("direct", direct), ("nginx", via_nginx), ("sparkd", self.sparkd))
                }
            d, n, s = results["direct"], results["nginx"], results["sparkd"]
            ratio = s["chunks_per_s"] / d["chunks_per_s"] if d["chunks_per_s"] else 0.0
            self.add(
                Figure(
                    f"stream chunks/s, {streams} streams",
                    s["chunks_per_s"],
                    "chunks/s",
                    "direct",
                    d["chunks_per_s"],
                    n["chunks_per_s"],
                    ">= 0.95x direct",
                    ratio >= 0.95,
                )
            )
            self.add(
                Figure(
                    f"inter-chunk delay, {streams} streams (ms)",
                    s["gap_ms"],
                    "ms",
                    "direct",
                    d["gap_ms"],
                    n["gap_ms"],
                    "reported",
                )
            )
        direct_messages = uvloop.run(stream_rate(direct, 64, self.seconds, "messages"))
        sparkd_messages = uvloop.run(stream_rate(self.sparkd, 64, self.seconds, "messages"))
        base = direct_messages["chunks_per_s"]
        ratio = sparkd_messages["chunks_per_s"] / base if base else 0.0
        self.add(
            Figure(
                "/v1/messages stream events/s, 64 streams",
                sparkd_messages["chunks_per_s"],
                "events/s",
                "direct",
                base,
                None,
                ">= 0.95x direct",
                ratio >= 0.95,
            )
        )

    def run(self) -> list[Figure]:
        steps = (
            Bench.hot_path,
            Bench.streaming,
            lifecycle.cold_start,
            lifecycle.swap,
            lifecycle.footprint,
            lifecycle.scale,
        )
        with packaged_sparkd(self.bed) as self.installed:
            self.install()
            for step in steps:
                step(self)
        return self.figures


def _medians(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds per figure: proves the harness runs")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    bench = Bench(args.quick)
    figures = bench.run()
    if not args.no_report:
        write_report(figures, args.quick, bench.installed)
        print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
