"""Image recipes declared in catalogue drop-ins, for engine images sparkd does not ship.

A drop-in in models.d may hold, beside its models, any number of

    [images."my-vllm"]
    containerfile = "my-vllm/Containerfile"  # relative to the drop-in's directory
    tag = "localhost/my-vllm:1"              # what a model's `image` names
    base = "vllm-node"                       # a recipe (built first), or an image reference
    context = "my-vllm"                      # default: the Containerfile's directory
    build_args = { VLLM_REF = "v0.11.0" }

The base reaches the Containerfile as the build argument BASE_IMAGE (`ARG
BASE_IMAGE` then `FROM ${BASE_IMAGE}`), so a shipped image can be extended
without copying its recipe. A drop-in recipe of a shipped name replaces it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from sparkd.images import SHIPPED, Recipe
from sparkd.schema import STRICT, Check, FieldError, validate

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("a recipe name is 1-80 lower-case letters, digits, '.', '_' or '-'")
    return value


def _check_tag(value: str) -> str:
    if not value or any(c.isspace() for c in value) or value != value.lower():
        raise ValueError(f"{value!r} is not an image reference (lower case, no spaces)")
    return value


@dataclass(frozen=True)
class DeclaredRecipe:
    """One `[images."<name>"]` table as the file says it."""

    __pydantic_config__ = STRICT

    # The recipe's name, from its table's: what `sparkd images build NAME` takes.
    name: Annotated[str, Check(_check_name)]
    # Its Containerfile, relative to the drop-in's directory (or absolute).
    containerfile: str
    # The image it makes: what a model's `image` names.
    tag: Annotated[str, Check(_check_tag)]
    # What it is built on: a recipe (by name or tag; built first when missing) or any image
    # reference (pulled by podman). The Containerfile reads it as the build argument BASE_IMAGE.
    base: str | None = None
    # The build context, relative to the drop-in's directory; the Containerfile's directory if unset.
    context: str | None = None
    # More build arguments, as a table of strings.
    build_args: dict[str, str] = field(default_factory=dict)


class RecipeError(Exception):
    """A declared recipe that cannot be used: the file, the recipe and why."""

    def __init__(self, file: Path, name: str | None, message: str) -> None:
        where = f"{file}: image {name!r}" if name else str(file)
        super().__init__(f"{where}: {message}")


def load_recipes(dropin_dir: Path | None, shipped: Mapping[str, Recipe] = SHIPPED) -> dict[str, Recipe]:
    """The shipped recipes with the drop-ins' declared ones added (or replacing them), by name."""
    declared: dict[str, tuple[Path, DeclaredRecipe]] = {}
    for path in sorted(dropin_dir.glob("*.toml")) if dropin_dir and dropin_dir.is_dir() else []:
        for name, table in _image_tables(path):
            try:
                recipe = validate(DeclaredRecipe, {"name": name, **table})
            except FieldError as error:
                raise RecipeError(path, name, str(error)) from None
            declared[name] = (path, recipe)
    recipes = dict(shipped)
    recipes.update({name: _resolve(path, d) for name, (path, d) in declared.items()})
    for name, (path, d) in declared.items():
        if d.base is not None:
            recipes[name] = _on_base(recipes[name], d.base, recipes, path)
    return recipes


def _on_base(recipe: Recipe, base: str, recipes: Mapping[str, Recipe], path: Path) -> Recipe:
    """The recipe built on `base`: a recipe by name or by tag is built first; any other
    reference is podman's to pull. Either way the Containerfile reads it as BASE_IMAGE."""
    by_tag = {r.tag: r for r in recipes.values()}
    needs: tuple[str, ...]
    if base in recipes:
        needs, image = (base,), recipes[base].tag
    elif base in by_tag:
        needs, image = (by_tag[base].name,), base
    elif _is_reference(base):
        needs, image = (), base
    else:
        raise RecipeError(path, recipe.name, f"base {base!r} is neither a recipe nor an image reference")
    args = {"BASE_IMAGE": image, **dict(recipe.build_args)}
    return replace(recipe, needs=needs, build_args=tuple(sorted(args.items())))


def _image_tables(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []  # the catalogue's loader reports the file
    tables = document.get("images", {})
    if not isinstance(tables, dict):
        raise RecipeError(path, None, '[images] holds [images."<name>"] tables')
    found = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise RecipeError(path, name, "must be a table")
        if "name" in table:
            raise RecipeError(path, name, "the name is the table's name; remove the `name` key")
        found.append((name, table))
    return found


def _resolve(path: Path, declared: DeclaredRecipe) -> Recipe:
    here = path.parent
    containerfile = (here / declared.containerfile).resolve()
    if not containerfile.is_file():
        raise RecipeError(path, declared.name, f"containerfile {containerfile} does not exist")
    context = (here / declared.context).resolve() if declared.context else containerfile.parent
    return Recipe(
        declared.name,
        declared.tag,
        build_args=tuple(sorted(declared.build_args.items())),
        containerfile=containerfile,
        context=context,
        declared_in=path,
    )


def _is_reference(base: str) -> bool:
    """An image reference has a registry path or a tag; a recipe name has neither."""
    return "/" in base or ":" in base
