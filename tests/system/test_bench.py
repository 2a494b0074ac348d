"""The benchmarks still run (quick mode); their targets are judged by `bench/run`, not by tests."""

from __future__ import annotations

import math

from testbed import PrivateSystemd

from bench.harness import Bench


def test_the_benchmark_harness_measures_every_figure(bed: PrivateSystemd) -> None:
    figures = Bench(quick=True).run()
    names = {f.name for f in figures}
    for expected in (
        "added latency, c=1, p50 (ms)",
        "request rate, c=64 (req/s)",
        "stream chunks/s, 256 streams",
        "cold-start overhead (ms)",
        "swap overhead A->B (ms)",
        "idle RSS, fresh (MB)",
        "idle RSS after the runs above (MB)",
        "first byte after socket activation (ms)",
        "RSS with 1000 queued requests (MB)",
        "/v1/messages added latency, c=1, p50 (ms)",
        "/v1/messages request rate, c=64 (req/s)",
        "/v1/messages stream events/s, 64 streams",
        "added latency, c=1, p50, dashboard open (ms)",
    ):
        assert expected in names
    assert all(math.isfinite(f.sparkd) for f in figures)
