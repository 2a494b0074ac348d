"""The command line's verbs, one module per group: each `register()`s its parsers with their handlers.

Exit codes, for scripts: 0 success; 1 the operation failed (or `check` found
a failing item); 2 bad usage or bad configuration; 3 the daemon is not
reachable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from sparkd.catalogue import Catalogue
    from sparkd.settings import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
Run = Callable[["argparse.Namespace", "Settings"], int]


class Verbs:
    """The `sparkd COMMAND` parsers; each verb carries the function that runs it."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._subparsers = subparsers

    def add(self, name: str, summary: str, run: Run | None, description: str = "") -> argparse.ArgumentParser:
        parser = self._subparsers.add_parser(name, help=summary, description=description or summary)
        parser.set_defaults(run=run)
        return parser


def catalogue_of(settings: Settings) -> Catalogue:
    from sparkd.catalogue import load_catalogue

    return load_catalogue(settings.catalogue_dir, settings.models_d)
