"""The benchmarks' tools: wrk, a lean SSE counter, first bytes, sparkd's process, nginx for reference."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed import PrivateSystemd

ROOT = Path(__file__).resolve().parent.parent
SPARKD_PORT, NGINX_PORT = 18019, 18088
ENGINE_A, ENGINE_B, ENGINE_STREAM = 18201, 18202, 18203
KEY = "bench-" + secrets.token_hex(16)
DEMO_ENGINE = Path("/var/lib/sparkd/demo")
PACKAGED_SPARKD = "/usr/bin/sparkd"


# The two API families the benchmarks speak: wrk's script and the route, the body's shape.
ROUTES = {"chat": ("chat.lua", "/v1/chat/completions"), "messages": ("messages.lua", "/v1/messages")}


def wrk(url: str, connections: int, seconds: float, model: str, api: str = "chat") -> dict[str, float]:
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
            str(ROOT / "bench" / ROUTES[api][0]),
            f"{url}{ROUTES[api][1]}",
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


async def stream_rate(url: str, streams: int, seconds: float, api: str = "chat") -> dict[str, float]:
    """Open `streams` SSE answers at once; count chunks and the gaps between them for `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    fields = {"model": "bench-stream", "messages": [{"role": "user", "content": "go"}], "stream": True}
    body = json.dumps({**fields, "max_tokens": 1_000_000} if api == "messages" else fields).encode()
    request = (
        f"POST {ROUTES[api][1]} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {KEY}\r\n"
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
def dashboard_open(url: str) -> Iterator[list[int]]:
    """A dashboard's live stream (/sparkd/events) open while the block runs, as a browser keeps it;
    yields a one-item list: the finished requests it was told of."""
    import threading

    seen = [0]
    request = urllib.request.Request(url + "/sparkd/events", headers={"Authorization": f"Bearer {KEY}"})
    stream = urllib.request.urlopen(request, timeout=30)

    def read() -> None:
        try:
            for line in stream:
                if line.startswith(b"event: request"):
                    seen[0] += 1
        except (OSError, ValueError, AttributeError):
            pass  # closed under it when the block ended (http.client then has no file left)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        stream.close()
        reader.join(timeout=5)
