"""The command line's client of the running daemon: its HTTP API on loopback, with an API key.

The key is $SPARKD_API_KEY, else the first key of the key file (root can read it).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from sparkd.auth import KeyFileError, read_keys
from sparkd.settings import Settings


class DaemonUnreachable(Exception):
    pass


class DaemonError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class DaemonClient:
    base_url: str
    key: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> DaemonClient:
        host, _, port = settings.listen.rpartition(":")
        if host in ("", "0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        key = os.environ.get("SPARKD_API_KEY")
        if not key:
            try:
                key = next(iter(read_keys(settings.api_keys_file).values()), None)
            except (OSError, KeyFileError):
                key = None
        return cls(f"http://{host}:{port}", key)

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str) -> Any:
        return self._call("POST", path, b"")

    def _call(self, method: str, path: str, data: bytes | None = None) -> Any:
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = error.reason
            raise DaemonError(error.code, str(message)) from None
        except (urllib.error.URLError, OSError) as error:
            raise DaemonUnreachable(f"sparkd does not answer at {self.base_url}: {error}") from None
