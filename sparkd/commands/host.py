"""Verbs about this machine: check (preflight), key (API keys), secret (what engines need)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from sparkd.commands import EXIT_FAILED, EXIT_USAGE, Verbs, catalogue_of

if TYPE_CHECKING:
    import argparse

    from sparkd.settings import Settings


def register(verbs: Verbs) -> None:
    check = verbs.add(
        "check",
        "preflight: is this machine ready?",
        _check,
        "One verdict per item (podman and Quadlet, GPU via CDI, images, tiktoken encodings, "
        "model cache and disk, API keys, port, units). Exits 1 if any item fails.",
    )
    check.add_argument("--json", action="store_true")

    key = verbs.add("key", "manage API keys", _key, "Create, list or revoke API keys; sparkd reloads them.")
    key_commands = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("name", nargs="?", default="default")
    key_commands.add_parser("list", help="list key names")
    revoke = key_commands.add_parser("revoke", help="remove a key")
    revoke.add_argument("name")

    secret = verbs.add(
        "secret",
        "manage secrets engines need (HF_TOKEN)",
        _secret,
        "Store, list or remove a secret: one root-only file each in the secrets directory, named "
        "by the units of models that list it (catalogue `secrets`); the value is never printed.",
    )
    secret_commands = secret.add_subparsers(dest="secret_command", required=True, metavar="ACTION")
    store = secret_commands.add_parser(
        "set", help="store a secret; the value is read from standard input (or asked for)"
    )
    store.add_argument("name", metavar="NAME")
    secret_commands.add_parser("list", help="the secrets stored, by name")
    forget = secret_commands.add_parser("rm", help="remove a secret")
    forget.add_argument("name", metavar="NAME")


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.link_check import gather_link, judge_link
    from sparkd.preflight import Verdict, gather, judge

    port = int(settings.listen.rpartition(":")[2])
    catalogue = catalogue_of(settings)
    items = judge(gather(settings, catalogue, port)) + judge_link(gather_link(settings, catalogue))
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


def _secret(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd import secrets
    from sparkd.commands.catalogue import write_units
    from sparkd.hostfacts import detect_host

    directory = settings.secrets_dir
    try:
        if args.secret_command == "list":
            for name in secrets.names(directory):
                print(name)
            return 0
        if args.secret_command == "set":
            secrets.store(directory, args.name, _read_secret(args.name))
            print(f"stored {args.name} in {directory} (root only)", file=sys.stderr)
        elif not secrets.remove(directory, args.name):
            print(f"sparkd: no secret named {args.name!r}", file=sys.stderr)
            return EXIT_USAGE
    except secrets.SecretError as error:
        print(f"sparkd: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PermissionError as error:
        print(f"sparkd: {error} (secrets are root's: sudo sparkd secret ...)", file=sys.stderr)
        return EXIT_FAILED
    # Units name the secrets that exist: render them again so the change takes effect.
    return write_units(settings, catalogue_of(settings), detect_host(settings))


def _read_secret(name: str) -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"{name}: ")
    return sys.stdin.readline().rstrip("\n")
