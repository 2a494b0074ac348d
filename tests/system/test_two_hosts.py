"""Two Sparks: two private systemds, each in its own network namespace, joined by a veth pair.

The hosts' traffic stays between them. spark-a names spark-b as its peer: a model only
spark-b serves is listed by spark-a and answered through it; spark-b down is reported by
spark-a and never waited on. `sparkd check` verifies the veth pair as it would the ConnectX link.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from testbed import BED_CONFIG, SPARKD, PrivateSystemd, install_sparkd, link_end

from tests.system.conftest import wait_for
from tests.system.sparkd_bed import BED_OVERRIDES, KEY, fake
from tests.system.two_sparks import checked, linked_hosts

PORT = 18009
# Each host has its fake engine (which runs with the demo's Python, from /var/lib/sparkd/demo).
HOST_SETTINGS = "quiet_exit = 0\n"


@pytest.fixture(scope="module")
def sparks() -> Iterator[tuple[PrivateSystemd, PrivateSystemd, str, str]]:
    with linked_hosts() as (a, b, address_a, address_b):
        peer = f'[[peers]]\nname = "spark-b"\nurl = "http://{address_b}:{PORT}"\nkey_secret = "PEER_KEY"\n'
        install_sparkd(a, f"0.0.0.0:{PORT}", KEY, HOST_SETTINGS + peer, BED_OVERRIDES + fake("fake-a", 18101))
        install_sparkd(b, f"0.0.0.0:{PORT}", KEY, HOST_SETTINGS, BED_OVERRIDES + fake("fake-b", 18102))
        sparkd = [str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml"]
        a.run(*sparkd, "secret", "set", "PEER_KEY", input=KEY + "\n")
        yield a, b, address_a, address_b


def call(
    host: PrivateSystemd, path: str, body: dict[str, object] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """curl from inside the host's own network, as a client on that Spark's LAN would."""
    argv = ["curl", "-s", "-D", "-", "-H", f"Authorization: Bearer {KEY}", "--max-time", "60"]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = host.run(*argv, f"http://127.0.0.1:{PORT}{path}", check=False).stdout
    head, _, text = out.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1]) if head.startswith("HTTP/") else 0
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)
    return (
        status,
        {k.lower(): v for k, v in headers.items()},
        json.loads(text) if text.startswith("{") else {},
    )


CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def test_the_hosts_reach_each_other_and_nothing_else_does(
    sparks: tuple[PrivateSystemd, PrivateSystemd, str, str],
) -> None:
    a, b, address_a, address_b = sparks
    assert a.run("curl", "-s", "--max-time", "5", f"http://{address_b}:{PORT}/healthz").stdout == "ok\n"
    assert b.run("curl", "-s", "--max-time", "5", f"http://{address_a}:{PORT}/healthz").stdout == "ok\n"
    # From the machine's own network, that address is not spark-b (whatever else answers there).
    outside = subprocess.run(
        ["curl", "-s", "--max-time", "2", f"http://{address_b}:{PORT}/healthz"],
        capture_output=True,
        check=False,
    )
    assert outside.stdout != b"ok\n"


def test_a_model_only_the_peer_serves_is_listed_and_answered_through_this_spark(
    sparks: tuple[PrivateSystemd, PrivateSystemd, str, str],
) -> None:
    a, b, _, _ = sparks
    status, _, listed = call(a, "/v1/models")
    assert status == 200
    owners = {m["id"]: m["owned_by"] for m in listed["data"]}
    assert (owners["fake-a"], owners["fake-b"]) == ("sparkd", "sparkd@spark-b")
    status, headers, answer = call(a, "/v1/chat/completions", {**CHAT, "model": "fake-b"})
    assert status == 200, answer
    assert headers["x-sparkd-peer"] == "spark-b"
    assert b.unit_state("sparkd-fake-b.service") == "active"
    assert a.unit_state("sparkd-fake-b.service") in ("inactive", "unknown")


def test_a_peer_that_is_down_is_reported_and_never_waited_on(
    sparks: tuple[PrivateSystemd, PrivateSystemd, str, str],
) -> None:
    a, b, _, _ = sparks
    b.run("systemctl", "stop", "sparkd.socket", "sparkd-control.socket", "sparkd.service")
    try:
        began = time.monotonic()
        status, _, answer = call(a, "/v1/chat/completions", {**CHAT, "model": "fake-b"})
        assert status in (404, 502), answer  # unlisted once known down; refused if the list was fresh
        assert time.monotonic() - began < 10

        def reported_down() -> bool:  # once the 10 s its list is trusted are over (peers.REFRESH)
            peer = call(a, "/sparkd/status")[2]["peers"][0]
            return (peer["name"], peer["up"]) == ("spark-b", False) and bool(peer["error"])

        wait_for(reported_down, 30, "spark-a to report spark-b down")
    finally:
        b.run("systemctl", "start", "sparkd.socket", "sparkd-control.socket")


def link_verdicts(host: PrivateSystemd, link_table: str) -> dict[str, tuple[str, str]]:
    """`sparkd check --json` on `host` with its settings plus `link_table`: the link's items."""
    settings = host.run("cat", f"{BED_CONFIG}/sparkd.toml").stdout + link_table
    host.write_file(f"{BED_CONFIG}/check.toml", settings)
    wanted = ("link", "route to", "rdma", "peer ")
    items = checked(host, f"{BED_CONFIG}/check.toml")
    return {name: found for name, found in items.items() if name.startswith(wanted)}


def test_sparkd_check_verifies_the_link_to_the_peer(
    sparks: tuple[PrivateSystemd, PrivateSystemd, str, str],
) -> None:
    a, _b, address_a, address_b = sparks
    end = link_end(a)
    table = (
        f'[link]\npeer = "spark-b"\naddress = "{address_a}"\npeer_address = "{address_b}"\n'
        f'interface = "{end}"\n'
    )
    found = link_verdicts(a, table)
    assert found[f"link interface {end}"] == ("ok", f"up, with {address_a}")
    assert found[f"route to {address_b}"] == ("ok", f"over {end}")
    assert found[f"link MTU {end}"][0] == "warn"  # a veth pair's 1500
    assert found["rdma"][0] == "warn"  # no ConnectX here
    assert found["peer spark-b"][0] == "ok"
    # The loopback is no way to the peer: the check says so.
    wrong = table.replace(f'interface = "{end}"', 'interface = "lo"')
    found = link_verdicts(a, wrong)
    assert found[f"route to {address_b}"] == (
        "fail",
        f"over {end}, not lo: NCCL and Gloo would leave by the wrong port",
    )
