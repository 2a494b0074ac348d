"""The steps of a start, as events: memory and weights checked, systemd's job, the engine's health.

`StartSteps` is the part of `sparkd.scheduler.Scheduler` that takes one start
from CHECKING to READY or to its failure; each answer names the attempt it
belongs to, and answers to an older attempt are dropped. Pure, like the rest.
"""

from __future__ import annotations

from collections import deque

from sparkd import refusals
from sparkd.effects import (
    AbortInFlight,
    AwaitHealthy,
    DiagnoseFailedStart,
    Effect,
    PullWeights,
    Ready,
    StartUnit,
    SubmitStart,
    WakeAfter,
)
from sparkd.lifecycle import Phase, StartStep, backoff
from sparkd.tenancy import Tenancy


class StartSteps(Tenancy):
    def on_start_memory(
        self,
        model_id: str,
        attempt: int,
        available: int,
        need: int | None,
        now: float,
        weights_missing: bool = False,
        free: int | None = None,
        estimate: int | None = None,
    ) -> list[Effect]:
        """Memory (and the weights) were checked for start `attempt`.

        Weights never pulled are downloaded first (the start waits at PULLING),
        or, with pull_on_demand off, every waiter hears how to pull them. With
        the fit gate on, a model that cannot fit fails. A model that fits the
        available memory but not the free memory (page cache holds the rest:
        vLLM counts free memory, vLLM issue #48140) gets the cache dropped first.
        """
        state = self.states[model_id]
        if not self._at(model_id, attempt, StartStep.CHECKING):
            return []
        if self.policies[model_id].split and not self.linked:
            cause = "it spans two Sparks (nodes = 2) and this Spark has no [link]: see docs/two-sparks.md"
            return self.on_start_failed(model_id, cause, now)
        if weights_missing:
            if self.pull_on_demand:
                state.start_step = StartStep.PULLING
                return [PullWeights(model_id)]
            self._enter(model_id, Phase.STOPPED, now)  # not a failure: nothing was tried
            waiting = [w for w in self.queue if w.model == model_id]
            self.queue = deque(w for w in self.queue if w.model != model_id)
            refused: list[Effect] = [refusals.weights_missing(w.request, model_id) for w in waiting]
            return refused + self._advance(now)
        if self.fit_gate and need is not None and need > available:
            cause = f"it needed {need / 2**30:.1f} GiB before and {available / 2**30:.1f} GiB is available"
            return self.on_start_failed(model_id, cause, now)
        state.start_step = StartStep.ASKED
        wanted = need if need is not None else estimate
        drop = self.drop_page_cache and wanted is not None and free is not None and free < wanted <= available
        return [SubmitStart(model_id, attempt, available, drop_page_cache=drop)]

    def on_pull_done(self, model_id: str, cause: str | None, now: float) -> list[Effect]:
        """The weights' download ended: the start goes on (memory is measured anew), or fails for `cause`."""
        state = self.states[model_id]
        if state.phase is not Phase.STARTING or state.start_step is not StartStep.PULLING:
            return []
        if cause is not None:
            return self.on_start_failed(model_id, f"downloading its weights failed: {cause}", now)
        state.start_step = StartStep.CHECKING
        return [StartUnit(model_id, state.start_attempt)]

    def on_start_refused(self, model_id: str, attempt: int, error: str, now: float) -> list[Effect]:
        """systemd refused the StartUnit call itself (no such unit, a bad unit file)."""
        if not self._at(model_id, attempt, StartStep.ASKED):
            return []
        hint = "; run `sparkd render`" if "not found" in error else ""
        return self.on_start_failed(model_id, f"systemd refused: {error}{hint}", now)

    def on_start_job(self, model_id: str, attempt: int, job: str, now: float) -> list[Effect]:
        """systemd's answer to StartUnit: the job whose end decides the start."""
        state = self.states[model_id]
        if not self._at(model_id, attempt, StartStep.ASKED):
            return []
        state.start_job = job
        state.start_step = StartStep.JOB
        early = state.early_job_results.pop(job, None)
        state.early_job_results.clear()  # any other early end was another job's (a stop's)
        return [] if early is None else self._start_job_ended(model_id, early, now)

    def on_job_done(self, model_id: str, job: str, result: str, now: float) -> list[Effect]:
        """A job of the model's unit ended (systemd's JobRemoved): done, failed, canceled, ..."""
        state = self.states[model_id]
        if state.phase is not Phase.STARTING:
            return []  # a stop's job, or a start sparkd gave up (stopped while starting): not news
        if state.start_step is StartStep.ASKED:
            state.early_job_results[job] = result
            return []
        if state.start_step is StartStep.JOB and job == state.start_job:
            return self._start_job_ended(model_id, result, now)
        return []

    def _start_job_ended(self, model_id: str, result: str, now: float) -> list[Effect]:
        state = self.states[model_id]
        if result == "done" and self.policies[model_id].worker:
            return self.on_ready(model_id, now)  # it serves nothing: running is ready
        if result == "done":
            state.start_step = StartStep.PROBING
            return [AwaitHealthy(model_id)]
        state.start_step = StartStep.FAILING
        return [DiagnoseFailedStart(model_id, f"its start job ended with '{result}'", unit_up=False)]

    def on_ready(self, model_id: str, now: float) -> list[Effect]:
        """The unit is active and the engine answers its health route."""
        state = self.states[model_id]
        if state.phase is not Phase.STARTING:
            return []
        if self.policies[model_id].split and not state.worker_joined:
            state.start_step = StartStep.JOINING  # ready once the peer says its half runs too
            return []
        took = now - state.start_requested if state.start_requested is not None else None
        if took is not None:
            state.start_durations = [*state.start_durations[-9:], took]
        self._enter(model_id, Phase.READY, now)
        state.ready_at = now
        state.failures_in_a_row = 0
        state.last_failure = None
        effects: list[Effect] = [Ready(model_id, took), *self._advance(now)]
        return effects + self._arm_idle_unless_stopping(model_id, effects, now)

    def on_health_timeout(self, model_id: str, timeout: float, health_path: str, now: float) -> list[Effect]:
        """The unit runs but its engine never answered its health route in time."""
        state = self.states[model_id]
        if state.phase is not Phase.STARTING or state.start_step is not StartStep.PROBING:
            return []
        state.start_step = StartStep.FAILING
        cause = f"no healthy answer from {health_path} within {timeout:.0f}s"
        return [DiagnoseFailedStart(model_id, cause, unit_up=True)]

    def on_start_failed(self, model_id: str, cause: str, now: float, unit_up: bool = False) -> list[Effect]:
        """The start failed, for `cause` (diagnosed): tell every waiter why, and back off if it repeats.

        `unit_up`: the unit still runs (an engine that never became healthy); it is stopped.
        """
        state = self.states[model_id]
        if state.phase is not Phase.STARTING:
            return []
        state.failures_in_a_row += 1
        state.last_failure = cause
        effects: list[Effect] = []
        if unit_up:
            effects += self._stop(model_id, "unhealthy", now)
        else:
            self._enter(model_id, Phase.STOPPED, now)
        keep_warm = self.policies[model_id].keep_warm
        pause = backoff(state.failures_in_a_row, keep_warm)
        if pause is not None:
            state.retry_at = now + pause
            if keep_warm:
                effects.append(WakeAfter(pause))
        retry = self._retry_after(model_id, now)
        for waiter in [w for w in self.queue if w.model == model_id]:
            self.queue.remove(waiter)
            effects.append(refusals.start_failed(waiter.request, model_id, cause, retry))
        if state.in_flight:
            effects.append(AbortInFlight(model_id, f"{model_id!r} failed: {cause}"))
        return effects + self._advance(now)

    # Helpers ----------------------------------------------------------------------

    def _at(self, model_id: str, attempt: int, step: StartStep) -> bool:
        """Is start `attempt` of the model the current one, at `step`? Answers to older starts are dropped."""
        state = self.states[model_id]
        return state.phase is Phase.STARTING and state.start_attempt == attempt and state.start_step is step
