"""Verbs for the running daemon: status, start, stop, keep-warm, and logs from journald."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

from sparkd import names
from sparkd.commands import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, Verbs, catalogue_of
from sparkd.commands.output import ago, size, table

if TYPE_CHECKING:
    import argparse

    from sparkd.settings import Settings


def register(verbs: Verbs) -> None:
    status = verbs.add(
        "status",
        "what runs, what waits, memory",
        _status,
        "Each model's phase, since when, requests in flight and queued, idle time and time "
        "until the idle stop, memory; plus sparkd's own state. Enabled models that are "
        "stopped are listed with --all.",
    )
    status.add_argument("--json", action="store_true", help="the JSON behind the table")
    status.add_argument("--all", action="store_true", help="list stopped models too")
    start = verbs.add(
        "start",
        "start a model now and wait until it answers",
        _control,
        "Start a model now (after a busy tenant drains; single tenancy is respected) and wait "
        "until it is ready, showing its download and loading progress. Exits 1 with the cause if "
        "the start fails.",
    )
    start.add_argument("model")
    start.add_argument("--no-wait", action="store_true", help="return once the start is asked for")
    stop = verbs.add("stop", "stop a model now", _control, "Stop a model now.")
    stop.add_argument("model")
    warm = verbs.add(
        "keep-warm",
        "start a model and keep it from idle stops for a while",
        _control,
        "Start MODEL if needed and keep it running for DURATION (e.g. 2h) despite idleness.",
    )
    warm.add_argument("model")
    warm.add_argument("duration")
    logs = verbs.add(
        "logs",
        "a model's or sparkd's log, from journald",
        _logs,
        "Show `journalctl -u sparkd-<model>.service` (or sparkd.service for `sparkd`).",
    )
    logs.add_argument("name", metavar="MODEL|sparkd")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--since", help="like journalctl --since (e.g. '10 min ago')")
    logs.add_argument("-n", "--lines", type=int, default=100)


def _daemon_call(settings: Settings, method: str, path: str) -> tuple[int, Any]:
    from sparkd.daemon_client import DaemonClient, DaemonError, DaemonUnreachable

    client = DaemonClient.from_settings(settings)
    try:
        return 0, client.get(path) if method == "GET" else client.post(path)
    except DaemonUnreachable as error:
        print(f"sparkd: {error}\n  is sparkd.socket running? systemctl status sparkd.socket", file=sys.stderr)
        return EXIT_UNREACHABLE, None
    except DaemonError as error:
        print(f"sparkd: {error} (HTTP {error.status})", file=sys.stderr)
        return EXIT_USAGE if error.status in (400, 404) else EXIT_FAILED, None


def _status(args: argparse.Namespace, settings: Settings) -> int:
    code, status = _daemon_call(settings, "GET", "/sparkd/status")
    if code:
        return code
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    own = status["sparkd"]
    print(
        f"sparkd {own['version']}, up {ago(own['uptime_seconds'])}; GPU tenant: {own['tenant'] or 'none'}; "
        f"{own['queued']} queued; {size(own['memory_available_bytes'])} available"
    )
    rows = []
    for m in status["models"]:
        if not args.all and m["phase"] == "stopped" and not m["queued"]:
            continue
        memory = size(m["memory_bytes"])
        if m["observed_need_bytes"]:
            memory += f" (needs {size(m['observed_need_bytes'])})"
        rows.append(
            (
                m["id"],
                m["role"],
                "pulling" if m.get("start_step") == "downloading weights" else m["phase"],
                ago(m["since_seconds"]),
                str(m["in_flight"]),
                str(m["queued"]),
                ago(m["idle_seconds"]),
                ago(m["idle_stop_in_seconds"]),
                memory,
            )
        )
    if rows:
        table(
            ("MODEL", "ROLE", "PHASE", "SINCE", "IN FLIGHT", "QUEUED", "IDLE", "IDLE STOP IN", "MEMORY"), rows
        )
    else:
        print("no model is running (sparkd status --all lists every model)")
    for half in status.get("worker_halves", []):
        if args.all or half["phase"] != "stopped" or half["queued"]:
            lease = "leased by the peer" if half["leased"] else "queued" if half["queued"] else "idle"
            print(f"worker half of {half['model']} (for the peer): {half['phase']}, {lease}")
    for m in status["models"]:
        if m.get("pull"):
            print(f"{m['id']}: {m['pull']['line']}")
        if m["last_failure"]:
            print(f"last failure of {m['id']}: {m['last_failure']}")
    return 0


def _control(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/sparkd/models/{args.model}/{args.command}"
    if args.command == "keep-warm":
        path += f"?for={args.duration}"
    before = None
    if args.command == "start" and not args.no_wait:
        code, status = _daemon_call(settings, "GET", "/sparkd/status")
        if code:
            return code
        before = _model_in(status, args.model)
    code, answer = _daemon_call(settings, "POST", path)
    if code:
        return code
    print(f"{answer['model']}: {answer['phase']}" + (f" ({answer['note']})" if answer.get("note") else ""))
    if args.command != "start" or args.no_wait or answer["phase"] == "ready":
        return 0
    return _wait_until_ready(settings, answer["model"], (before or {}).get("last_failure"))


def _model_in(status: dict[str, Any], model: str) -> dict[str, Any] | None:
    return next((m for m in status["models"] if m["id"] == model), None)


def _wait_until_ready(settings: Settings, model: str, failure_before: str | None) -> int:
    """Follow the model's start through sparkd's status until it answers or fails."""
    import time

    began, shown, seen_starting = time.monotonic(), "", False
    terminal = sys.stdout.isatty()
    while True:
        code, status = _daemon_call(settings, "GET", "/sparkd/status")
        if code:
            return code
        state = _model_in(status, model) or {}
        elapsed = f"{time.monotonic() - began:.0f}s"
        phase = state.get("phase")
        if phase == "ready":
            print(("\r\033[K" if terminal else "") + f"{model}: ready after {elapsed}")
            return 0
        seen_starting = seen_starting or phase == "starting"
        failure = state.get("last_failure")
        if phase == "stopped" and (seen_starting or failure != failure_before):
            cause = failure if failure and failure != failure_before else "it stopped before it was ready"
            print(("\n" if terminal else "") + f"sparkd: {model} did not start: {cause}", file=sys.stderr)
            return EXIT_FAILED
        line = f"{model}: {start_line(state, status['sparkd'].get('tenant'))}"
        if terminal:
            print(f"\r{line} ({elapsed})\033[K", end="", flush=True)
        elif line != shown:
            print(f"{line} ({elapsed})", flush=True)
        shown = line
        time.sleep(1)


def start_line(state: dict[str, Any], tenant: str | None) -> str:
    """Where a start is, as `sparkd start` shows it."""
    if state.get("pull"):
        return str(state["pull"]["line"])
    if state.get("phase") == "starting":
        return f"starting: {state.get('loading') or state.get('start_step') or 'asked'}"
    if tenant and tenant != state.get("id"):
        return f"waiting for {tenant} to finish its requests"
    return "waiting"


def _logs(args: argparse.Namespace, settings: Settings) -> int:
    if args.name == "sparkd":
        unit = names.DAEMON_UNIT
    else:
        model = catalogue_of(settings).resolve(args.name)
        if model is None:
            print(f"sparkd: no model {args.name!r}", file=sys.stderr)
            return EXIT_USAGE
        unit = model.unit_name
    argv = names.journalctl(unit, args.lines, output="short", since=args.since, follow=args.follow)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
