"""A model across two Sparks renders as a Ray head with vLLM here and a Ray worker for the other
Spark, both pinned to the link (golden files in tests/golden/quadlet-two-sparks/)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sparkd.catalogue import Catalogue, Engine, Model, Role, load_catalogue
from sparkd.quadlet import HostFacts, render_all
from sparkd.schema import FieldError, validate
from sparkd.settings import Link
from sparkd.two_node import engine_args
from tests.unit.podman49 import problems_for_podman49, sections

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "quadlet-two-sparks"
LINK = Link(peer="spark-b", address="192.168.100.10", peer_address="192.168.100.11", interface="enp1s0f0np0")
SPARK_A = HostFacts(gpu=True, link=LINK)


@pytest.fixture(scope="module")
def across_two() -> Model:
    catalogue: Catalogue = load_catalogue()
    found = catalogue.resolve("gpt-oss-120b")
    assert found is not None
    return dataclasses.replace(found, nodes=2)


def test_both_halves_render_as_their_golden_files(across_two: Model) -> None:
    rendered = render_all([across_two], SPARK_A)
    assert sorted(rendered) == ["sparkd-gpt-oss-120b.container", "sparkd-worker-gpt-oss-120b.container"]
    for name, text in rendered.items():
        assert text == (GOLDEN / name).read_text(), name
        assert problems_for_podman49(name, text) == []


def test_the_head_runs_tensor_parallel_two_over_ray_once_the_worker_joined(across_two: Model) -> None:
    head = dict(sections(render_all([across_two], SPARK_A)["sparkd-gpt-oss-120b.container"])["Container"])
    script = head["Exec"]
    assert script.index("ray start --head --node-ip-address=192.168.100.10") < script.index("until")
    assert script.index("until") < script.index("exec vllm serve")
    assert "--tensor-parallel-size 1" not in script  # the single Spark's value is replaced
    assert "--tensor-parallel-size 2" in script and "--distributed-executor-backend ray" in script


def test_both_halves_talk_over_the_link_and_nowhere_else(across_two: Model) -> None:
    for name, text in render_all([across_two], SPARK_A).items():
        environment = [value for key, value in sections(text)["Container"] if key == "Environment"]
        for pinned in ("NCCL_SOCKET_IFNAME=enp1s0f0np0", "GLOO_SOCKET_IFNAME=enp1s0f0np0"):
            assert pinned in environment, name
        assert "VLLM_HOST_IP=192.168.100.10" in environment, name


def test_the_worker_joins_the_head_across_the_link_and_stays_in_the_foreground(across_two: Model) -> None:
    worker = dict(
        sections(render_all([across_two], SPARK_A)["sparkd-worker-gpt-oss-120b.container"])["Container"]
    )
    assert "--address=192.168.100.11:6379 --node-ip-address=192.168.100.10" in worker["Exec"]
    assert worker["Exec"].rstrip('"').endswith("--block")
    assert "HealthCmd" not in worker  # it serves nothing: the head's health covers both


def test_without_a_link_a_two_spark_model_is_not_rendered(across_two: Model) -> None:
    assert render_all([across_two], HostFacts(gpu=True)) == {}


@pytest.mark.parametrize(
    ("engine", "made"),
    [
        (["m"], ["m", "--tensor-parallel-size", "2", "--distributed-executor-backend", "ray"]),
        (
            ["m", "--tensor-parallel-size", "1"],
            ["m", "--tensor-parallel-size", "2", "--distributed-executor-backend", "ray"],
        ),
        (
            ["m", "--tensor-parallel-size=1", "--distributed-executor-backend=mp"],
            ["m", "--tensor-parallel-size=2", "--distributed-executor-backend=ray"],
        ),
    ],
)
def test_tensor_parallelism_replaces_what_a_single_spark_had(engine: list[str], made: list[str]) -> None:
    assert engine_args(engine) == made


def test_a_vllm_or_generic_main_or_exclusive_model_may_span_two_sparks() -> None:
    base = {"id": "m", "image": "i", "weights": "w", "context_length": 8, "nodes": 2}
    generic = {"engine": "generic", "weights": None, "command": ["serve"]}
    for wrong, said in (
        ({"role": "utility"}, "nodes = 2"),
        ({"engine": "sglang"}, "nodes = 2"),
        (generic, "needs `worker_command`"),
        ({"nodes": 1, "worker_command": ["x"]}, "`worker_command` is for"),
    ):
        with pytest.raises(FieldError, match=said):
            validate(Model, {**base, **wrong})
    assert validate(Model, {**base, "role": "exclusive"}).role is Role.EXCLUSIVE
    assert validate(Model, base).engine is Engine.VLLM
    assert validate(Model, {**base, **generic, "worker_command": ["join"]}).nodes == 2


def test_a_generic_engines_worker_half_runs_its_own_command_with_the_link_filled_in() -> None:
    fields: dict[str, object] = {"id": "m", "image": "i", "engine": "generic"}
    fields["command"] = ["serve", "--port", "{port}"]
    fields |= {"context_length": 8, "nodes": 2, "port": 18100, "gpu": False}
    fields["worker_command"] = ["join", "{peer_address}:{ray_port}", "--as", "{address}", "{model_id}"]
    rendered = render_all([validate(Model, fields)], SPARK_A)
    worker = dict(sections(rendered["sparkd-worker-m.container"])["Container"])
    assert worker["Exec"] == "join 192.168.100.11:6379 --as 192.168.100.10 m"
    head = dict(sections(rendered["sparkd-m.container"])["Container"])
    assert head["Exec"] == "serve --port 18100"  # its own command: no Ray around it


@pytest.mark.parametrize("taken", ["worker-x", "idle-x"])
def test_a_model_id_cannot_pass_for_one_of_sparkds_own_units(taken: str) -> None:
    with pytest.raises(FieldError, match="cannot start with"):
        validate(Model, {"id": taken, "image": "i", "weights": "w", "context_length": 8})
