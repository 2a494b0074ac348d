"""Secrets engines need (HF_TOKEN for gated models): one root-only file each, never a value elsewhere.

`/etc/sparkd/secrets/<NAME>` holds `NAME=value` with mode 0600 in a 0700
directory. A model's unit names the file (`EnvironmentFile=`), so podman
reads the value as the container starts; the rendered unit, the catalogue,
`sparkd models --json`, `/sparkd/status` and the journal carry only the
name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


class SecretError(ValueError):
    pass


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise SecretError(f"{name!r} is not a secret name: upper-case letters, digits and _, like HF_TOKEN")
    return name


def path_of(directory: Path, name: str) -> Path:
    return directory / check_name(name)


def store(directory: Path, name: str, value: str) -> Path:
    """Write the secret atomically, readable by root only; returns its file."""
    if not value or "\n" in value or "\r" in value or "\0" in value:
        raise SecretError("a secret is one line of text, not empty")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    target = path_of(directory, name)
    temporary = target.with_name(f".{name}.new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, f"{name}={value}\n".encode())
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
    temporary.replace(target)
    return target


def names(directory: Path) -> list[str]:
    """The secrets stored, by name (values are never read here)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file() and NAME.match(p.name))


def remove(directory: Path, name: str) -> bool:
    try:
        path_of(directory, name).unlink()
    except FileNotFoundError:
        return False
    return True


def value(directory: Path, name: str) -> str | None:
    """A stored secret's value, for a command that hands it on itself (`sparkd pull`); None if unset."""
    try:
        line = path_of(directory, name).read_text().rstrip("\n")
    except FileNotFoundError:
        return None
    prefix = f"{name}="
    return line[len(prefix) :] if line.startswith(prefix) else None
