"""The command line's client of the running daemon: its HTTP API, on the control socket when it can.

`sparkd-control.socket` (/run/sparkd/control.sock, mode 0660, group `sparkd`)
needs no key: being allowed to connect is the permission. Where that socket
does not exist (sparkd run by hand), the client uses the TCP address with
an API key: $SPARKD_API_KEY, else the first key of the key file (root can
read it).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkd.auth import KeyFileError, read_keys
from sparkd.settings import Settings

TIMEOUT = 30.0


class DaemonUnreachable(Exception):
    pass


class DaemonError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=TIMEOUT)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(str(self.path))


@dataclass
class DaemonClient:
    host: str
    port: int
    key: str | None
    control_socket: Path | None = None  # used when it exists

    @classmethod
    def from_settings(cls, settings: Settings) -> DaemonClient:
        host, _, port = settings.listen.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        key = os.environ.get("SPARKD_API_KEY")
        if not key and not settings.control_socket.exists():
            try:
                key = next(iter(read_keys(settings.api_keys_file).values()), None)
            except (OSError, KeyFileError):
                key = None
        return cls(host, int(port), key, settings.control_socket)

    @property
    def where(self) -> str:
        if self.control_socket is not None and self.control_socket.exists():
            return str(self.control_socket)
        return f"http://{self.host}:{self.port}"

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str) -> Any:
        return self._call("POST", path, b"")

    def _connection(self) -> http.client.HTTPConnection:
        if self.control_socket is not None and self.control_socket.exists():
            return _UnixConnection(self.control_socket)
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def _call(self, method: str, path: str, data: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        connection = self._connection()
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except PermissionError:
            raise DaemonUnreachable(
                f"not allowed to use {self.where}: run as root, or join the group sparkd "
                "(sudo usermod -aG sparkd $USER, then log in again)"
            ) from None
        except OSError as error:
            raise DaemonUnreachable(f"sparkd does not answer at {self.where}: {error}") from None
        finally:
            connection.close()
        if response.status >= 400:
            try:
                message = json.loads(raw)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.reason
            raise DaemonError(response.status, str(message))
        return json.loads(raw)
