"""Idempotent, best-effort source patches for an installed vLLM or transformers.

Each patch names a module (found through the interpreter that will run the
engine), a marker, and text to replace. A patch applies once: a file that
already carries its marker is left alone, and a file whose expected text is
gone (a newer release fixed it, or changed it) is reported and skipped, so
an engine never fails to start because of a patch.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Patch:
    name: str
    module: str  # dotted module whose source file is patched
    marker: str  # a comment line written into the file once patched
    old: str  # a regular expression
    new: str  # its replacement (re.sub syntax)


def module_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin)


def apply(patch: Patch, path: Path | None = None) -> str:
    """'applied', 'already applied', or 'skipped: <why>'."""
    path = path or module_file(patch.module)
    if path is None or not path.is_file():
        return f"skipped: {patch.module} is not installed"
    text = path.read_text(encoding="utf-8")
    if patch.marker in text:
        return "already applied"
    patched, count = re.subn(patch.old, patch.new, text, flags=re.MULTILINE)
    if count == 0:
        return "skipped: the code it fixes is not there (fixed upstream?)"
    path.write_text(f"# {patch.marker}\n{patched}", encoding="utf-8")
    return "applied"


def run(patches: list[Patch]) -> None:
    for patch in patches:
        try:
            outcome = apply(patch)
        except OSError as error:  # a read-only image: the engine runs unpatched
            outcome = f"skipped: {error}"
        print(f"sparkd patch {patch.name}: {outcome}", file=sys.stderr, flush=True)
