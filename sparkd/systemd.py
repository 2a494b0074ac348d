"""systemd over D-Bus (pystemd): the edge through which sparkd acts on units and hears about them.

pystemd is blocking and an sd-bus connection belongs to one thread at a time,
so one dedicated thread owns one connection (`SystemdBus`). The event loop
hands it commands and gets results back as futures; the unit-state and job
signals it receives are handed to the loop with `call_soon_threadsafe`.
Unit states come from those signals, never from polling; the one wait that
reads back is re-arming an idle timer, which must outlast the old transient
unit's unloading (see `_disarm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pystemd.dbuslib import DBus, apply_signature, path_decode, path_encode
from pystemd.systemd1 import Manager
from pystemd.systemd1.unit_signatures import KNOWN_UNIT_SIGNATURES

from sparkd import names

# pystemd encodes transient-unit properties from this table; it lacks the
# timer's accuracy, without which systemd may fire up to a minute late.
KNOWN_UNIT_SIGNATURES.setdefault(b"AccuracyUSec", b"t")

log = logging.getLogger("sparkd.systemd")

T = TypeVar("T")
DEST = b"org.freedesktop.systemd1"
MANAGER_PATH = b"/org/freedesktop/systemd1"
MANAGER_IFACE = b"org.freedesktop.systemd1.Manager"
UNIT_PREFIX = b"/org/freedesktop/systemd1/unit"


def daemon_reload() -> None:
    """Reload unit files; systemd runs the Quadlet generator as part of it.

    systemd answers the call only once the reload is complete, so units
    rendered before it are loadable when it returns.
    """
    with Manager() as manager:
        manager.Manager.Reload()


@dataclass(frozen=True)
class UnitChanged:
    """A sparkd unit's ActiveState changed; for inactive/failed, why."""

    unit: str
    active_state: str
    sub_state: str
    result: str = ""
    exit_status: int | None = None


@dataclass(frozen=True)
class JobDone:
    job: str
    unit: str
    result: str  # done, canceled, timeout, failed, dependency, skipped


BusEvent = UnitChanged | JobDone


class SystemdError(Exception):
    """A D-Bus call to systemd failed; the message is systemd's."""


class SystemdBus:
    """One thread, one D-Bus connection to systemd, commands in, events out."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_event: Callable[[BusEvent], None]) -> None:
        self._loop = loop
        self._on_event = on_event
        self._commands: queue.SimpleQueue[tuple[Callable[[DBus], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="sparkd-dbus", daemon=True)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._callbacks: list[Callable[..., None]] = []

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise SystemdError(f"cannot talk to systemd over D-Bus: {self._startup_error}")

    def close(self) -> None:
        if self._thread.is_alive():
            self._commands.put(None)
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=5)
        os.close(self._wake_r)
        os.close(self._wake_w)

    async def call(self, command: Callable[[DBus], T]) -> T:
        """Run `command(bus)` on the bus thread; its result or error comes back here."""
        future: asyncio.Future[T] = self._loop.create_future()
        self._commands.put((command, future))
        os.write(self._wake_w, b"x")
        return await future

    # Commands (each runs on the bus thread) ---------------------------------

    async def start_unit(self, unit: str) -> str:
        """Ask for the unit's start; returns the job path. "replace": an active unit is left alone."""
        return _text(await self.call(lambda bus: _manager(bus, b"StartUnit", b"ss", unit, "replace")))

    async def stop_unit(self, unit: str) -> str:
        return _text(await self.call(lambda bus: _manager(bus, b"StopUnit", b"ss", unit, "replace")))

    async def reset_failed_unit(self, unit: str) -> None:
        """Forget the unit's failures, and the starts its start limit counts (`systemctl reset-failed`)."""
        await self.call(lambda bus: _manager(bus, b"ResetFailedUnit", b"s", unit))

    async def active_units(self, pattern: str) -> list[str]:
        """Units matching `pattern` that are active, activating or reloading."""

        def list_units(bus: DBus) -> list[str]:
            states = [b"active", b"activating", b"reloading"]
            rows = _manager(bus, b"ListUnitsByPatterns", b"asas", states, [pattern.encode()])
            return [_text(row[0]) for row in rows]

        return await self.call(list_units)

    async def arm_idle_timer(self, model_id: str, seconds: float) -> None:
        """A transient timer (visible in `systemctl list-timers`) whose firing sparkd hears as a job."""
        timer, service = names.idle_timer(model_id), names.idle_service(model_id)

        def arm(bus: DBus) -> None:
            _disarm(bus, timer, service)
            manager = Manager(bus=bus)
            manager.load()
            manager.Manager.StartTransientUnit(
                timer.encode(),
                b"replace",
                {
                    b"Description": f"sparkd: stop {model_id} when idle".encode(),
                    b"TimersMonotonic": [(b"OnActiveSec", int(seconds * 1_000_000))],
                    b"AccuracyUSec": 1_000_000,
                    b"RemainAfterElapse": False,
                },
                [
                    (
                        service.encode(),
                        {
                            b"Description": f"sparkd: {model_id} has been idle".encode(),
                            b"Type": b"oneshot",
                            # sparkd decides on the stop when it sees this job finish,
                            # so a timer that races a new request cannot cut it off.
                            # With sparkd not running (stopped by hand, failed), no
                            # request can reach the model either: the timer stops it.
                            b"ExecStart": [
                                (b"/bin/sh", [b"/bin/sh", b"-c", names.idle_command(model_id)], False)
                            ],
                        },
                    )
                ],
            )

        await self.call(arm)

    async def disarm_idle_timer(self, model_id: str) -> None:
        await self.call(lambda bus: _disarm(bus, names.idle_timer(model_id), names.idle_service(model_id)))

    async def unit_memory(self, unit: str) -> tuple[int | None, int | None]:
        """The unit's cgroup memory now and at its peak (MemoryPeak needs systemd 256; None before)."""

        def read(bus: DBus) -> tuple[int | None, int | None]:
            path = path_encode(UNIT_PREFIX, unit.encode())
            values: list[int | None] = []
            for name in (b"MemoryCurrent", b"MemoryPeak"):
                try:
                    value = int(bus.get_property(DEST, path, b"org.freedesktop.systemd1.Service", name, b"t"))
                except Exception:
                    value = None
                # systemd says "unknown" with the largest 64-bit number.
                values.append(None if value is None or value >= 2**64 - 1 else value)
            return values[0], values[1]

        return await self.call(read)

    async def unit_result(self, unit: str) -> tuple[str, int | None]:
        return await self.call(lambda bus: _unit_result(bus, unit))

    # The thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            bus = DBus()
            bus.open()

            # pystemd keeps a bare pointer to each callback and sets an
            # attribute on it: plain functions, kept alive by this list.
            def on_properties(msg: Any, error: Any = None, userdata: Any = None) -> None:
                self._on_properties_changed(msg, bus)

            def on_job(msg: Any, error: Any = None, userdata: Any = None) -> None:
                self._on_job_removed(msg)

            self._callbacks = [on_properties, on_job]
            bus.match_signal(
                DEST, None, b"org.freedesktop.DBus.Properties", b"PropertiesChanged", on_properties, None
            )
            bus.match_signal(DEST, MANAGER_PATH, MANAGER_IFACE, b"JobRemoved", on_job, None)
            _manager(bus, b"Subscribe", b"")
        except BaseException as error:  # reported to start(); the thread ends
            self._startup_error = error
            self._ready.set()
            return
        self._ready.set()
        fd = bus.get_fd()
        try:
            while True:
                readable, _, _ = select.select([fd, self._wake_r], [], [])
                if self._wake_r in readable:
                    os.read(self._wake_r, 4096)
                    while True:
                        try:
                            item = self._commands.get_nowait()
                        except queue.Empty:
                            break
                        if item is None:
                            return
                        self._execute(bus, *item)
                # A method call may have queued signals without the fd waking us.
                while not bus.process().is_empty():
                    pass
        finally:
            bus.close()

    def _execute(self, bus: DBus, command: Callable[[DBus], Any], future: asyncio.Future[Any]) -> None:
        try:
            result = command(bus)
        except Exception as error:  # pystemd raises its own D-Bus error types
            failure = SystemdError(_describe(error))
            self._loop.call_soon_threadsafe(_settle_error, future, failure)
        else:
            self._loop.call_soon_threadsafe(_settle, future, result)

    def _on_properties_changed(self, msg: Any, bus: DBus) -> None:
        msg.process_reply(True)
        path = msg.headers.get("Path") or b""
        interface, changed = msg.body[0], msg.body[1]
        if interface != b"org.freedesktop.systemd1.Unit" or b"ActiveState" not in changed:
            return
        unit = _unit_from_path(path)
        if not names.is_sparkd_unit(unit):
            return
        active = _text(changed[b"ActiveState"])
        sub = _text(changed.get(b"SubState", b""))
        result, status = "", None
        if active in ("inactive", "failed"):
            with contextlib.suppress(Exception):
                result, status = _unit_result(bus, unit)
        self._post(UnitChanged(unit, active, sub, result, status))

    def _on_job_removed(self, msg: Any) -> None:
        msg.process_reply(True)
        _id, job, unit, result = msg.body
        name = _text(unit)
        if names.is_sparkd_unit(name):
            self._post(JobDone(_text(job), name, _text(result)))

    def _post(self, event: BusEvent) -> None:
        self._loop.call_soon_threadsafe(self._on_event, event)


def _manager(bus: DBus, method: bytes, signature: bytes, *values: Any) -> Any:
    """Call a Manager method; pystemd gives a single return value as itself."""
    encoded = [v.encode() if isinstance(v, str) else v for v in values]
    return bus.call_method(
        DEST, MANAGER_PATH, MANAGER_IFACE, method, apply_signature(signature, encoded)
    ).body


def _disarm(bus: DBus, timer: str, service: str) -> None:
    for unit in (timer, service):
        with contextlib.suppress(Exception):  # not loaded: nothing to disarm
            _manager(bus, b"StopUnit", b"ss", unit, "replace")
    # A stopped transient unit is unloaded once its stop job is done; wait for
    # that so the next StartTransientUnit of the same name is accepted.
    for _ in range(100):
        loaded = False
        for unit in (timer, service):
            with contextlib.suppress(Exception):
                _manager(bus, b"GetUnit", b"s", unit)
                loaded = True
        if not loaded:
            return
        with contextlib.suppress(Exception):
            while not bus.process().is_empty():
                pass
        threading.Event().wait(0.01)


def _unit_result(bus: DBus, unit: str) -> tuple[str, int | None]:
    path = path_encode(UNIT_PREFIX, unit.encode())
    result = _text(bus.get_property(DEST, path, b"org.freedesktop.systemd1.Service", b"Result", b"s"))
    status = bus.get_property(DEST, path, b"org.freedesktop.systemd1.Service", b"ExecMainStatus", b"i")
    return result, int(status)


def _unit_from_path(path: bytes) -> str:
    try:
        return _text(path_decode(path, UNIT_PREFIX))
    except Exception:
        return ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(error: Exception) -> str:
    text = str(error)
    # pystemd appends a paragraph about its own error classes; keep systemd's words.
    return text.split("\n", maxsplit=1)[0]


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _settle_error(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def reload_if_running(unit: str) -> None:
    """Ask a running unit to reload (SIGHUP for sparkd). An inactive unit refuses; that is fine."""
    with contextlib.suppress(Exception), DBus() as bus:
        _manager(bus, b"ReloadUnit", b"ss", unit, "replace")


def restart_if_running(unit: str) -> None:
    """Restart a running unit so that it reads its configuration anew; an inactive one stays so
    (sparkd then starts on its next connection, and reads it then)."""
    with contextlib.suppress(Exception), DBus() as bus:
        _manager(bus, b"TryRestartUnit", b"ss", unit, "replace")


def unit_active(unit: str) -> bool:
    """Whether a unit is active (or on its way up or down); False when systemd cannot be asked."""
    try:
        with DBus() as bus:
            path = _manager(bus, b"GetUnit", b"s", unit)
            state = bus.get_property(path, b"org.freedesktop.systemd1.Unit", b"ActiveState")
    except Exception:  # no such unit loaded, or no systemd
        return False
    return _text(state) in ("active", "activating", "deactivating", "reloading")
