"""A model split across two Sparks, on two real hosts: two private systemds with networks of their
own, joined by a veth pair, each with real podman units, each the other's peer through `[link]`.

`fake-split` is enabled on both (its head is a fake engine, its worker half a second fake
process): asked on spark-a, spark-a runs its head and spark-b its worker half, as spark-b's
GPU tenant. A monitor samples both hosts' units throughout: neither ever holds two tenants.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from testbed import BED_CONFIG, SPARKD, PrivateSystemd, install_sparkd, link, link_end

from tests.system.conftest import require_parts, wait_for
from tests.system.sparkd_bed import BED_OVERRIDES, KEY, fake

PORT = 18009
HEAD, WORKER = "sparkd-fake-split.service", "sparkd-worker-fake-split.service"
PYTHON, ENGINE = "/opt/sparkd-demo/venv/bin/python", "/opt/sparkd-tests/fake_engine.py"
SPLIT = fake(
    "fake-split",
    18110,
    f'nodes = 2\nworker_command = ["{PYTHON}", "{ENGINE}", "--port", "18120", "--model", "worker"]',
)
SLOW_B = fake("fake-b", 18102, "", ', "--interval", "0.3", "--chunks", "20"')  # a 6-second stream
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


class Tenants:
    """Samples a host's GPU tenants (its model units, worker halves included) until stopped."""

    def __init__(self, hosts: dict[str, PrivateSystemd]) -> None:
        self.hosts, self.samples = hosts, 0
        self.seen_two: list[tuple[str, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for name, host in self.hosts.items():
                units = held(host)
                if len(units) > 1:
                    self.seen_two.append((name, sorted(units)))
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def held(host: PrivateSystemd) -> set[str]:
    listed = host.run(
        "systemctl", "list-units", "sparkd-*.service", "--no-legend", "--plain",
        "--state=active,activating,deactivating", check=False,
    ).stdout  # fmt: skip
    units = {line.split()[0] for line in listed.splitlines() if line.strip()}
    helpers = ("sparkd-idle-", "sparkd-pull@", "sparkd-drop-caches")
    return {u for u in units if u != "sparkd.service" and not u.startswith(helpers)}


def settings(peer: str, peer_address: str, address: str, interface: str) -> str:
    return (
        "quiet_exit = 0\nswap_hold = 0\n"
        f'[[peers]]\nname = "{peer}"\nurl = "http://{peer_address}:{PORT}"\nkey_secret = "PEER_KEY"\n'
        f'[link]\npeer = "{peer}"\naddress = "{address}"\npeer_address = "{peer_address}"\n'
        f'interface = "{interface}"\n'
    )


@pytest.fixture(scope="module")
def sparks() -> Iterator[tuple[PrivateSystemd, PrivateSystemd, Tenants]]:
    require_parts()
    for name in ("a", "b"):
        stale = PrivateSystemd.existing(name)
        if stale is not None:
            stale.poweroff()
    a = PrivateSystemd.boot(name="a", own_network=True)
    try:
        b = PrivateSystemd.boot(name="b", own_network=True)
        try:
            address_a, address_b = link(a, b)
            for host, peer, mine, theirs, models in (
                (a, "spark-b", address_a, address_b, fake("fake-a", 18101)),
                (b, "spark-a", address_b, address_a, SLOW_B),
            ):
                setup = settings(peer, theirs, mine, link_end(host))
                install_sparkd(host, f"0.0.0.0:{PORT}", KEY, setup, BED_OVERRIDES + models + SPLIT)
                sparkd = [str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml"]
                host.run(*sparkd, "secret", "set", "PEER_KEY", input=KEY + "\n")
                host.run(*sparkd, "render")
            tenants = Tenants({"spark-a": a, "spark-b": b})
            try:
                yield a, b, tenants
            finally:
                tenants.stop()
        finally:
            b.poweroff()
    finally:
        a.poweroff()


def call(host: PrivateSystemd, model: str, stream: bool = False) -> tuple[int, dict[str, Any]]:
    body = json.dumps({**CHAT, "model": model, "stream": stream})
    out = host.run(
        "curl", "-s", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {KEY}",
        "-H", "Content-Type: application/json", "-d", body, "--max-time", "120",
        f"http://127.0.0.1:{PORT}/v1/chat/completions", check=False,
    ).stdout  # fmt: skip
    text, _, code = out.rpartition("\n")
    return int(code or 0), json.loads(text) if text.startswith("{") else {"text": text}


def in_flight(host: PrivateSystemd, model: str) -> int:
    out = host.run(
        "curl", "-s", "-H", f"Authorization: Bearer {KEY}", f"http://127.0.0.1:{PORT}/sparkd/status", check=False
    ).stdout  # fmt: skip
    models = json.loads(out).get("models", []) if out.startswith("{") else []
    return next((int(m["in_flight"]) for m in models if m["id"] == model), 0)


def stopped(host: PrivateSystemd, unit: str) -> bool:
    return host.unit_state(unit) in ("inactive", "failed", "unknown")


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
