"""systemd over D-Bus (pystemd): the edge through which sparkd acts on units."""

from __future__ import annotations

from pystemd.systemd1 import Manager


def daemon_reload() -> None:
    """Reload unit files; systemd runs the Quadlet generator as part of it.

    systemd answers the call only once the reload is complete, so units
    rendered before it are loadable when it returns.
    """
    with Manager() as manager:
        manager.Manager.Reload()
