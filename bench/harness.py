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
import asyncio
import datetime
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from testbed import PrivateSystemd, install_sparkd  # noqa: E402

from tests.fake_engine import catalogue_entry  # noqa: E402

SPARKD_PORT, NGINX_PORT = 18019, 18088
ENGINE_A, ENGINE_B, ENGINE_STREAM = 18201, 18202, 18203
KEY = "bench-" + secrets.token_hex(16)
REPORT = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results.json"
DEMO_ENGINE = Path("/var/lib/sparkd/demo")
PACKAGED_SPARKD = "/usr/bin/sparkd"


BASE_MODELS = (
    '[models."qwen3.5-0.8b"]\nstatus = "disabled"\n'
    + catalogue_entry("bench-a", ENGINE_A, ', "--interval", "0", "--chunks", "1", "--start-delay", "1"')
    + catalogue_entry("bench-b", ENGINE_B, ', "--interval", "0", "--chunks", "1", "--start-delay", "1"')
    + catalogue_entry("bench-stream", ENGINE_STREAM, ', "--interval", "0.05", "--chunks", "100000"')
)


def many_models(count: int) -> str:
    return "".join(
        f'\n[models.bulk-{i:03d}]\nengine = "generic"\nimage = "localhost/sparkd-demo:latest"\n'
        f'command = ["true"]\ncontext_length = 4096\ngpu = false\n'
        for i in range(count)
    )


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


# Measuring tools ----------------------------------------------------------------


def wrk(url: str, connections: int, seconds: float, model: str) -> dict[str, float]:
    threads = min(2, connections)
    env = {**os.environ, "BENCH_KEY": KEY, "BENCH_MODEL": model}
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "chat.lua"),
            f"{url}/v1/chat/completions",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    requests, duration_us, p50_us, p99_us, _mean_us, errors = line.split()[1:]
    return {
        "rps": int(requests) / (int(duration_us) / 1e6),
        "p50_ms": float(p50_us) / 1000,
        "p99_ms": float(p99_us) / 1000,
        "errors": int(errors),
    }


class _StreamCounter(asyncio.Protocol):
    """One SSE answer read straight off the socket: events counted, gaps between reads timed.

    The client is kept as cheap as a client can be (no HTTP parsing beyond
    counting `data:`), so the CPU it needs does not decide the figure.
    """

    def __init__(self, gaps: list[float], counts: list[int]) -> None:
        self.gaps, self.counts = gaps, counts
        self.last: float | None = None
        self.tail = b""
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        # A marker split across two reads is counted in the second: the last
        # four bytes of a read cannot hold a whole one.
        self.counts[0] += (self.tail + data).count(b"data:")
        self.tail = data[-4:]
        if self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def stream_rate(url: str, streams: int, seconds: float) -> dict[str, float]:
    """Open `streams` SSE answers at once; count chunks and the gaps between them for `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(
        {"model": "bench-stream", "messages": [{"role": "user", "content": "go"}], "stream": True}
    ).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    counts = [0]
    transports = []
    for _ in range(streams):
        transport, _protocol = await loop.create_connection(
            lambda: _StreamCounter(gaps, counts), host, int(port)
        )
        transport.write(request)
        transports.append(transport)
    await asyncio.sleep(1.0)  # every stream under way before counting
    counts[0], gaps[:] = 0, []
    await asyncio.sleep(seconds)
    chunks = counts[0]
    measured = list(gaps)
    for transport in transports:
        transport.close()
    return {"chunks_per_s": chunks / seconds, "gap_ms": statistics.mean(measured) * 1000 if measured else 0.0}


def first_byte(url: str, path: str = "/v1/chat/completions", model: str = "bench-a") -> float:
    """Seconds from sending a request to its first byte."""
    if path == "/healthz":
        req = urllib.request.Request(url + path)
    else:
        data = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
        req = urllib.request.Request(
            url + path,
            data=data,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=120) as response:
        response.read(1)
        took = time.monotonic() - started
        response.read()
    return took


def wait_healthy(port: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"engine on {port} never became healthy")


def sparkd_process(bed: PrivateSystemd) -> tuple[int, int, float]:
    """(pid, RSS KiB, CPU seconds so far) of sparkd; (0, 0, 0) when it is not running."""
    pid = int(bed.run("systemctl", "show", "sparkd.service", "-p", "MainPID", "--value").stdout.strip() or 0)
    if not pid:
        return 0, 0, 0.0
    status = bed.run("cat", f"/proc/{pid}/status", check=False).stdout
    stat = bed.run("cat", f"/proc/{pid}/stat", check=False).stdout.split()
    rss = int(next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0"))
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[13]) + int(stat[14])) / ticks if len(stat) > 14 else 0.0
    return pid, rss, cpu


@contextmanager
def nginx(upstream_port: int) -> Iterator[str]:
    prefix = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    (prefix / "logs").mkdir()
    (prefix / "nginx.conf").write_text(f"""
worker_processes 1;
error_log {prefix}/logs/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream engine {{ server 127.0.0.1:{upstream_port}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{NGINX_PORT};
        location / {{
            proxy_pass http://engine;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
""")
    process = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    )
    try:
        time.sleep(0.5)
        yield f"http://127.0.0.1:{NGINX_PORT}"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(prefix, ignore_errors=True)


@contextmanager
def packaged_sparkd(bed: PrivateSystemd) -> Iterator[str]:
    """This checkout's .deb, built and installed with apt as a user installs it; purged afterwards.

    Yields what runs: the package's version and its Python's.
    """
    if subprocess.run(["dpkg", "-s", "sparkd"], capture_output=True, check=False).returncode == 0:
        raise SystemExit("the benchmark installs its own build of sparkd: remove the installed one first")
    built = subprocess.run(
        [str(ROOT / "packaging" / "build-deb"), "--out", str(ROOT / "build")],
        capture_output=True,
        text=True,
        check=True,
    )
    deb = built.stdout.strip().splitlines()[-1]
    _apt(bed, "install", deb)
    try:
        version = bed.run("dpkg-query", "-W", "-f", "${Version}", "sparkd").stdout.strip()
        python = bed.run(
            "/usr/lib/sparkd/venv/bin/python", "-c", "import platform; print(platform.python_version())"
        ).stdout.strip()
        yield f"sparkd {version} from its .deb, on Python {python}"
    finally:
        # The purge takes /var/lib/sparkd, where the demo engine (minutes to make) lives too.
        kept = Path("/var/lib/sparkd-demo.bench")
        if DEMO_ENGINE.exists():
            DEMO_ENGINE.rename(kept)
        try:
            _apt(bed, "purge", "sparkd")
        finally:
            if kept.exists():
                DEMO_ENGINE.parent.mkdir(parents=True, exist_ok=True)
                kept.rename(DEMO_ENGINE)


def _apt(bed: PrivateSystemd, *args: str) -> None:
    # Inside the bed, so that the maintainer scripts talk to its systemd.
    bed.run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q", *args, timeout=300)


# The run ---------------------------------------------------------------------------


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
        first_byte(self.sparkd)  # bench-a ready
        direct = f"http://127.0.0.1:{ENGINE_A}"
        # The three targets take turns, round after round, and each figure is
        # the median over rounds: the machine's own drift (other tenants,
        # frequency) then moves the baseline as much as sparkd.
        rounds: dict[str, dict[int, list[dict[str, float]]]] = {}
        with nginx(ENGINE_A) as via_nginx:
            for _ in range(self.rounds):
                for name, url in (("direct", direct), ("nginx", via_nginx), ("sparkd", self.sparkd)):
                    for c in (1, 64):
                        rounds.setdefault(name, {}).setdefault(c, []).append(
                            wrk(url, c, self.seconds, "bench-a")
                        )
        runs = {
            name: {c: _medians(results) for c, results in by_concurrency.items()}
            for name, by_concurrency in rounds.items()
        }
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
                "<= 0.5 ms added",
                added <= 0.5,
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
        errors = sum(r[c]["errors"] for r in runs.values() for c in (1, 64))
        if errors:
            print(f"warning: wrk counted {errors} errors", flush=True)

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

    def cold_start(self) -> None:
        alone, through = [], []
        # An engine's start varies by tens of ms from one start to the next,
        # and the machine drifts: each start through sparkd is paired with the
        # start alone just before it, and the overhead is the median of the
        # pairs' differences, over many starts.
        for _ in range(1 if self.quick else 15):
            self.systemctl("stop", self.unit("bench-a"))
            started = time.monotonic()
            self.systemctl("start", "--no-block", self.unit("bench-a"))
            wait_healthy(ENGINE_A)
            alone.append(time.monotonic() - started)
            self.systemctl("stop", self.unit("bench-a"))
            time.sleep(0.5)  # sparkd has seen it stop
            through.append(first_byte(self.sparkd))
        # `alone` began before nsenter and systemctl were spawned, which sparkd
        # does not pay: that cost is measured with a call that does nothing.
        cost = self.systemctl_cost()
        alone = [t - cost for t in alone]
        overhead = _paired_overhead(through, alone)
        self.add(
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

    def swap(self) -> None:
        alone, through = [], []
        for _ in range(1 if self.quick else 9):  # paired, as the cold starts are
            first_byte(self.sparkd, model="bench-a")
            self.systemctl("stop", self.unit("bench-b"))
            time.sleep(0.5)
            started = time.monotonic()
            through.append(first_byte(self.sparkd, model="bench-b"))
            # The same work without sparkd: stop A, start B, wait for B.
            first_byte(self.sparkd, model="bench-a")
            time.sleep(0.5)
            started = time.monotonic()
            self.systemctl("stop", self.unit("bench-a"))
            self.systemctl("start", "--no-block", self.unit("bench-b"))
            wait_healthy(ENGINE_B)
            alone.append(time.monotonic() - started)
        # Two systemctl calls began inside `alone`: their spawning is not the engines' work.
        cost = self.systemctl_cost()
        alone = [t - 2 * cost for t in alone]
        overhead = _paired_overhead(through, alone)
        self.add(
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

    def footprint(self) -> None:
        first_byte(self.sparkd, "/healthz")
        time.sleep(3)  # idle: some seconds after the last request
        _, rss, cpu_before = sparkd_process(self.bed)
        idle = 3.0 if self.quick else 10.0
        time.sleep(idle)
        _, rss_after, cpu_after = sparkd_process(self.bed)
        cpu = (cpu_after - cpu_before) / idle * 100
        loaded = max(rss, rss_after) / 1024
        # The same, for a sparkd that has answered one request since it started.
        self.systemctl("stop", "sparkd.service")
        first_byte(self.sparkd)
        time.sleep(3)
        fresh = sparkd_process(self.bed)[1] / 1024
        self.add(Figure("idle RSS, fresh (MB)", fresh, "MB", target="<= 60 MB", met=fresh <= 60))
        self.add(
            Figure("idle RSS after the runs above (MB)", loaded, "MB", target="<= 60 MB", met=loaded <= 60)
        )
        self.add(Figure("idle CPU (%)", cpu, "%", target="reported"))
        self.install(settings="quiet_exit = 1\nqueue_cap = 2000\n")
        # sparkd leaves only when no main model runs and no connection is open.
        for model in ("bench-a", "bench-b", "bench-stream"):
            self.systemctl("stop", self.unit(model))
        first_byte(self.sparkd, "/healthz")
        wait_until(lambda: sparkd_process(self.bed)[0] == 0, 30)
        self.add(
            Figure(
                "RSS after self-exit (MB)",
                sparkd_process(self.bed)[1] / 1024,
                "MB",
                target="0",
                met=sparkd_process(self.bed)[0] == 0,
            )
        )
        firsts = []
        for _ in range(1 if self.quick else 15):
            wait_until(lambda: sparkd_process(self.bed)[0] == 0, 30)
            firsts.append(first_byte(self.sparkd, "/healthz") * 1000)
        self.add(
            Figure(
                "first byte after socket activation (ms)",
                statistics.median(firsts),
                "ms",
                target="<= 300 ms",
                met=statistics.median(firsts) <= 300,
            )
        )

    def scale(self) -> None:
        results = {}
        for count in (10, 500):
            self.install(models=BASE_MODELS + many_models(count - 3))
            first_byte(self.sparkd)
            results[count] = (
                wrk(self.sparkd, 1, self.seconds, "bench-a")["p50_ms"],
                sparkd_process(self.bed)[1],
            )
        small, large = results[10], results[500]
        self.add(
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
        self.add(
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
        self.install()
        self.systemctl("stop", self.unit("bench-b"))
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
                    async with session.post(f"{self.sparkd}/v1/chat/completions", json=body) as response:
                        await response.read()
                        return response.status

                task = asyncio.gather(*(one() for _ in range(1000)))
                while not task.done():
                    peak = max(peak, sparkd_process(self.bed)[1])
                    await asyncio.sleep(0.2)
                statuses = await task
                assert statuses == [200] * 1000, set(statuses)

        asyncio.run(queue_thousand())
        self.add(
            Figure(
                "RSS with 1000 queued requests (MB)",
                peak / 1024,
                "MB",
                target="<= 100 MB",
                met=peak / 1024 <= 100,
            )
        )

    def run(self) -> list[Figure]:
        steps = (self.hot_path, self.streaming, self.cold_start, self.swap, self.footprint, self.scale)
        with packaged_sparkd(self.bed) as self.installed:
            self.install()
            for step in steps:
                step()
        return self.figures


def _paired_overhead(through: list[float], alone: list[float]) -> float:
    """Milliseconds sparkd adds: the median of each run's difference to the run alone beside it."""
    return statistics.median(t - a for t, a in zip(through, alone, strict=True)) * 1000


def _medians(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.1)


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
