"""The test bed's own promises, which the other system tests and bench/ build on."""

from __future__ import annotations

import socket
import threading

from testbed import PrivateSystemd

from tests.system.sparkd_bed import PORT, chat, install, uninstall
from tests.system.two_sparks import linked_hosts


def knock_until(done: threading.Event) -> None:
    """Open connections to sparkd's port, each of which can start sparkd.service."""
    while not done.is_set():
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=1):
                pass
        except OSError:
            pass  # between the sockets' stop and start nothing listens


def test_sparkd_can_be_installed_again_and_again_while_clients_connect(bed: PrivateSystemd) -> None:
    # bench/ reinstalls sparkd for each phase while connections may still arrive: a
    # connection between the service's stop and the sockets' restart started the
    # service again, and the socket refused to start ("already active"); CI failed so.
    done = threading.Event()
    knocker = threading.Thread(target=knock_until, args=(done,), daemon=True)
    try:
        install(bed)
        knocker.start()
        for _ in range(6):
            install(bed)
        done.set()
        knocker.join(timeout=5)
        assert bed.unit_state("sparkd.socket") == "active"
        status, _, body = chat("fake-a")
        assert status == 200, body
    finally:
        done.set()
        uninstall(bed)


def test_two_hosts_keep_their_containers_to_themselves() -> None:
    # On one shared disk, spark-b's first podman call ("system refresh": its /run is empty)
    # reset the state of spark-a's running container, and `podman exec` there then failed.
    with linked_hosts() as (a, b, _, _):
        image = "localhost/sparkd-demo:latest"  # from the machine's own store, read-only
        a.run("podman", "run", "-d", "--name", "sleeper", "-v", "/usr:/usr:ro", image, "sleep", "600")
        assert "sleeper" not in b.run("podman", "ps", "-a", "--format", "{{.Names}}").stdout
        assert a.run("podman", "exec", "sleeper", "true", check=False).returncode == 0
        a.run("podman", "rm", "--force", "--time", "0", "sleeper")
