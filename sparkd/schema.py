"""Field rules written in plain Python, which pydantic applies when it validates a file.

sparkd's configuration types (settings, catalogue models) are frozen
dataclasses. Socket activation puts the daemon's start-up inside the first
client's wait, and a daemon that starts from its validated cache (see
`sparkd/config.py`) never needs pydantic: importing it and building the
models' validators took a third of the start-up. So the rules for each
field live in its annotation as markers that cost nothing to import, and
pydantic reads them (through the protocols it defines for that:
`__get_pydantic_core_schema__` and annotated-types' grouped metadata) only
when `validate` is called.

    port: Annotated[int, Bounds(ge=1024, le=65535)] | None = None
    id: Annotated[str, Check(_check_id)]
    idle_timeout: Annotated[float, Bounds(ge=0), DURATION] = 1200.0

A dataclass opts in to refusing unknown keys with `__pydantic_config__ =
STRICT`; its `__post_init__` checks fields against each other, and pydantic
reports a ValueError raised there like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

T = TypeVar("T")

# pydantic's ConfigDict is a TypedDict: a plain dict says the same without importing it.
STRICT: dict[str, Any] = {"extra": "forbid"}

# What pydantic says of a key a dataclass does not have, and what a person editing TOML needs to read.
_MESSAGES = {"unexpected_keyword_argument": "not a known field (check its spelling)"}


@dataclass(frozen=True)
class Bounds:
    """Numeric bounds and a minimum length, applied by pydantic like its own `Field(ge=...)`."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_length: int | None = None

    # annotated-types' GroupedMetadata protocol: pydantic expands the marker
    # into the constraints it yields and applies them natively.
    __is_annotated_types_grouped_metadata__ = True

    def __iter__(self) -> Iterator[object]:
        import annotated_types

        if self.ge is not None:
            yield annotated_types.Ge(self.ge)
        if self.gt is not None:
            yield annotated_types.Gt(self.gt)
        if self.le is not None:
            yield annotated_types.Le(self.le)
        if self.min_length is not None:
            yield annotated_types.MinLen(self.min_length)


@dataclass(frozen=True)
class Check:
    """A function run on the value after pydantic has checked its type; a ValueError rejects it."""

    check: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.check, handler(source))


@dataclass(frozen=True)
class Parse:
    """A function that turns what a file says into the field's type before pydantic checks it.

    Put it last in the annotation, so that it runs first: bounds then apply to what it returns.
    """

    parse: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(self.parse, handler(source))


class FieldError(ValueError):
    """The first thing wrong in a document: where (keys and indexes from the top) and what."""

    def __init__(self, location: tuple[str | int, ...], message: str) -> None:
        super().__init__(f"{'.'.join(map(str, location)) or 'document'}: {message}")
        self.location = location
        self.message = message


def validate(kind: type[T], document: Mapping[str, Any]) -> T:
    """`document` (parsed TOML) checked against `kind`'s fields and rules, as an instance of `kind`."""
    from pydantic import ValidationError

    try:
        valid: T = _adapter(kind).validate_python(document)
    except ValidationError as error:
        first = error.errors()[0]
        raise FieldError(tuple(first["loc"]), _MESSAGES.get(first["type"], first["msg"])) from None
    return valid


def to_json(value: object) -> Any:
    """A configuration object as JSON-ready data (enums as their values, paths as strings)."""
    return _adapter(type(value)).dump_python(value, mode="json")


_adapters: dict[type, Any] = {}


def _adapter(kind: type) -> Any:
    # Building a type's validator takes tens of milliseconds: once per process.
    if kind not in _adapters:
        from pydantic import TypeAdapter

        _adapters[kind] = TypeAdapter(kind)
    return _adapters[kind]
