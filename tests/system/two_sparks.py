"""Two Sparks for the system tier: two private systemds, each with a network of its own, joined by a
veth pair, each with this checkout's sparkd (the other one its peer, across a `[link]`), and a
monitor that samples both hosts' GPU tenants throughout."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from testbed import BED_CONFIG, SPARKD, PrivateSystemd, install_sparkd, link, link_end

from tests.system.conftest import require_parts
from tests.system.sparkd_bed import BED_OVERRIDES, KEY

PORT = 18009
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
    status = f"http://127.0.0.1:{PORT}/sparkd/status"
    out = host.run("curl", "-s", "-H", f"Authorization: Bearer {KEY}", status, check=False).stdout
    models = json.loads(out).get("models", []) if out.startswith("{") else []
    return next((int(m["in_flight"]) for m in models if m["id"] == model), 0)


def stopped(host: PrivateSystemd, unit: str) -> bool:
    return host.unit_state(unit) in ("inactive", "failed", "unknown")


@contextmanager
def linked_hosts() -> Iterator[tuple[PrivateSystemd, PrivateSystemd, str, str]]:
    """Two freshly booted hosts, "a" and "b", joined by a veth pair: (a, b, a's address, b's)."""
    require_parts()
    for name in ("a", "b"):
        stale = PrivateSystemd.existing(name)
        if stale is not None:
            stale.poweroff()
    a = PrivateSystemd.boot(name="a", own_network=True)
    try:
        b = PrivateSystemd.boot(name="b", own_network=True)
        try:
            yield (a, b, *link(a, b))
        finally:
            b.poweroff()
    finally:
        a.poweroff()


@contextmanager
def two_sparks(models_a: str, models_b: str) -> Iterator[tuple[PrivateSystemd, PrivateSystemd, Tenants]]:
    """spark-a and spark-b with the catalogue drop-ins given, each the other's peer over the link."""
    with linked_hosts() as (a, b, address_a, address_b):
        for host, peer, mine, theirs, models in (
            (a, "spark-b", address_a, address_b, models_a),
            (b, "spark-a", address_b, address_a, models_b),
        ):
            setup = settings(peer, theirs, mine, link_end(host))
            install_sparkd(host, f"0.0.0.0:{PORT}", KEY, setup, BED_OVERRIDES + models)
            sparkd = [str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml"]
            host.run(*sparkd, "secret", "set", "PEER_KEY", input=KEY + "\n")
            host.run(*sparkd, "render")
        tenants = Tenants({"spark-a": a, "spark-b": b})
        try:
            yield a, b, tenants
        finally:
            tenants.stop()


def checked(host: PrivateSystemd, config: str = f"{BED_CONFIG}/sparkd.toml") -> dict[str, tuple[str, str]]:
    """`sparkd check --json` on `host`: each item's verdict and detail, by name."""
    out = host.run(str(SPARKD), "--config", config, "check", "--json", check=False).stdout
    return {i["item"]: (i["verdict"], i["detail"]) for i in json.loads(out)}
