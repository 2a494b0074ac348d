"""Living inside systemd: adopting the socket it hands over, and telling it how sparkd is doing."""

from __future__ import annotations

import os
import socket

import sdnotify

SD_LISTEN_FDS_START = 3


def systemd_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed (LISTEN_FDS), or none.

    The variables are read and removed before any thread starts, so no child
    process inherits them; `socket(fileno=)` finds each socket's family itself.
    """
    pid = os.environ.pop("LISTEN_PID", None)
    count = os.environ.pop("LISTEN_FDS", None)
    os.environ.pop("LISTEN_FDNAMES", None)
    if pid is None or count is None or int(pid) != os.getpid():
        return []
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))
    return sockets


def bind(listen: str) -> socket.socket:
    """A socket of our own, for running sparkd by hand without socket activation."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(1024)
    return sock


class Notifier:
    """sd_notify; does nothing when sparkd is not run by systemd."""

    def __init__(self) -> None:
        self._enabled = "NOTIFY_SOCKET" in os.environ
        self._notifier = sdnotify.SystemdNotifier() if self._enabled else None
        usec = os.environ.get("WATCHDOG_USEC")
        self.watchdog_interval = int(usec) / 2_000_000 if usec and usec.isdigit() else None
        self._last_status = ""

    def ready(self) -> None:
        self._send("READY=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        if text != self._last_status:
            self._last_status = text
            self._send(f"STATUS={text}")

    def close(self) -> None:
        if self._notifier is not None and self._notifier.socket is not None:
            self._notifier.socket.close()
            self._notifier = None

    def _send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)
