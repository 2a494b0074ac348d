"""The I/O behind a start's effects: memory and weights checked, systemd asked, the engine probed,
a failure diagnosed. Each ends by handing what it learnt back to the scheduler as an event.

`StartActions` is the part of `sparkd.runtime.Runtime` that does this; the runtime's fields
(declared below for the type checker) are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from sparkd import names
from sparkd.catalogue import Model, Role
from sparkd.effects import DiagnoseFailedStart, Effect
from sparkd.lifecycle import Phase
from sparkd.logs import fields
from sparkd.memory import MemoryBook, has_settled
from sparkd.pulls import Pulls
from sparkd.sizing import need_estimate, weights_estimate
from sparkd.systemd import SystemdError

if TYPE_CHECKING:
    from sparkd.scheduler import Scheduler

log = logging.getLogger("sparkd.runtime")


class UnitControl(Protocol):
    """What the runtime asks of systemd (sparkd.systemd.SystemdBus; a fake in tests)."""

    async def start_unit(self, unit: str) -> str: ...
    async def stop_unit(self, unit: str) -> str: ...
    async def reset_failed_unit(self, unit: str) -> None: ...
    async def active_units(self, pattern: str) -> list[str]: ...
    async def arm_idle_timer(self, model_id: str, seconds: float) -> None: ...
    async def disarm_idle_timer(self, model_id: str) -> None: ...
    async def unit_memory(self, unit: str) -> tuple[int | None, int | None]: ...
    async def unit_result(self, unit: str) -> tuple[str, int | None]: ...


class HealthProbe(Protocol):
    async def healthy(self, url: str) -> bool: ...


class JournalTail(Protocol):
    async def tail(self, unit: str, lines: int) -> str: ...


class StartActions:
    scheduler: Scheduler
    units: UnitControl
    probe: HealthProbe
    journal: JournalTail
    pulls: Pulls
    memory: MemoryBook
    health_interval: float
    memory_settle_limit: float
    read_memory: Callable[[], int]
    read_free: Callable[[], int]
    clock: Callable[[], float]
    _helper_jobs: dict[str, asyncio.Future[str]]

    if TYPE_CHECKING:  # the runtime's own, which it uses

        def model(self, model_id: str) -> Model:
            raise NotImplementedError

        def _apply(self, effects: list[Effect]) -> None: ...
        def _count(self, what: str, model_id: str, *labels: str) -> None: ...
        def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None: ...

    async def _measure_memory(self, model_id: str, attempt: int) -> None:
        if self.model(model_id).role is Role.EXCLUSIVE:
            await self._memory_settled()
        available, free = self.read_memory(), self.read_free()
        need = self.memory.peaks.get(model_id)
        model = self.model(model_id)
        # A worker half loads its shard of the same weights from this Spark's disk.
        whole = names.whole_of(model_id)
        estimate = need_estimate(model, self.pulls.pulled_bytes(whole) or weights_estimate(model))
        missing = self.pulls.missing(whole)
        checked = self.scheduler.on_start_memory(
            model_id, attempt, available, need, self.clock(), missing, free=free, estimate=estimate
        )
        self._apply(checked)

    async def _pull(self, model_id: str) -> None:
        try:
            # A worker half's weights are its model's: one pull unit for both.
            await self.units.start_unit(names.pull_unit(names.whole_of(model_id)))  # ends in a JobDone
        except SystemdError as error:
            self._apply(self.scheduler.on_pull_done(model_id, f"systemd refused: {error}", self.clock()))

    async def _pull_ended(self, model_id: str, result: str) -> None:
        cause = None
        if result != "done":
            progress = self.pulls.progress(names.whole_of(model_id))
            cause = (
                progress.error if progress is not None and progress.error else f"its unit ended '{result}'"
            )
            with contextlib.suppress(Exception):
                tail = await self.journal.tail(names.pull_unit(names.whole_of(model_id)), 3)
                if tail:
                    cause += "; last log lines: " + " | ".join(tail.splitlines()[-3:])
        self._apply(self.scheduler.on_pull_done(model_id, cause, self.clock()))

    async def _submit_start(self, model_id: str, attempt: int, drop_page_cache: bool = False) -> None:
        if drop_page_cache:
            await self._drop_page_cache(model_id)
        try:
            job = await self.units.start_unit(self.model(model_id).unit_name)
        except SystemdError as error:
            self._apply(self.scheduler.on_start_refused(model_id, attempt, str(error), self.clock()))
        else:
            self._apply(self.scheduler.on_start_job(model_id, attempt, job, self.clock()))

    async def _drop_page_cache(self, model_id: str) -> None:
        """Run sparkd-drop-caches.service (sparkd's own sandbox cannot write /proc/sys) and wait
        for it, bounded: a start goes on whatever the drop did."""
        before = self.read_free()
        done = asyncio.get_running_loop().create_future()
        self._helper_jobs[names.DROP_CACHES_UNIT] = done
        try:
            await self.units.start_unit(names.DROP_CACHES_UNIT)
            result = await asyncio.wait_for(done, timeout=60)
        except (SystemdError, TimeoutError) as error:
            log.warning("could not drop the page cache before %s: %s", model_id, error)
            return
        finally:
            self._helper_jobs.pop(names.DROP_CACHES_UNIT, None)
        log.info(
            "dropped clean page cache before %s (%s): free memory %.1f -> %.1f GiB",
            model_id,
            result,
            before / 2**30,
            self.read_free() / 2**30,
            extra=fields(model=model_id, event="page_cache_dropped"),
        )

    async def _memory_settled(self) -> None:
        """Wait (bounded) until the memory a stopped engine gave back stops growing."""
        deadline = self.clock() + self.memory_settle_limit
        samples = [self.read_memory()]
        while not has_settled(samples) and self.clock() < deadline:
            await asyncio.sleep(0.5)
            samples.append(self.read_memory())
        log.info("available memory: %.1f GiB", samples[-1] / 2**30)

    async def _await_healthy(self, model_id: str) -> None:
        model = self.model(model_id)
        url = f"http://127.0.0.1:{model.engine_port}{model.health_path}"
        deadline = self.clock() + model.start_timeout
        # Advisory read: it only ends the probing of a start the scheduler gave up.
        while self.scheduler.phase(model_id) is Phase.STARTING:
            if await self.probe.healthy(url):
                self._apply(self.scheduler.on_ready(model_id, self.clock()))
                return
            if self.clock() > deadline:
                timeout = self.scheduler.on_health_timeout(
                    model_id, model.start_timeout, model.health_path, self.clock()
                )
                self._apply(timeout)
                return
            await asyncio.sleep(self.health_interval)

    async def _forget_past_starts(self, unit: str) -> None:
        # The units' start limit (3 in 10 minutes) is there to stop a crash
        # loop. Without this, an engine that crashed and came back healthy
        # three times (each time for a request) would be refused on its
        # fourth: systemd counts every start of a failed unit. sparkd's own
        # back-off handles starts that fail.
        try:
            await self.units.reset_failed_unit(unit)
        except SystemdError as error:
            log.warning("cannot reset %s's start count: %s", unit, error)

    async def _diagnose(self, failed: DiagnoseFailedStart) -> None:
        """systemd's unit result and the unit's last log lines, added to the cause a client reads."""
        model_id, cause = failed.model, failed.cause
        unit = self.model(model_id).unit_name
        with contextlib.suppress(Exception):
            result, status = await self.units.unit_result(unit)
            if result and result != "success":
                # systemd's own word: exit-code, timeout, start-limit-hit, ...
                cause += f" (unit result: {result}" + (f", exit status {status})" if status else ")")
        with contextlib.suppress(Exception):
            tail = await self.journal.tail(unit, 5)
            if tail:
                cause += "; last log lines: " + " | ".join(tail.splitlines()[-5:])
        log.error(
            "%s failed to start: %s", model_id, cause, extra=fields(model=model_id, event="start_failed")
        )
        self._count("start_failures", model_id)
        self._apply(self.scheduler.on_start_failed(model_id, cause, self.clock(), unit_up=failed.unit_up))
