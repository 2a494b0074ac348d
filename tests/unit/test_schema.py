"""Field rules as plain markers on dataclasses, applied by pydantic only when a document is validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pytest

from sparkd.duration import DURATION
from sparkd.schema import STRICT, Bounds, Check, FieldError, to_json, validate


def _even(value: int) -> int:
    if value % 2:
        raise ValueError("must be even")
    return value


@dataclass(frozen=True, kw_only=True)
class Inner:
    __pydantic_config__ = STRICT

    size: Annotated[int, Bounds(ge=1)] = 1


@dataclass(frozen=True, kw_only=True)
class Outer:
    __pydantic_config__ = STRICT

    name: Annotated[str, Bounds(min_length=1)]
    pairs: tuple[Annotated[int, Check(_even)], ...] = ()
    timeout: Annotated[float, Bounds(gt=0), DURATION] = 30.0
    inner: Inner = Inner()

    def __post_init__(self) -> None:
        if self.name == "forbidden":
            raise ValueError("that name is taken")


def error_of(document: dict[str, object]) -> FieldError:
    with pytest.raises(FieldError) as caught:
        validate(Outer, document)
    return caught.value


def test_a_valid_document_becomes_the_dataclass_with_its_defaults() -> None:
    outer = validate(Outer, {"name": "x", "pairs": [2, 4], "timeout": "2m", "inner": {"size": 3}})
    assert outer == Outer(name="x", pairs=(2, 4), timeout=120.0, inner=Inner(size=3))


def test_a_duration_is_parsed_before_its_bounds_apply() -> None:
    assert "greater than 0" in error_of({"name": "x", "timeout": "0s"}).message


def test_a_check_names_the_element_it_rejects() -> None:
    error = error_of({"name": "x", "pairs": [2, 3]})
    assert (error.location, error.message) == (("pairs", 1), "Value error, must be even")


def test_unknown_keys_are_refused_at_any_depth() -> None:
    error = error_of({"name": "x", "inner": {"sise": 3}})
    assert (error.location, error.message) == (("inner", "sise"), "not a known field (check its spelling)")


def test_rules_between_fields_are_reported_like_a_fields() -> None:
    error = error_of({"name": "forbidden"})
    assert (error.location, error.message) == ((), "Value error, that name is taken")


def test_bounds_apply_inside_nested_dataclasses() -> None:
    assert error_of({"name": "x", "inner": {"size": 0}}).location == ("inner", "size")


def test_json_is_the_documents_own_spelling() -> None:
    assert to_json(Outer(name="x", pairs=(2,))) == {
        "name": "x",
        "pairs": [2],
        "timeout": 30.0,
        "inner": {"size": 1},
    }
