"""API keys: `name:key` lines, compared in constant time, reloaded on SIGHUP."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

CREDENTIAL_NAME = "api-keys"


class KeyFileError(Exception):
    pass


def parse_keys(text: str, source: str = "api keys") -> dict[str, str]:
    """Name -> key. Blank lines and `#` comments are skipped; anything else must be `name:key`."""
    keys: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, key = line.partition(":")
        if not sep or not name.strip() or len(key.strip()) < 16:
            raise KeyFileError(f"{source}:{number}: expected `name:key` with a key of 16 characters or more")
        keys[name.strip()] = key.strip()
    return keys


def key_file(configured: Path) -> Path:
    """Where to read the keys: the configured file when sparkd may read it, else its credential.

    systemd copies a credential once, when the service starts; reading the
    file itself whenever it is readable lets SIGHUP pick up new keys. A sparkd
    that cannot read the root-only file still gets the keys as its credential.
    """
    if os.access(configured, os.R_OK):
        return configured
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL_NAME).is_file():
        return Path(credentials) / CREDENTIAL_NAME
    return configured


@dataclass
class KeyRing:
    path: Path
    keys: dict[str, bytes] = field(default_factory=dict)

    def load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyFileError(f"{self.path}: no API key file; create one with `sparkd key create`") from None
        self.keys = {name: key.encode() for name, key in parse_keys(text, str(self.path)).items()}

    def has(self, name: str) -> bool:
        """Whether a key of that name exists (a dashboard session ends with its key)."""
        return name in self.keys

    def who(self, presented: str | None) -> str | None:
        """The name of the key presented, or None. Every key is compared, so timing tells nothing."""
        if not presented:
            return None
        candidate = presented.encode()
        found = None
        for name, key in self.keys.items():
            if hmac.compare_digest(candidate, key):
                found = name
        return found


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return x_api_key


def new_key() -> str:
    return "sk-sparkd-" + secrets.token_hex(24)


def _write_keys(path: Path, keys: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# sparkd API keys: one name:key per line (sparkd key create|list|revoke)\n")
        handle.writelines(f"{name}:{key}\n" for name, key in keys.items())
    os.replace(temporary, path)


def read_keys(path: Path) -> dict[str, str]:
    try:
        return parse_keys(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        return {}


def create_key(path: Path, name: str) -> str:
    """A new random key under `name` (replacing one of the same name); returns it."""
    if not name or ":" in name or any(c.isspace() for c in name):
        raise KeyFileError(f"{name!r}: a key name has no spaces or colons")
    keys = read_keys(path)
    keys[name] = key = new_key()
    _write_keys(path, keys)
    return key


def revoke_key(path: Path, name: str) -> bool:
    keys = read_keys(path)
    if name not in keys:
        return False
    del keys[name]
    _write_keys(path, keys)
    return True
