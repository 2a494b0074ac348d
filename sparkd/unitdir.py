"""Writing the rendered Quadlet set into podman's unit directory: the only I/O of rendering.

sparkd owns exactly the files named `sparkd-*.container` there. A write
replaces each changed file atomically (temp file, then rename), removes
sparkd files whose model is gone or disabled, and leaves everything else alone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

OWNED_GLOB = "sparkd-*.container"


@dataclass(frozen=True)
class WriteResult:
    written: list[str]
    unchanged: list[str]
    removed: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def write_unit_set(directory: Path, files: Mapping[str, str]) -> WriteResult:
    directory.mkdir(parents=True, exist_ok=True)
    written, unchanged = [], []
    for name, text in sorted(files.items()):
        target = directory / name
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            unchanged.append(name)
            continue
        _atomic_write(target, text)
        written.append(name)
    removed = []
    for stale in sorted(directory.glob(OWNED_GLOB)):
        if stale.name not in files:
            stale.unlink()
            removed.append(stale.name)
    return WriteResult(written, unchanged, removed)


def _atomic_write(target: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
