"""The model catalogue: what each model is, how its engine runs, how requests to it are patched.

The catalogue is TOML. sparkd ships one set of files (``sparkd/models/*.toml``,
installed under ``/usr/share/sparkd/models``); the operator adds drop-ins in
``/etc/sparkd/models.d/*.toml``. Every file holds ``[models."<id>"]`` tables.
A drop-in table for a shipped id overrides that model's fields: nested tables
(``environment``, ``rewrites``, ``ulimits``) merge key by key, every other
value replaces the shipped one. A table for a new id adds a model.

Loading is strict: unknown keys, wrong types, duplicate ids or aliases all
fail with a ``CatalogueError`` that names the file, the model and the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkd.model import (
    VOLUME_ROOTS,
    ApiFamily,
    Engine,
    Model,
    ModelId,
    Rewrites,
    Role,
    Status,
    ToolSupport,
    VolumeSpec,
)
from sparkd.schema import FieldError, validate

# The model's types live in sparkd.model; most code knows them from here.
__all__ = [
    "SHIPPED_DIR",
    "VOLUME_ROOTS",
    "ApiFamily",
    "Catalogue",
    "CatalogueError",
    "Engine",
    "Model",
    "ModelId",
    "Rewrites",
    "Role",
    "Status",
    "ToolSupport",
    "VolumeSpec",
    "load_catalogue",
]

SHIPPED_DIR = Path(__file__).parent / "models"

# Ports handed to models that do not name one, in id order.
AUTO_PORT_RANGE = range(18500, 19000)


@dataclass(frozen=True)
class CatalogueError(Exception):
    """A catalogue file that cannot be used, with where and why."""

    file: Path | None
    message: str
    model_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = [str(self.file) if self.file else "catalogue"]
        if self.model_id is not None:
            where.append(f"model {self.model_id!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{': '.join(where)}: {self.message}"


@dataclass(frozen=True)
class Catalogue:
    """All models by id, with an index of every name (id or alias) a client may use."""

    models: Mapping[str, Model]
    _by_name: Mapping[str, str] = field(repr=False)
    warnings: tuple[str, ...] = ()  # what is allowed but likely a mistake (a needed model disabled)

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models.values())

    def __len__(self) -> int:
        return len(self.models)

    def resolve(self, name: str) -> Model | None:
        """The model a client means by `name` (an id or an alias), or None."""
        model_id = self._by_name.get(name)
        return self.models[model_id] if model_id is not None else None

    def close_matches(self, name: str, limit: int = 3) -> list[str]:
        enabled = [n for n, mid in self._by_name.items() if self.models[mid].enabled]
        return difflib.get_close_matches(name, enabled, n=limit, cutoff=0.5)

    def enabled(self) -> list[Model]:
        return [m for m in self if m.enabled]

    @property
    def utility(self) -> Model | None:
        return next((m for m in self.enabled() if m.role is Role.UTILITY), None)


def load_catalogue(shipped_dir: Path = SHIPPED_DIR, dropin_dir: Path | None = None) -> Catalogue:
    """Read the shipped files, then the drop-ins, and check the result as a whole."""
    raw: dict[str, dict[str, Any]] = {}
    origin: dict[str, dict[str, Path]] = {}  # model id -> top-level key -> file that set it
    for path in _toml_files(shipped_dir):
        for model_id, table in _model_tables(path):
            if model_id in raw:
                raise CatalogueError(path, f"defined again (first in {origin[model_id]['id']})", model_id)
            raw[model_id] = {"id": model_id, **table}
            origin[model_id] = {key: path for key in raw[model_id]}
    if dropin_dir is not None and dropin_dir.is_dir():
        for path in _toml_files(dropin_dir):
            for model_id, table in _model_tables(path):
                if model_id in raw:
                    raw[model_id] = _merge(raw[model_id], table)
                else:
                    raw[model_id] = {"id": model_id, **table}
                    origin[model_id] = {"id": path}
                origin[model_id].update({key: path for key in table})

    models: dict[str, Model] = {}
    for model_id, data in raw.items():
        try:
            models[model_id] = validate(Model, data)
        except FieldError as error:
            loc = [str(part) for part in error.location]
            top = loc[0] if loc else None
            file = origin[model_id].get(top or "", origin[model_id]["id"])
            raise CatalogueError(file, error.message, model_id, ".".join(loc) or None) from None
    return _index(_assign_ports(models), origin)


def _toml_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.toml")) if directory.is_dir() else []


def _model_tables(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CatalogueError(path, f"not valid TOML: {error}") from None
    # [images."<name>"] tables are image recipes, which `sparkd.recipes` reads.
    unknown = set(document) - {"models", "images"}
    if unknown:
        raise CatalogueError(
            path,
            f'unknown top-level keys {sorted(unknown)}; expected [models."<id>"] or [images."<name>"] tables',
        )
    models = document.get("models", {})
    for model_id, table in models.items():
        if not isinstance(table, dict):
            raise CatalogueError(path, "must be a table", model_id)
        if "id" in table:
            raise CatalogueError(path, "the id is the table's name; remove the `id` key", model_id, "id")
        yield model_id, table


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _assign_ports(models: dict[str, Model]) -> dict[str, Model]:
    taken: dict[int, str] = {}
    for model in models.values():
        if model.port is None:
            continue
        if model.port in taken:
            raise CatalogueError(
                None, f"port {model.port} is also used by {taken[model.port]!r}", model.id, "port"
            )
        taken[model.port] = model.id
    free = (p for p in AUTO_PORT_RANGE if p not in taken)
    assigned = dict(models)
    for model_id in sorted(models):
        if models[model_id].port is None:
            port = next(free, None)
            if port is None:
                raise CatalogueError(None, "no free port left in the automatic range", model_id, "port")
            assigned[model_id] = dataclasses.replace(models[model_id], port=port)
    return assigned


def _index(models: dict[str, Model], origin: Mapping[str, Mapping[str, Path]]) -> Catalogue:
    by_name: dict[str, str] = {model_id: model_id for model_id in models}
    for model in models.values():
        for alias in model.aliases:
            if alias in by_name:
                raise CatalogueError(
                    origin[model.id].get("aliases"),
                    f"alias {alias!r} is already the name of {by_name[alias]!r}",
                    model.id,
                    "aliases",
                )
            by_name[alias] = model.id
    utilities = [m.id for m in models.values() if m.enabled and m.role is Role.UTILITY]
    if len(utilities) > 1:
        raise CatalogueError(None, f"only one enabled utility model is allowed, found {utilities}")
    recommended = [m.id for m in models.values() if m.recommended]
    if len(recommended) > 1:
        raise CatalogueError(None, f"only one model may be `recommended`, found {recommended}")
    return Catalogue(models=dict(sorted(models.items())), _by_name=by_name, warnings=_warnings(models))


def _warnings(models: Mapping[str, Model]) -> tuple[str, ...]:
    found = []
    for model in models.values():
        for needed in model.needs if model.enabled else ():
            other = models.get(needed)
            if other is None or not other.enabled:
                why = "does not exist" if other is None else "is disabled"
                found.append(
                    f"{model.id!r} needs {needed!r} (it reads files {needed!r} downloads, such as "
                    f"its chat template), which {why}: start {needed!r} once, or provide the files"
                )
    return tuple(found)
