"""Sizes and memory needs before a model ever ran: estimated for every shipped model, measured later."""

from __future__ import annotations

import pytest

from sparkd.catalogue import Role, load_catalogue
from sparkd.model import Model
from sparkd.schema import validate
from sparkd.sizing import SPARK_MEMORY, SYSTEM_RESERVE, Fit, fit, need_estimate, sizing, weights_estimate

CATALOGUE = load_catalogue()
HUB_MODELS = [m for m in CATALOGUE if m.weights and not m.weights.startswith("/")]


def model(**fields: object) -> Model:
    return validate(Model, {"id": "m", "image": "x", "context_length": 4096, "port": 18100, **fields})


@pytest.mark.parametrize("shipped", HUB_MODELS, ids=lambda m: m.id)
def test_every_shipped_model_has_a_size_and_a_need_before_it_ever_ran(shipped: Model) -> None:
    weights = weights_estimate(shipped)
    need = need_estimate(shipped, weights)
    assert weights is not None and 0.5e9 < weights < 130e9
    assert need is not None and weights <= need
    # The original stack ran each of them on a Spark: the estimate must agree that they fit.
    assert need <= SPARK_MEMORY - SYSTEM_RESERVE


@pytest.mark.parametrize(
    ("fields", "gb"),
    [
        ({"id": "big-120b", "weights": "org/Big-120B-MXFP4"}, 67.2),  # 4-bit with its scales
        ({"id": "q-35b-a3b-fp8", "weights": "Qwen/Qwen3.6-35B-A3B-FP8"}, 35.0),  # total, not active
        ({"id": "small", "weights": "Qwen/Qwen3.5-0.8B"}, 1.6),  # BF16
        ({"id": "named", "weights": "openai/gpt-oss-20b", "weights_gb": 13.8}, 13.8),  # the catalogue's word
        ({"id": "nameless", "weights": "org/Model"}, None),
    ],
)
def test_the_size_comes_from_the_catalogue_or_the_name(fields: dict[str, object], gb: float | None) -> None:
    size = weights_estimate(model(**fields))
    assert (round(size / 1e9, 1) if size is not None else None) == gb


def test_vllm_needs_its_memory_fraction_of_the_machine_and_never_less_than_its_weights() -> None:
    reserved = model(weights="org/X-7B", args=["--gpu-memory-utilization", "0.5"])
    assert need_estimate(reserved, 14_000_000_000) == 64_000_000_000
    assert need_estimate(reserved, 70_000_000_000) == 70_000_000_000
    other = model(engine="generic", command=["x"])
    assert need_estimate(other, 10_000_000_000) == 12_000_000_000 + 2 * 2**30
    assert need_estimate(other, None) is None


def test_what_was_measured_and_pulled_replaces_the_estimates() -> None:
    m = model(weights="org/X-7B", args=["--gpu-memory-utilization", "0.5"])
    guessed = sizing(m, None, None, None)
    assert (guessed.weights, guessed.weights_exact, guessed.need, guessed.need_measured) == (
        14_000_000_000,
        False,
        64_000_000_000,
        False,
    )
    known = sizing(m, 15_200_000_000, 58_000_000_000, None)
    assert (known.weights, known.weights_exact, known.need, known.need_measured) == (
        15_200_000_000,
        True,
        58_000_000_000,
        True,
    )


def test_fitting_beside_the_utility_counts_both() -> None:
    room = SPARK_MEMORY - SYSTEM_RESERVE
    assert fit(room - 1, 2) == Fit(alone=True, beside_utility=False)
    assert fit(room - 2, 2) == Fit(alone=True, beside_utility=True)
    assert fit(room + 1, None) == Fit(alone=False, beside_utility=False)
    assert fit(None, None) is None


def test_the_shipped_utility_fits_beside_every_validated_main_model() -> None:
    utility = CATALOGUE.utility
    assert utility is not None
    utility_need = sizing(utility, None, None, None).need
    for m in CATALOGUE.enabled():
        if m.role is Role.MAIN and m.status.value == "validated" and m in HUB_MODELS:
            assert sizing(m, None, None, utility_need).fits.beside_utility, m.id  # type: ignore[union-attr]
