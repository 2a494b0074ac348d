"""Verbs about the catalogue: models, render (Quadlet units), export (client configuration)."""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sparkd.catalogue import Role
from sparkd.commands import EXIT_FAILED, EXIT_USAGE, Verbs, catalogue_of
from sparkd.commands.output import table

if TYPE_CHECKING:
    import argparse

    from sparkd.catalogue import Catalogue
    from sparkd.model import Model
    from sparkd.quadlet import HostFacts
    from sparkd.settings import Settings
    from sparkd.sizing import Sizing


def register(verbs: Verbs) -> None:
    models = verbs.add(
        "models", "list the catalogue", _models, "List catalogue models (enabled ones unless --all)."
    )
    models.add_argument("--all", action="store_true", help="include disabled models")
    models.add_argument("--status", choices=("validated", "experimental", "disabled"))
    models.add_argument("--role", choices=("main", "utility", "exclusive"))
    models.add_argument("--engine", choices=("vllm", "sglang", "generic"))
    models.add_argument("--json", action="store_true", help="machine-readable output")
    render = verbs.add(
        "render",
        "write every enabled model's Quadlet unit and reload systemd",
        _render,
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
    export = verbs.add(
        "export",
        "client configuration from the catalogue",
        _export,
        "Print configuration for a client, with the catalogue's client-safe context ceilings.",
    )
    export.add_argument(
        "client",
        choices=("opencode", "cline", "openai-env", "claude-code", "kubeai", "kubeai-values"),
        help="a client's configuration, or KubeAI Model manifests (and the Helm values they need)",
    )
    export.add_argument("--url", help="the base URL clients use (default http://<this host>:8009/v1)")


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.schema import to_json

    catalogue = catalogue_of(settings)
    chosen = [
        m
        for m in (list(catalogue) if args.all or args.status == "disabled" else catalogue.enabled())
        if (not args.status or m.status == args.status)
        and (not args.role or m.role == args.role)
        and (not args.engine or m.engine == args.engine)
    ]
    from sparkd.hostfacts import detect_host

    host = detect_host(settings)
    on_disk = _weights_on_disk(chosen, host)
    sized = _sizes(catalogue, chosen, host)
    if args.json:
        print(
            json.dumps(
                [{**to_json(m), "weights_on_disk": on_disk[m.id], **sized[m.id].to_json()} for m in chosen],
                indent=2,
            )
        )
        return 0
    table(
        ("MODEL", "STATUS", "ROLE", "CONTEXT", "ENGINE", "ON DISK", "SIZE", "NEEDS", "FITS", "IMAGE"),
        [
            (
                m.id,
                m.status,
                m.role,
                str(m.context_length),
                m.engine,
                _weights_cell(on_disk[m.id]),
                *_sizing_cells(sized[m.id], m.role is Role.EXCLUSIVE),
                m.image,
            )
            for m in chosen
        ],
    )
    return 0


def _sizes(catalogue: Catalogue, models: list[Model], host: HostFacts) -> dict[str, Sizing]:
    """Each model's size and memory need: the pull's and the measured figures where there are some."""
    from sparkd import weights
    from sparkd.housekeeping import load_memory
    from sparkd.sizing import sizing

    measured = load_memory(host.state_dir / "memory.json").peaks
    utility = catalogue.utility

    def of(model: Model, utility_need: int | None) -> Sizing:
        record = weights.pulled(model, host)
        return sizing(model, record.bytes if record else None, measured.get(model.id), utility_need)

    utility_need = of(utility, None).need if utility is not None else None
    return {m.id: of(m, None if m is utility else utility_need) for m in models}


def _sizing_cells(sized: Sizing, exclusive: bool) -> tuple[str, str, str]:
    """SIZE, NEEDS and FITS: `~` marks an estimate; FITS says whether it fits a Spark beside the
    utility, alone (an exclusive model always runs alone), or not at all."""

    def gb(value: int | None, exact: bool) -> str:
        return "-" if value is None else f"{'' if exact else '~'}{value / 1e9:.0f} GB"

    fits = "-"
    if sized.fits is not None:
        beside = sized.fits.beside_utility and not exclusive
        fits = "+utility" if beside else "alone" if sized.fits.alone else "no"
    return gb(sized.weights, sized.weights_exact), gb(sized.need, sized.need_measured), fits


def _weights_on_disk(models: list[Model], host: HostFacts) -> dict[str, dict[str, object] | None]:
    """Per model: None when its weights are not a hub download; else pulled or not, and bytes here."""
    from sparkd import weights

    found: dict[str, dict[str, object] | None] = {}
    for model in models:
        if weights.hub_repo(model) is None:
            found[model.id] = None
            continue
        found[model.id] = {
            "pulled": weights.pulled(model, host) is not None,
            "bytes": weights.bytes_on_disk(model, host),
        }
    return found


def _weights_cell(on_disk: dict[str, object] | None) -> str:
    if on_disk is None:
        return "-"
    size = int(str(on_disk["bytes"])) / 1e9
    if on_disk["pulled"]:
        return f"{size:.1f} GB"
    return f"partial {size:.1f} GB" if size else "not pulled"


def _render(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.hostfacts import detect_host
    from sparkd.quadlet import render_container

    if args.gpu:
        settings = dataclasses.replace(settings, gpu=args.gpu)
    catalogue = catalogue_of(settings)
    for warning in catalogue.warnings:
        print(f"sparkd: warning: {warning}", file=sys.stderr)
    host = detect_host(settings)
    if args.print_model:
        model = catalogue.resolve(args.print_model)
        if model is None:
            print(f"sparkd: no model {args.print_model!r}", file=sys.stderr)
            return EXIT_USAGE
        from sparkd.weights import with_pulled

        sys.stdout.write(render_container(model, with_pulled(host, [model])))
        return 0
    return write_units(settings, catalogue, host, args.quadlet_dir, reload=not args.no_reload)


def write_units(
    settings: Settings,
    catalogue: Catalogue,
    host: HostFacts,
    directory: Path | None = None,
    reload: bool = True,
) -> int:
    """Render every model's unit into the Quadlet directory and, if any changed, reload systemd."""
    from sparkd.quadlet import render_all, writable_dirs
    from sparkd.unitdir import write_unit_set
    from sparkd.weights import with_pulled

    host = with_pulled(host, catalogue)
    for volume in sorted(writable_dirs(catalogue.enabled(), host)):
        try:
            volume.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as error:
            print(f"sparkd: warning: cannot make {volume}: {error}", file=sys.stderr)
    result = write_unit_set(directory or settings.quadlet_dir, render_all(list(catalogue), host))
    for name in result.written:
        print(f"wrote {name}")
    for name in result.removed:
        print(f"removed {name}")
    print(f"{len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.removed)} removed")
    if result.changed and reload:
        from sparkd.systemd import daemon_reload

        try:
            daemon_reload()
        except Exception as error:  # pystemd raises its own D-Bus error types
            print(f"sparkd: files written, but systemd did not reload: {error}", file=sys.stderr)
            return EXIT_FAILED
        print("systemd reloaded")
    return 0


def _kubeai(what: str, catalogue: Catalogue) -> int:
    import yaml

    from sparkd import kubeai

    if what == "kubeai-values":
        print("# KubeAI Helm values for sparkd's exported models (helm upgrade --install kubeai ... -f this)")
        sys.stdout.write(yaml.safe_dump(kubeai.helm_values(), sort_keys=False))
        return 0
    made, skipped = kubeai.manifests(catalogue)
    print("# KubeAI Model manifests from sparkd's catalogue (kubectl apply -f this).")
    print(
        f"# Secrets by reference: kubectl create secret generic {kubeai.SECRET} --from-literal=HF_TOKEN=..."
    )
    for model_id, reason in skipped.items():
        print(f"# not exported: {model_id}: {reason}")
    sys.stdout.write(yaml.safe_dump_all(made, sort_keys=False, width=1000))
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd import exports
    from sparkd.auth import KeyFileError, read_keys

    if args.client.startswith("kubeai"):
        return _kubeai(args.client, catalogue_of(settings))
    port = settings.listen.rpartition(":")[2]
    url = args.url or f"http://{socket.getfqdn()}:{port}/v1"
    catalogue = catalogue_of(settings)
    if args.client == "opencode":
        sys.stdout.write(exports.opencode(catalogue, url))
    elif args.client == "cline":
        sys.stdout.write(exports.cline(catalogue, url))
    else:
        try:
            key = next(iter(read_keys(settings.api_keys_file).values()), None)
        except (OSError, KeyFileError):
            key = None
        if args.client == "claude-code":
            sys.stdout.write(exports.claude_code(catalogue, url, key))
        else:
            sys.stdout.write(exports.openai_env(url, key))
    return 0
