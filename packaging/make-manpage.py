#!/usr/bin/env python3
"""Print sparkd(8) in roff, from the CLI's own --help texts, so the two never disagree."""

from __future__ import annotations

import argparse
import sys

from sparkd import cli


def roff(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-").replace("\n.", "\n\\&.")


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else "0"
    parser = cli._parser()
    out = [f'.TH SPARKD 8 "" "sparkd {version}" "System Administration"', ".SH NAME",
           "sparkd \\- serve LLMs to the LAN from a DGX Spark, one model at a time",
           ".SH SYNOPSIS", ".B sparkd", "[\\-\\-config FILE] COMMAND [OPTIONS]",
           ".SH DESCRIPTION", roff(parser.description or ""), ".SH COMMANDS"]
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in actions[0].choices.items():
        out += [".TP", f".B {roff(name)}", roff(sub.format_help())]
    out += [".SH FILES", ".TP", "/etc/sparkd/sparkd.toml", "settings", ".TP", "/etc/sparkd/models.d/*.toml",
            "catalogue drop-ins", ".TP", "/etc/sparkd/api-keys", "API keys (name:key)",
            ".TP", "/usr/share/sparkd/models", "the shipped catalogue",
            ".SH EXIT STATUS", roff(parser.epilog or ""),
            ".SH SEE ALSO", "systemctl(1), journalctl(1), podman-systemd.unit(5)"]
    print("\n".join(out))


if __name__ == "__main__":
    main()
