"""`sparkd serve`: the socket-activated daemon, wired together and shut down in a stated order.

Start: settings and catalogue (fail fast), the socket systemd hands over,
API keys, the D-Bus thread, adoption of running model units, then READY=1.
Run: STATUS= and WATCHDOG=1 from the event loop (a wedged loop stops pinging
and systemd restarts sparkd), SIGHUP reloads the keys, and after
`quiet_exit` with no main model, no queue and no connection sparkd exits;
the socket brings it back on the next request.
Stop (SIGTERM or quiet): STOPPING=1, stop accepting, let running answers
finish (bounded), release D-Bus. Model units keep running: the next sparkd
adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import time
from pathlib import Path

import uvloop
from aiohttp import web

from sparkd import logs
from sparkd.activation import Notifier, bind, systemd_sockets
from sparkd.app import Edges, build_app
from sparkd.appstate import ENGINES, EVENTS, RUNTIME
from sparkd.auth import KeyFileError, KeyRing, key_file
from sparkd.catalogue import Catalogue
from sparkd.config import ConfigError, load_config, state_cache
from sparkd.edge import HEADER_LIMIT
from sparkd.errors import ApiError
from sparkd.hostfacts import detect_host
from sparkd.housekeeping import Housekeeping, load_memory
from sparkd.memory import MemoryBook, mem_available
from sparkd.pulls import DiskPulls
from sparkd.sessions import load_secret
from sparkd.settings import Settings
from sparkd.systemd import SystemdBus

log = logging.getLogger("sparkd.daemon")
SHUTDOWN_GRACE = 30.0  # seconds running answers get to finish when sparkd stops
GC_YOUNG_THRESHOLD = 5000  # allocations between young-generation collections (Python's default: 700)
ACCEPT_RACE_GRACE = 0.25  # seconds a just-accepted connection gets to send its request at shutdown


def main(config: Path | None) -> int:
    startup = StartupClock()
    startup.lap("interpreter and imports")
    logs.setup()
    _raise_open_files_limit()
    activated = systemd_sockets()
    try:
        loaded = load_config(config, state_cache())
        settings, catalogue = loaded.settings, loaded.catalogue
        keys = KeyRing(key_file(settings.api_keys_file))
        keys.load()
    except (ConfigError, KeyFileError) as error:
        log.error("cannot serve: %s", error)
        if not activated:
            return 2
        # Exiting would have systemd restart sparkd in a loop while clients
        # wait on the socket with no answer; each gets a 503 that says why.
        return uvloop.run(serve_misconfigured(activated, str(error)))
    startup.lap("settings and catalogue")
    sockets = activated or [bind(settings.listen)]
    # uvloop: the same asyncio, with libuv underneath; the hot path is about a
    # third cheaper in CPU, which is what bounds the request rate on a Spark.
    return uvloop.run(serve(settings, catalogue, sockets, keys, startup))


MISCONFIGURED = ApiError(
    503,
    "sparkd cannot serve: its configuration has an error, which the journal names "
    "(journalctl -u sparkd); fix it, then run: systemctl restart sparkd",
    "configuration_error",
)


async def serve_misconfigured(sockets: list[socket.socket], problem: str) -> int:
    """Answer every request with a 503 until stopped; `systemctl status sparkd` shows the problem.

    The problem itself (file, line, field) goes to the journal and the status
    line, for the machine's administrators, not to every client on the LAN.
    """

    async def refuse(request: web.BaseRequest) -> web.StreamResponse:
        return MISCONFIGURED.response()

    runner = web.ServerRunner(web.Server(refuse), handle_signals=False)
    await runner.setup()
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    notifier = Notifier()
    notifier.ready()
    notifier.status(f"not serving: configuration error: {problem}")
    await stop.wait()
    notifier.stopping()
    await runner.cleanup()
    return 0


class StartupClock:
    """Where start-up time goes, counted from the kernel's exec of this process.

    Socket activation makes start-up part of the first client's wait, so the
    ready line says how long it took and what took it.
    """

    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self._last = self.started = time.monotonic() - _seconds_since_exec()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        self.laps.append((what, now - self._last))
        self._last = now

    def summary(self) -> str:
        total = self._last - self.started
        return f"{total:.2f}s (" + ", ".join(f"{what} {seconds:.2f}s" for what, seconds in self.laps) + ")"


def _seconds_since_exec() -> float:
    """Age of this process from /proc (10 ms resolution); 0 where /proc cannot say."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks since boot
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError):
        return 0.0


def _edges(
    settings: Settings, catalogue: Catalogue, memory: MemoryBook, loop: asyncio.AbstractEventLoop
) -> Edges:
    """The real machine behind the app: systemd on the bus, memory readings, weights on disk."""
    host = detect_host(settings)
    return Edges(
        connect_units=lambda on_event: SystemdBus(loop, on_event),
        memory=memory,
        memory_readings=lambda: _memory_readings(memory),
        host_has_gpu=host.gpu,
        pulls=DiskPulls(catalogue, host, settings.pulls_dir),
        ui_secret=load_secret(settings.state_dir / "ui-session.key"),
    )


async def serve(
    settings: Settings,
    catalogue: Catalogue,
    sockets: list[socket.socket],
    keys: KeyRing,
    startup: StartupClock,
) -> int:
    loop = asyncio.get_running_loop()
    notifier, stop = Notifier(), asyncio.Event()
    memory_file = settings.state_dir / "memory.json"
    memory = load_memory(memory_file)
    app = build_app(settings, catalogue, keys, _edges(settings, catalogue, memory, loop))
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE,
        max_line_size=HEADER_LIMIT,
        max_field_size=HEADER_LIMIT,
    )

    def connections() -> int:
        return len(runner.server.connections) if runner.server is not None else 0

    keeper = Housekeeping(
        app[RUNTIME],
        app[ENGINES],
        notifier,
        memory_file,
        settings.quiet_exit,
        connections,
        stop,
        events=app[EVENTS],
    )
    app.cleanup_ctx.append(keeper.while_serving)
    try:
        await runner.setup()  # systemd, adoption, the request path: see sparkd.app
        startup.lap("D-Bus and adoption")
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _reload_keys, keys)
        notifier.ready()
        startup.lap("HTTP server")
        _collect_garbage_from_now_on()
        log.info(
            "sparkd ready in %s: %d models, listening on %d socket(s)",
            startup.summary(),
            len(catalogue.enabled()),
            len(sockets),
        )
        await stop.wait()
        notifier.stopping()
        await _stop_accepting(runner)
    finally:
        await runner.cleanup()  # running answers, then everything set up, in reverse
    log.info("stopped; model units keep running and are adopted by the next start")
    return 0


async def _stop_accepting(runner: web.AppRunner) -> None:
    log.info("stopping: no new connections; running answers get %.0fs", SHUTDOWN_GRACE)
    # A connection accepted in the instant before (a client racing the quiet
    # exit) gets a moment to send its request, so the shutdown waits for its
    # answer instead of resetting it; connections not yet accepted stay in
    # systemd's socket for the next sparkd.
    for site in list(runner.sites):
        await site.stop()
    await asyncio.sleep(ACCEPT_RACE_GRACE)


def _collect_garbage_from_now_on() -> None:
    """Turn the collector on (`sparkd serve` starts with it off), sparing what start-up built.

    Everything allocated so far (modules, catalogue, the app) lives as long as
    sparkd: frozen, the collector never walks it again, which keeps full
    collections cheap on the request path. A larger first generation means
    fewer collections for the short-lived objects each request makes.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()


def _raise_open_files_limit() -> None:
    """Two descriptors per proxied request: use the hard limit, not the soft one (often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _memory_readings(memory: MemoryBook) -> dict[str, float]:
    readings: dict[str, float] = {f"need:{model}": float(need) for model, need in memory.peaks.items()}
    with contextlib.suppress(OSError, ValueError):
        readings["available"] = float(mem_available())
    return readings


def _reload_keys(keys: KeyRing) -> None:
    try:
        keys.load()
        log.info("API keys reloaded: %d key(s)", len(keys.keys))
    except KeyFileError as error:
        log.error("API keys not reloaded, the old ones stay: %s", error)
