"""A model across two Sparks (`nodes = 2`): the commands of its halves (pure).

vLLM runs tensor parallel 2 on a Ray cluster of the two Sparks, as NVIDIA's
stacked-Spark playbooks do by hand. The Spark that serves the model holds the
head: its unit starts Ray's head, waits until the worker has joined, then runs
vLLM with `--tensor-parallel-size 2 --distributed-executor-backend ray`. The
Spark across the link runs the worker half (`sparkd-worker-<id>`): it waits for
the head's Ray port, then joins and stays in the foreground, so the worker's
death ends its unit. Either Spark may hold the head (the one a client asked),
so each renders both halves, the worker pointed at the other's link address.

NCCL and Gloo are pinned to the link's interface and vLLM to its address:
left to themselves they may pick the 1 GbE port and run a hundred times
slower without a word.
"""

from __future__ import annotations

import shlex

from sparkd.catalogue import Engine, Model
from sparkd.settings import Link

JOIN_POLL = 2  # seconds between looks for the other half
TENSOR_PARALLEL = ("--tensor-parallel-size", "2", "--distributed-executor-backend", "ray")


def environment(link: Link) -> dict[str, str]:
    """What both halves need to talk over the link and nowhere else."""
    return {
        "NCCL_SOCKET_IFNAME": link.interface,
        "GLOO_SOCKET_IFNAME": link.interface,
        "VLLM_HOST_IP": link.address,
    }


def engine_args(engine: list[str]) -> list[str]:
    """The engine's command with tensor parallel 2 over Ray: a value the catalogue gave for either
    flag (a single Spark's `--tensor-parallel-size 1`) is replaced, a missing flag added."""
    wanted = dict(zip(TENSOR_PARALLEL[::2], TENSOR_PARALLEL[1::2], strict=True))
    words = list(engine)
    for index, word in enumerate(words):
        flag = word.split("=", 1)[0]
        if flag not in wanted:
            continue
        if "=" in word:
            words[index] = f"{flag}={wanted.pop(flag)}"
        elif index + 1 < len(words):
            words[index + 1] = wanted.pop(flag)
    return words + [word for flag, value in wanted.items() for word in (flag, value)]


def head_command(engine: list[str], link: Link) -> list[str]:
    """Ray's head, then (once two nodes are alive) the engine in its place."""
    # Double quotes inside: shlex then needs no quote of its own in the single-quoted word.
    two_alive = (
        'import ray, sys; ray.init(address="auto", logging_level="ERROR"); '
        'sys.exit(sum(node["Alive"] for node in ray.nodes()) < 2)'
    )
    script = " && ".join(
        [
            f"ray start --head --node-ip-address={link.address} --port={link.ray_port} --disable-usage-stats",
            f"echo 'sparkd: waiting for the worker on {link.peer} to join'",
            f"until python3 -c {shlex.quote(two_alive)}; do sleep {JOIN_POLL}; done",
            "exec " + shlex.join(engine_args(engine)),
        ]
    )
    return ["/bin/sh", "-c", script]


def worker_command(model: Model, link: Link) -> list[str]:
    """Wait for the head's Ray port across the link, then join it in the foreground (a generic
    engine's own `worker_command`, its placeholders filled, instead)."""
    if model.engine is Engine.GENERIC:
        values = {
            "address": link.address,
            "peer_address": link.peer_address,
            "ray_port": str(link.ray_port),
            "model_id": model.id,
        }
        return [word.format_map(values) for word in model.worker_command]
    reachable = f'import socket; socket.create_connection(("{link.peer_address}", {link.ray_port}), 2)'
    script = " && ".join(
        [
            f"echo 'sparkd: worker half of {model.id}, waiting for the head on {link.peer}'",
            f"until python3 -c {shlex.quote(reachable)} 2>/dev/null; do sleep {JOIN_POLL}; done",
            f"exec ray start --address={link.peer_address}:{link.ray_port} "
            f"--node-ip-address={link.address} --disable-usage-stats --block",
        ]
    )
    return ["/bin/sh", "-c", script]
