"""Prometheus metrics (`GET /metrics`), kept in a registry of sparkd's own.

prometheus-client does the text format, histogram buckets and label
handling; counters and histograms are updated as things happen, and the
gauges that describe the present (queues, phases, memory) are read from the
scheduler at scrape time, so there is no second copy of that state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sparkd.scheduler import Phase, Scheduler

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
START_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


class Metrics:
    def __init__(self, scheduler: Scheduler, memory: Callable[[], dict[str, float]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sparkd_requests", "Requests answered, by model and HTTP status", ["model", "status"], registry=r
        )
        self.duration = Histogram(
            "sparkd_request_duration_seconds",
            "Time from request to last byte",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "sparkd_time_to_first_byte_seconds",
            "Time from request to the engine's first byte",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "sparkd_queue_wait_seconds",
            "Time a request waited for its model",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.starts = Counter("sparkd_model_starts", "Model units started", ["model"], registry=r)
        self.start_seconds = Histogram(
            "sparkd_model_start_seconds",
            "Start to healthy, per model",
            ["model"],
            buckets=START_BUCKETS,
            registry=r,
        )
        self.start_failures = Counter(
            "sparkd_model_start_failures", "Starts that failed", ["model"], registry=r
        )
        self.stops = Counter(
            "sparkd_model_stops", "Model units stopped by sparkd, by reason", ["model", "reason"], registry=r
        )
        r.register(_Present(scheduler, memory))
        self._children: dict[str, tuple[Any, Any, Any]] = {}
        self._counters: dict[tuple[str, int], Any] = {}

    def request_done(
        self, model: str, status: int, duration: float, ttfb: float | None, waited: float
    ) -> None:
        # The labelled children are looked up once per model and status, not per request.
        per_model = self._children.get(model)
        if per_model is None:
            per_model = self._children[model] = (
                self.duration.labels(model),
                self.ttfb.labels(model),
                self.queue_wait.labels(model),
            )
        counter = self._counters.get((model, status))
        if counter is None:
            counter = self._counters[(model, status)] = self.requests.labels(model, str(status))
        counter.inc()
        per_model[0].observe(duration)
        if ttfb is not None:
            per_model[1].observe(ttfb)
        per_model[2].observe(waited)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Present(Collector):
    """Gauges read from the scheduler (and memory readings) when scraped."""

    def __init__(self, scheduler: Scheduler, memory: Callable[[], dict[str, float]]) -> None:
        self._scheduler = scheduler
        self._memory = memory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self._scheduler
        queued = GaugeMetricFamily("sparkd_queue_depth", "Requests waiting, by model", labels=["model"])
        running = GaugeMetricFamily("sparkd_in_flight", "Requests being answered, by model", labels=["model"])
        phase = GaugeMetricFamily(
            "sparkd_model_phase", "1 for the phase each model is in", labels=["model", "phase"]
        )
        for model_id, state in s.states.items():
            queued.add_metric([model_id], s.queued(model_id))
            running.add_metric([model_id], len(state.in_flight))
            for candidate in Phase:
                phase.add_metric([model_id, candidate.value], 1.0 if state.phase is candidate else 0.0)
        yield queued
        yield running
        yield phase
        memory = GaugeMetricFamily(
            "sparkd_memory_bytes", "Memory readings (available; each model's peak need)", labels=["what"]
        )
        for what, value in self._memory().items():
            memory.add_metric([what], value)
        yield memory
