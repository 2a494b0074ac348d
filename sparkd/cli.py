"""The `sparkd` command line: global options, `serve`, and the verbs of `sparkd.commands`.

Exit codes, for scripts: 0 success; 1 the operation failed (or `check` found
a failing item); 2 bad usage or bad configuration; 3 the daemon is not
reachable.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sparkd import __version__

if TYPE_CHECKING:
    import argparse


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

    from sparkd.commands import Verbs, catalogue, host, images, running, weights

    parser = argparse.ArgumentParser(
        prog="sparkd",
        description="Serve LLMs to your LAN from a DGX Spark: one OpenAI-compatible port, "
        "one model at a time, each model a podman Quadlet unit that systemd runs.",
        epilog="Exit codes: 0 success, 1 failed, 2 bad usage or configuration, 3 sparkd not reachable.",
    )
    parser.add_argument("--version", action="version", version=f"sparkd {__version__}")
    parser.add_argument("--config", type=Path, help="settings file (default /etc/sparkd/sparkd.toml)")
    verbs = Verbs(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    verbs.add(
        "serve",
        "run the daemon (systemd starts it through sparkd.socket)",
        None,
        "Serve the OpenAI-compatible API on the socket systemd passes (LISTEN_FDS), or on the "
        "settings' `listen` address when run by hand.",
    )
    for group in (running, catalogue, weights, host, images):
        group.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # What systemd runs on every socket activation skips building the parser
    # of every command (10 ms of the first client's wait).
    if arguments == ["serve"] or (len(arguments) == 3 and arguments[::2] == ["--config", "serve"]):
        return _serve(Path(arguments[1]) if len(arguments) == 3 else None)
    args = _parser().parse_args(arguments)
    if args.run is None:
        return _serve(args.config)
    # Imported here, not at the top: `sparkd --help` and `sparkd status` stay quick.
    from sparkd.catalogue import CatalogueError
    from sparkd.commands import EXIT_USAGE
    from sparkd.settings import SettingsError, load_settings

    try:
        settings = load_settings(args.config)
        return int(args.run(args, settings))
    except (CatalogueError, SettingsError) as error:
        print(f"sparkd: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader left (`sparkd models | head`): no traceback; stdout goes nowhere from here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
