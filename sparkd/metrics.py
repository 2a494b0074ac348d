"""Prometheus metrics (`GET /metrics`): counted in plain Python, written out by prometheus-client.

Counting happens on the request path, so it is a dict update and a bisect,
with no locks (one event loop counts). prometheus-client does the text
format and is imported at the first scrape only: it is not part of the
socket-activated start a client waits for. The gauges that describe the
present (queues, phases, memory) are read from the scheduler at scrape
time, so there is no second copy of that state.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkd.lifecycle import Phase
from sparkd.tenancy import Tenancy

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
START_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


@dataclass
class Counter:
    name: str
    help: str
    labels: tuple[str, ...]
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, *label_values: str) -> None:
        self.values[label_values] = self.values.get(label_values, 0) + 1

    def family(self) -> Metric:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.help, labels=self.labels)
        for label_values, value in self.values.items():
            family.add_metric(list(label_values), value)
        return family


@dataclass
class Histogram:
    """Per label set: a count per bucket (not cumulative), the sum and the count."""

    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]
    series: dict[tuple[str, ...], tuple[list[int], list[float]]] = field(default_factory=dict)

    def observe(self, value: float, *label_values: str) -> None:
        entry = self.series.get(label_values)
        if entry is None:
            entry = self.series[label_values] = ([0] * (len(self.buckets) + 1), [0.0])
        counts, total = entry
        counts[bisect.bisect_left(self.buckets, value)] += 1  # a bucket counts values <= its bound
        total[0] += value

    def family(self) -> Metric:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.help, labels=self.labels)
        bounds = [*(_bound(b) for b in self.buckets), "+Inf"]
        for label_values, (counts, total) in self.series.items():
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric(list(label_values), cumulative, total[0])
        return family


def _bound(value: float) -> str:
    return repr(float(value))


class Metrics:
    def __init__(self, scheduler: Tenancy, memory: Callable[[], dict[str, float]]) -> None:
        self.requests = Counter(
            "sparkd_requests", "Requests answered, by model and HTTP status", ("model", "status")
        )
        self.duration = Histogram(
            "sparkd_request_duration_seconds", "Time from request to last byte", ("model",), LATENCY_BUCKETS
        )
        self.ttfb = Histogram(
            "sparkd_time_to_first_byte_seconds",
            "Time from request to the engine's first byte",
            ("model",),
            LATENCY_BUCKETS,
        )
        self.queue_wait = Histogram(
            "sparkd_queue_wait_seconds", "Time a request waited for its model", ("model",), LATENCY_BUCKETS
        )
        self.starts = Counter("sparkd_model_starts", "Model units started", ("model",))
        self.start_seconds = Histogram(
            "sparkd_model_start_seconds", "Start to healthy, per model", ("model",), START_BUCKETS
        )
        self.start_failures = Counter("sparkd_model_start_failures", "Starts that failed", ("model",))
        self.stops = Counter(
            "sparkd_model_stops", "Model units stopped by sparkd, by reason", ("model", "reason")
        )
        self._scheduler = scheduler
        self._memory = memory

    def request_done(
        self, model: str, status: int, duration: float, ttfb: float | None, waited: float
    ) -> None:
        self.requests.inc(model, str(status))
        self.duration.observe(duration, model)
        if ttfb is not None:
            self.ttfb.observe(ttfb, model)
        self.queue_wait.observe(waited, model)

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(self))
        return bytes(generate_latest(registry))

    def families(self) -> Iterator[Metric]:
        for metric in (
            self.requests,
            self.duration,
            self.ttfb,
            self.queue_wait,
            self.starts,
            self.start_seconds,
            self.start_failures,
            self.stops,
        ):
            yield metric.family()
        yield from _present(self._scheduler, self._memory)


class _Families:
    """A prometheus-client collector over sparkd's own counts, made at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self._metrics.families()


def _present(scheduler: Tenancy, memory: Callable[[], dict[str, float]]) -> Iterator[Metric]:
    """Gauges read from the scheduler (and memory readings) when scraped."""
    from prometheus_client.core import GaugeMetricFamily

    queued = GaugeMetricFamily("sparkd_queue_depth", "Requests waiting, by model", labels=["model"])
    running = GaugeMetricFamily("sparkd_in_flight", "Requests being answered, by model", labels=["model"])
    phase = GaugeMetricFamily(
        "sparkd_model_phase", "1 for the phase each model is in", labels=["model", "phase"]
    )
    for view in scheduler.views(time.monotonic()):
        queued.add_metric([view.id], view.queued)
        running.add_metric([view.id], view.in_flight)
        for candidate in Phase:
            phase.add_metric([view.id, candidate.value], 1.0 if view.phase is candidate else 0.0)
    yield queued
    yield running
    yield phase
    readings = GaugeMetricFamily(
        "sparkd_memory_bytes", "Memory readings (available; each model's peak need)", labels=["what"]
    )
    for what, value in memory().items():
        readings.add_metric([what], value)
    yield readings
