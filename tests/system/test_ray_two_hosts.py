"""Real Ray across two hosts, under sparkd's units: a split vLLM-engine model's halves as sparkd renders
them (`sparkd/two_node.py`): Ray's head on spark-a waits for a second node, Ray's worker on
spark-b joins it across the veth pair, then the engine runs in the head's place.

Ray is PyPI's (installed into the demo engine's environment by scripts/bootstrap). The engine
itself is the fake one standing in for vLLM's server (it takes vLLM's flags and prints them):
what runs for real is everything sparkd and Ray do around it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed import PrivateSystemd

from tests.system.conftest import wait_for
from tests.system.two_sparks import Tenants, call, stopped, two_sparks

HEAD, WORKER = "sparkd-ray-split.service", "sparkd-worker-ray-split.service"
PYTHON, ENGINE = "/opt/sparkd-demo/venv/bin/python", "/opt/sparkd-tests/fake_engine.py"
TESTS = Path(__file__).resolve().parents[1]


# A vllm-engine model, so that its halves are rendered as they are for vLLM, whose 'vLLM' is the
# fake engine: run with the demo's Python (and Ray) from the demo's environment.
RAY_SPLIT = f"""
[models.ray-split]
engine = "vllm"
nodes = 2
image = "localhost/sparkd-demo:latest"
weights = "/opt/sparkd-tests"
launcher = ["{PYTHON}", "{ENGINE}"]
environment = {{ PATH = "/opt/sparkd-demo/venv/bin:/usr/bin:/bin", RAY_USAGE_STATS_ENABLED = "0" }}
volumes = ["/usr:/usr:ro", "/etc:/etc:ro", "{{state}}/demo:/opt/sparkd-demo:ro",
           "{TESTS}:/opt/sparkd-tests:ro",
           # where the environment was made: its scripts' (ray's) #! lines point there
           "{{state}}/demo:/var/lib/sparkd/demo:ro"]
shm_size = "1g"
gpu = false
run_init = true
port = 18130
context_length = 4096
start_timeout = "300s"
stop_timeout = "20s"
"""


@pytest.fixture(scope="module")
def sparks() -> Iterator[tuple[PrivateSystemd, PrivateSystemd, Tenants]]:
    with two_sparks(RAY_SPLIT, RAY_SPLIT) as hosts:
        yield hosts


def ray_nodes(host: PrivateSystemd) -> list[str]:
    """The addresses of the live nodes of the Ray cluster the head's container belongs to."""
    script = (
        'import json, ray; ray.init(address="auto", logging_level="ERROR"); '
        'print(json.dumps(sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])))'
    )
    out = host.run("podman", "exec", "sparkd-ray-split", PYTHON, "-c", script).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_the_head_serves_once_ray_has_both_nodes_joined_across_the_link(
    sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants],
) -> None:
    a, b, _ = sparks
    status, answer = call(a, "ray-split")
    assert status == 200, answer
    assert b.unit_state(WORKER) == "active"
    assert ray_nodes(a) == ["10.77.0.1", "10.77.0.2"]
    log = a.run("journalctl", "-u", HEAD, "--no-pager", "-o", "cat").stdout
    assert "waiting for the worker on spark-b to join" in log
    assert "--tensor-parallel-size 2 --distributed-executor-backend ray" in log  # vLLM's flags reached it


def test_the_ray_workers_death_stops_the_head(sparks: tuple[PrivateSystemd, PrivateSystemd, Tenants]) -> None:
    a, b, tenants = sparks
    b.run("systemctl", "kill", "--signal=KILL", WORKER)
    wait_for(lambda: stopped(a, HEAD), 60, "the head to stop after the Ray worker died")
    assert tenants.seen_two == []
