"""How big a model's weights are and how much memory it needs: estimates before it ever ran.

A Spark has 128 GB of unified memory. What a model needs is known exactly
once it has run (sparkd records the drop in available memory: `MemoryBook`);
before that, it is estimated: vLLM reserves `--gpu-memory-utilization` of the
total for weights and KV cache (SGLang: `--mem-fraction-static`), and any
other engine needs its weights and some room. The weights' size is exact
once pulled (the hub's own sizes), else the catalogue's `weights_gb`, else
read from the name: parameters (`120b`, `35b-a3b`, `0.8b`) times the bytes a
parameter takes in the quantisation the name says (FP8: 1, 4-bit: about
0.56 with its scales, otherwise BF16: 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparkd.model import Model

SPARK_MEMORY = 128 * 10**9  # bytes of unified memory on a DGX Spark (GB10)
SYSTEM_RESERVE = 8 * 2**30  # what DGX OS, podman and sparkd keep for themselves
_PARAMETERS = re.compile(r"(?<![\d.a-z])(\d+(?:\.\d+)?)b(?![a-z\d])")
FOUR_BIT = ("nvfp4", "mxfp4", "fp4", "int4", "awq", "autoround", "4bit", "gptq", "q4")
OTHER_ROOM = 2 * 2**30  # an engine without a memory fraction: its weights, a fifth more, and this


def parameters(model: Model) -> float | None:
    """Billions of parameters, read from the repository's or the model's name."""
    for name in (model.weights or "", model.id):
        found = _PARAMETERS.search(name.rsplit("/", 1)[-1].lower())
        if found:
            return float(found[1])
    return None


def bytes_per_parameter(model: Model) -> float:
    name = f"{model.weights or ''} {model.id}".lower()
    if any(tag in name for tag in FOUR_BIT):
        return 0.56
    if "fp8" in name:
        return 1.0
    return 2.0


def weights_estimate(model: Model) -> int | None:
    """The weights' size in bytes, when the catalogue or the name tells."""
    if model.weights_gb is not None:
        return int(model.weights_gb * 1e9)
    billions = parameters(model)
    return int(billions * 1e9 * bytes_per_parameter(model)) if billions is not None else None


def memory_fraction(model: Model) -> float | None:
    """The share of the machine's memory the engine reserves, from its arguments."""
    args = list(model.args)
    for flag in ("--gpu-memory-utilization", "--mem-fraction-static"):
        if flag in args[:-1]:
            return float(args[args.index(flag) + 1])
    return None


def need_estimate(model: Model, weights: int | None, total: int = SPARK_MEMORY) -> int | None:
    """Bytes of memory the model takes while it runs, before it has been measured."""
    fraction = memory_fraction(model)
    if fraction is not None:
        return max(weights or 0, int(fraction * total))
    return int(weights * 1.2) + OTHER_ROOM if weights is not None else None


@dataclass(frozen=True)
class Fit:
    alone: bool  # on the machine by itself
    beside_utility: bool  # with the utility model running too


def fit(need: int | None, utility_need: int | None, total: int = SPARK_MEMORY) -> Fit | None:
    if need is None:
        return None
    room = total - SYSTEM_RESERVE
    return Fit(need <= room, need + (utility_need or 0) <= room)


@dataclass(frozen=True)
class Sizing:
    """A model's size and need as shown to a person: exact where known, estimated otherwise."""

    weights: int | None
    weights_exact: bool  # the hub's sizes (pulled), not an estimate
    need: int | None
    need_measured: bool  # recorded while it ran, not an estimate
    fits: Fit | None  # on a Spark

    def to_json(self) -> dict[str, object]:
        return {
            "weights_bytes": self.weights,
            "weights_exact": self.weights_exact,
            "need_bytes": self.need,
            "need_measured": self.need_measured,
            "fits_alone": self.fits.alone if self.fits else None,
            "fits_beside_utility": self.fits.beside_utility if self.fits else None,
        }


def sizing(model: Model, pulled_bytes: int | None, measured: int | None, utility_need: int | None) -> Sizing:
    weights = pulled_bytes if pulled_bytes is not None else weights_estimate(model)
    need = measured if measured is not None else need_estimate(model, weights)
    return Sizing(weights, pulled_bytes is not None, need, measured is not None, fit(need, utility_need))
