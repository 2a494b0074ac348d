"""The dashboard's sessions: a key pasted once becomes a signed, expiring cookie.

A session token is `<key name>.<expiry>.<signature>`, the signature an HMAC
of the rest with a secret kept in the state directory (root-only), so a
session outlives sparkd's restarts (socket activation restarts it often)
and a key's revocation ends its sessions (the name must still be a key's).
Nothing here reads the clock: time comes in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

COOKIE = "sparkd_session"
LIFETIME = 12 * 3600.0  # seconds a session lasts


@dataclass(frozen=True)
class Sessions:
    secret: bytes

    def issue(self, name: str, now: float, lifetime: float = LIFETIME) -> str:
        body = f"{_b64(name.encode())}.{int(now + lifetime)}"
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, now: float) -> str | None:
        """The key name the token was issued to, while it is valid; None for anything else."""
        body, _, signature = token.rpartition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        encoded, _, expiry = body.partition(".")
        try:
            if int(expiry) < now:
                return None
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_secret(path: Path) -> bytes:
    """The signing secret, made (root-only) on first use."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    temporary = path.with_name(f".{path.name}.new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, secret)
    finally:
        os.close(descriptor)
    temporary.replace(path)
    return secret
