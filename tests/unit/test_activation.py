"""Living inside systemd: socket activation and sd_notify, with systemd's environment faked, not the code.

As python-systemd's own tests do: LISTEN_FDS/LISTEN_PID name this process
and a real socket sits on descriptor 3; NOTIFY_SOCKET is a datagram socket
in a temporary directory that the test reads.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sparkd.activation import SD_LISTEN_FDS_START, Notifier, bind, systemd_sockets


@contextmanager
def on_descriptor(fd: int, sock: socket.socket) -> Iterator[None]:
    """Put `sock` on descriptor `fd` for the block, as systemd would, and restore what was there."""
    try:
        saved: int | None = os.dup(fd)
    except OSError:
        saved = None
    os.dup2(sock.fileno(), fd)
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, fd)
            os.close(saved)
        else:
            os.close(fd)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def passed(listening: socket.socket, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """`listening` on descriptor 3, with the environment systemd gives a socket-activated service."""
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_FDNAMES", "sparkd.socket")
    with on_descriptor(SD_LISTEN_FDS_START, listening):
        yield listening


class TestSocketActivation:
    def test_the_socket_systemd_passed_is_adopted_with_its_family(self, passed: socket.socket) -> None:
        [adopted] = systemd_sockets()
        try:
            assert adopted.fileno() == SD_LISTEN_FDS_START
            assert adopted.family == socket.AF_INET
            assert adopted.getsockname() == passed.getsockname()
            assert not os.get_inheritable(SD_LISTEN_FDS_START)  # no engine or journalctl inherits it
        finally:
            adopted.detach()  # the descriptor is restored by on_descriptor, not closed here

    def test_the_variables_are_removed_so_no_child_sees_them(self, passed: socket.socket) -> None:
        for sock in systemd_sockets():
            sock.detach()
        assert not {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} & set(os.environ)

    def test_sockets_meant_for_another_process_are_not_taken(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
        monkeypatch.setenv("LISTEN_FDS", "1")
        assert systemd_sockets() == []
        assert "LISTEN_FDS" not in os.environ

    def test_without_socket_activation_there_is_nothing_to_adopt(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("LISTEN_PID", raising=False)
        monkeypatch.delenv("LISTEN_FDS", raising=False)
        assert systemd_sockets() == []


class TestBindingByHand:
    def test_an_ipv4_address_gets_an_ipv4_listening_socket(self) -> None:
        with bind("127.0.0.1:0") as sock:
            assert sock.family == socket.AF_INET
            assert sock.getsockname()[0] == "127.0.0.1"

    def test_a_bracketed_ipv6_address_gets_an_ipv6_socket(self) -> None:
        if not socket.has_ipv6:
            pytest.fail("this machine has no IPv6 sockets")
        try:
            sock = bind("[::1]:0")
        except OSError as error:
            pytest.fail(f"no IPv6 loopback here: {error}")
        with sock:
            assert sock.family == socket.AF_INET6


@pytest.fixture
def notifier() -> Iterator[Notifier]:
    made = Notifier()
    yield made
    made.close()


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield receiver
    receiver.close()


def received(receiver: socket.socket) -> str:
    return receiver.recv(4096).decode()


class TestNotifier:
    def test_ready_status_watchdog_and_stopping_reach_systemd(
        self, notify_socket: socket.socket, notifier: Notifier
    ) -> None:
        notifier.ready()
        notifier.status("no model running, 0 queued")
        notifier.watchdog()
        notifier.stopping()
        sent = [received(notify_socket) for _ in range(4)]
        assert sent == ["READY=1", "STATUS=no model running, 0 queued", "WATCHDOG=1", "STOPPING=1"]

    def test_an_unchanged_status_is_sent_once(self, notify_socket: socket.socket, notifier: Notifier) -> None:
        notifier.status("a ready")
        notifier.status("a ready")
        notifier.status("b starting")
        assert [received(notify_socket), received(notify_socket)] == ["STATUS=a ready", "STATUS=b starting"]

    def test_the_watchdog_is_pinged_twice_per_interval_systemd_sets(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        assert Notifier().watchdog_interval == 15.0

    def test_outside_systemd_it_does_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        notifier = Notifier()
        notifier.ready()  # no socket, no error
        assert notifier.watchdog_interval is None
