"""Metrics counted in plain Python come out as the Prometheus text a scraper expects."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sparkd.catalogue import Role
from sparkd.lifecycle import Policy
from sparkd.metrics import Metrics
from sparkd.scheduler import Scheduler


def scrape(metrics: Metrics) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{sample name: {sorted labels: value}} from the rendered text."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def metrics(memory: dict[str, float] | None = None) -> Metrics:
    scheduler = Scheduler({"alpha": Policy(Role.MAIN, idle_timeout=5, min_uptime=0, start_timeout=60)})
    return Metrics(scheduler, lambda: memory or {})


def test_requests_are_counted_by_model_and_status() -> None:
    m = metrics()
    m.request_done("alpha", 200, 0.1, 0.05, 0.0)
    m.request_done("alpha", 200, 0.1, 0.05, 0.0)
    m.request_done("alpha", 503, 0.1, None, 0.0)
    assert scrape(m)["sparkd_requests_total"] == {
        (("model", "alpha"), ("status", "200")): 2.0,
        (("model", "alpha"), ("status", "503")): 1.0,
    }


def test_a_value_on_a_bucket_bound_counts_in_that_bucket_and_buckets_are_cumulative() -> None:
    m = metrics()
    for duration in (0.005, 0.006, 5000.0):
        m.request_done("alpha", 200, duration, None, 0.0)
    series = scrape(m)["sparkd_request_duration_seconds_bucket"]
    buckets = {dict(labels)["le"]: value for labels, value in series.items()}
    assert (buckets["0.005"], buckets["0.01"], buckets["900.0"], buckets["+Inf"]) == (1, 2, 2, 3)
    assert scrape(m)["sparkd_request_duration_seconds_count"] == {(("model", "alpha"),): 3.0}
    assert scrape(m)["sparkd_request_duration_seconds_sum"] == {(("model", "alpha"),): 5000.011}


def test_no_time_to_first_byte_is_recorded_for_an_answer_that_never_began() -> None:
    m = metrics()
    m.request_done("alpha", 502, 0.2, None, 0.0)
    assert "sparkd_time_to_first_byte_seconds_count" not in scrape(m)


def test_the_present_is_read_from_the_scheduler_and_memory_at_scrape_time() -> None:
    m = metrics({"available": 1e9})
    samples = scrape(m)
    assert samples["sparkd_model_phase"][(("model", "alpha"), ("phase", "stopped"))] == 1.0
    assert samples["sparkd_queue_depth"] == {(("model", "alpha"),): 0.0}
    assert samples["sparkd_memory_bytes"] == {(("what", "available"),): 1e9}
