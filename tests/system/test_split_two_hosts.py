"""A model split across two Sparks, on two real hosts: two private systemds with networks of their
own, joined by a veth pair, each with real podman units, each the other's peer through `[link]`.

`fake-split` is enabled on both (its head is a fake engine, its worker half a second fake
process): asked on spark-a, spark-a runs its head and spark-b its worker half, as spark-b's
GPU tenant. A monitor samples both hosts' units throughout: neither ever holds two tenants.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from testbed import BED_CONFIG, SPARKD, PrivateSystemd

from tests.system.conftest import wait_for
from tests.system.sparkd_bed import fake
from tests.system.two_sparks import Tenants, call, checked, in_flight, stopped, two_sparks

HEAD, WORKER = "sparkd-fake-split.service", "sparkd-worker-fake-split.service"
PYTHON, ENGINE = "/opt/sparkd-demo/venv/bin/python", "/opt/sparkd-tests/fake_engine.py"
SPLIT = fake(
    "fake-split",
    18110,
    f'nodes = 2\nworker_command = ["{PYTHON}", "{ENGINE}", "--port", "18120", "--model", "worker"]',
)
SLOW_B = fake("fake-b", 18102, "", ', "--interval", "0.3", "--chunks", "20"')  # a 6-second stream


@pytest.fixture(scope="module")
def sparks() -> Iterator[tuple[PrivateSystemd, PrivateSystemd, Tenants]]:
    with two_sparks(fake("fake-a", 18101) + SPLIT, SLOW_B + SPLIT) as hosts:
        yield hosts


def test_a_split_model_runs_its_head_here_and_its_worker_half_there(
    sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants],
) -> None:
    a, b, _ = sparks
    status, answer = call(a, "fake-split")
    assert status == 200, answer
    assert a.unit_state(HEAD) == "active" and b.unit_state(WORKER) == "active"
    assert stopped(a, "sparkd-worker-fake-split.service") and stopped(b, HEAD)
    # Stopped here, it stops there too.
    a.run(str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml", "stop", "fake-split")
    wait_for(lambda: stopped(b, WORKER), 30, "the worker half to stop with its head")


def test_a_busy_peer_makes_it_wait_and_someone_waiting_there_gets_the_gpu_back(
    sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants],
) -> None:
    a, b, _ = sparks
    answered: dict[str, tuple[int, dict[str, Any]]] = {}
    slow = threading.Thread(target=lambda: answered.setdefault("b", call(b, "fake-b", stream=True)))
    slow.start()
    wait_for(lambda: in_flight(b, "fake-b") == 1, 60, "fake-b answering on spark-b")
    status, answer = call(a, "fake-split")
    assert status == 200, answer
    slow.join(timeout=60)
    assert answered["b"][0] == 200  # spark-b's own answer came whole, then the swap
    assert stopped(b, "sparkd-fake-b.service") and b.unit_state(WORKER) == "active"
    # Someone on spark-b asks for fake-b: spark-a lets its half go once idle, spark-b swaps.
    status, answer = call(b, "fake-b")
    assert status == 200, answer
    assert stopped(a, HEAD) and stopped(b, WORKER)


def test_the_worker_halfs_death_stops_the_head_and_the_next_request_brings_both_back(
    sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants],
) -> None:
    a, b, _ = sparks
    assert call(a, "fake-split")[0] == 200
    b.run("systemctl", "kill", "--signal=KILL", WORKER)
    wait_for(lambda: stopped(a, HEAD), 30, "the head to stop after its worker half died")
    status, answer = call(a, "fake-split")
    assert status == 200, answer
    assert b.unit_state(WORKER) == "active"


def test_sparkd_check_finds_the_worker_half_on_the_peer(
    sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants],
) -> None:
    a, _, _ = sparks
    assert checked(a)["worker half of fake-split"] == ("ok", "spark-b runs it")


def test_a_peer_that_is_down_fails_the_start_with_why(
    sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants],
) -> None:
    a, b, _ = sparks
    a.run(str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml", "stop", "fake-split")
    wait_for(lambda: stopped(a, HEAD) and stopped(b, WORKER), 30, "both halves stopped")
    b.run("systemctl", "stop", "sparkd.socket", "sparkd-control.socket", "sparkd.service")
    try:
        status, answer = call(a, "fake-split")
        assert status == 503, answer
        assert "worker half on the peer" in answer["error"]["message"]
    finally:
        b.run("systemctl", "start", "sparkd.socket", "sparkd-control.socket")


def test_neither_spark_ever_held_two_tenants(sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants]) -> None:
    _, _, tenants = sparks
    assert tenants.samples > 10
    assert tenants.seen_two == []
