"""API keys: `name:key` lines, compared in constant time, reloaded on SIGHUP."""

from __future__ import annotations

import hmac
import os
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
