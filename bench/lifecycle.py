"""The benchmarks of a model's lifecycle and of sparkd's own size: cold start, swap, memory, scale."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import TYPE_CHECKING

import aiohttp
from testbed import wait_for

from bench.packaged import BASE_MODELS, many_models
from bench.report import Figure
from bench.tools import ENGINE_A, ENGINE_B, KEY, first_byte, sparkd_process, wait_healthy, wrk

if TYPE_CHECKING:
    from bench.harness import Bench


def cold_start(b: Bench) -> None:
    alone, through = [], []
    # An engine's start varies by tens of ms from one start to the next,
    # and the machine drifts: each start through sparkd is paired with the
    # start alone just before it, and the overhead is the median of the
    # pairs' differences, over many starts.
    for _ in range(1 if b.quick else 15):
        b.systemctl("stop", b.unit("bench-a"))
        started = time.monotonic()
        b.systemctl("start", "--no-block", b.unit("bench-a"))
        wait_healthy(ENGINE_A)
        alone.append(time.monotonic() - started)
        b.systemctl("stop", b.unit("bench-a"))
        time.sleep(0.5)  # sparkd has seen it stop
        through.append(first_byte(b.sparkd))
    # `alone` began before nsenter and systemctl were spawned, which sparkd
    # does not pay: that cost is measured with a call that does nothing.
    cost = b.systemctl_cost()
    alone = [t - cost for t in alone]
    overhead = _paired_overhead(through, alone)
    b.add(
        Figure(
            "cold-start overhead (ms)",
            overhead,
            "ms",
            "engine start alone (ms)",
            statistics.median(alone) * 1000,
            None,
            "<= 50 ms",
            overhead <= 50,
        )
    )


def swap(b: Bench) -> None:
    alone, through = [], []
    for _ in range(1 if b.quick else 9):  # paired, as the cold starts are
        first_byte(b.sparkd, model="bench-a")
        b.systemctl("stop", b.unit("bench-b"))
        time.sleep(0.5)
        started = time.monotonic()
        through.append(first_byte(b.sparkd, model="bench-b"))
        # The same work without sparkd: stop A, start B, wait for B.
        first_byte(b.sparkd, model="bench-a")
        time.sleep(0.5)
        started = time.monotonic()
        b.systemctl("stop", b.unit("bench-a"))
        b.systemctl("start", "--no-block", b.unit("bench-b"))
        wait_healthy(ENGINE_B)
        alone.append(time.monotonic() - started)
    # Two systemctl calls began inside `alone`: their spawning is not the engines' work.
    cost = b.systemctl_cost()
    alone = [t - 2 * cost for t in alone]
    overhead = _paired_overhead(through, alone)
    b.add(
        Figure(
            "swap overhead A->B (ms)",
            overhead,
            "ms",
            "stop A + start B alone (ms)",
            statistics.median(alone) * 1000,
            None,
            "<= 100 ms",
            overhead <= 100,
        )
    )


def footprint(b: Bench) -> None:
    first_byte(b.sparkd, "/healthz")
    time.sleep(3)  # idle: some seconds after the last request
    _, rss, cpu_before = sparkd_process(b.bed)
    idle = 3.0 if b.quick else 10.0
    time.sleep(idle)
    _, rss_after, cpu_after = sparkd_process(b.bed)
    cpu = (cpu_after - cpu_before) / idle * 100
    loaded = max(rss, rss_after) / 1024
    # The same, for a sparkd that has answered one request since it started.
    b.systemctl("stop", "sparkd.service")
    first_byte(b.sparkd)
    time.sleep(3)
    fresh = sparkd_process(b.bed)[1] / 1024
    b.add(Figure("idle RSS, fresh (MB)", fresh, "MB", target="<= 60 MB", met=fresh <= 60))
    b.add(Figure("idle RSS after the runs above (MB)", loaded, "MB", target="<= 60 MB", met=loaded <= 60))
    b.add(Figure("idle CPU (%)", cpu, "%", target="reported"))
    b.install(settings="quiet_exit = 1\nqueue_cap = 2000\n")
    # sparkd leaves only when no main model runs and no connection is open.
    for model in ("bench-a", "bench-b", "bench-stream"):
        b.systemctl("stop", b.unit(model))
    first_byte(b.sparkd, "/healthz")
    wait_for(lambda: sparkd_process(b.bed)[0] == 0, 30, "sparkd to exit")
    b.add(
        Figure(
            "RSS after b-exit (MB)",
            sparkd_process(b.bed)[1] / 1024,
            "MB",
            target="0",
            met=sparkd_process(b.bed)[0] == 0,
        )
    )
    firsts = []
    for _ in range(1 if b.quick else 15):
        wait_for(lambda: sparkd_process(b.bed)[0] == 0, 30, "sparkd to exit")
        firsts.append(first_byte(b.sparkd, "/healthz") * 1000)
    b.add(
        Figure(
            "first byte after socket activation (ms)",
            statistics.median(firsts),
            "ms",
            target="<= 300 ms",
            met=statistics.median(firsts) <= 300,
        )
    )


def scale(b: Bench) -> None:
    results = {}
    for count in (10, 500):
        b.install(models=BASE_MODELS + many_models(count - 3))
        first_byte(b.sparkd)
        results[count] = (
            wrk(b.sparkd, 1, b.seconds, "bench-a")["p50_ms"],
            sparkd_process(b.bed)[1],
        )
    small, large = results[10], results[500]
    b.add(
        Figure(
            "p50 latency, 500 vs 10 models (ms)",
            large[0],
            "ms",
            "10 models",
            small[0],
            None,
            "flat within noise",
            large[0] <= small[0] * 1.25 + 0.1,
        )
    )
    b.add(
        Figure(
            "RSS with 500 models (MB)",
            large[1] / 1024,
            "MB",
            "10 models",
            small[1] / 1024,
            None,
            "<= 100 MB",
            large[1] / 1024 <= 100,
        )
    )
    b.install()
    b.systemctl("stop", b.unit("bench-b"))
    time.sleep(0.5)
    peak = 0

    async def queue_thousand() -> None:
        nonlocal peak
        connector = aiohttp.TCPConnector(limit=0)
        body = {"model": "bench-b", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession(
            connector=connector, headers={"Authorization": f"Bearer {KEY}"}
        ) as session:

            async def one() -> int:
                async with session.post(f"{b.sparkd}/v1/chat/completions", json=body) as response:
                    await response.read()
                    return response.status

            task = asyncio.gather(*(one() for _ in range(1000)))
            while not task.done():
                peak = max(peak, sparkd_process(b.bed)[1])
                await asyncio.sleep(0.2)
            statuses = await task
            assert statuses == [200] * 1000, set(statuses)

    asyncio.run(queue_thousand())
    b.add(
        Figure(
            "RSS with 1000 queued requests (MB)",
            peak / 1024,
            "MB",
            target="<= 100 MB",
            met=peak / 1024 <= 100,
        )
    )


def _paired_overhead(through: list[float], alone: list[float]) -> float:
    """Milliseconds sparkd adds: the median of each run's difference to the run alone beside it."""
    return statistics.median(t - a for t, a in zip(through, alone, strict=True)) * 1000
