#!/usr/bin/env python3
"""Write the settings, catalogue-field and image-recipe references in docs/configuration.md from the code.

scripts/reference-doc.py [--check]

Each field's description is the comment right above it in sparkd/settings.py
sparkd/model.py or sparkd/recipes.py, and its default the dataclass's own; a unit test fails
when the document and the code differ.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from sparkd import model, recipes, settings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
BLOCKS = {
    "settings": "<!-- settings: written by scripts/reference-doc.py -->",
    "fields": "<!-- fields -->",
    "recipes": "<!-- recipes -->",
}
END = "<!-- end -->"


def comments(source: Path, cls: str) -> dict[str, str]:
    """Each field of `cls` with the comment lines right above it (and its own trailing comment)."""
    text = source.read_text()
    start = re.search(rf"^class {cls}[:(]", text, flags=re.M)
    assert start is not None, cls
    body = text[start.start() :]
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in body.splitlines()[1:]:
        stripped = line.strip()
        if line and not line.startswith(" "):
            break  # the class ended
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        field = re.match(r"^    (\w+): ", line)
        if field:
            trailing = line.split("  # ", 1)[1] if "  # " in line else ""
            found[field.group(1)] = " ".join([*pending, trailing]).strip()
        pending = []
    return found


def shown(value: Any) -> str:
    if isinstance(value, Enum):
        return f'`"{value.value}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple | list | dict) and not value:
        return "empty"
    if value is None:
        return "none"
    return f"`{value}`"


def default_of(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        return shown(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return shown(field.default_factory())
    return "required"


def table(cls: type, source: Path, prefix: str = "", skip: tuple[str, ...] = ()) -> list[str]:
    described = comments(source, cls.__name__)
    rows = []
    for field in dataclasses.fields(cls):
        if field.name.startswith("_") or field.name in skip:
            continue
        description = described.get(field.name, "").replace("|", "\\|")
        if field.name == "catalogue_dir":
            default = "the package's `models/`"  # a path inside wherever the package is installed
        elif field.name == "rewrites":
            default = "see below"
        else:
            default = default_of(field)
        rows.append(f"| `{prefix}{field.name}` | {default} | {description} |")
    return ["| Key | Default | Meaning |", "|---|---|---|", *rows]


def blocks() -> dict[str, str]:
    settings_table = table(settings.Settings, ROOT / "sparkd" / "settings.py")
    fields = [
        *table(model.Model, ROOT / "sparkd" / "model.py"),
        "",
        "Under `[models.<id>.rewrites]`:",
        "",
        *table(model.Rewrites, ROOT / "sparkd" / "model.py"),
    ]
    recipe_table = table(recipes.DeclaredRecipe, ROOT / "sparkd" / "recipes.py", skip=("name",))
    return {
        "settings": "\n".join(settings_table),
        "fields": "\n".join(fields),
        "recipes": "\n".join(recipe_table),
    }


def render(text: str) -> str:
    for name, body in blocks().items():
        start = BLOCKS[name]
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(END)
        text = f"{head}{start}\n{body}\n{END}{tail}"
    return text


def main(argv: list[str]) -> int:
    current = DOC.read_text()
    wanted = render(current)
    if "--check" in argv:
        return 0 if wanted == current else 1
    DOC.write_text(wanted)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
