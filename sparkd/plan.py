"""A rewrite's result: the body to send and the names of what changed; and the refusal of a body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RewriteError(ValueError):
    """The body has the wrong type in a field a rewrite needs."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class Plan:
    """A rewritten body (None: forward the original bytes) and what was changed."""

    document: dict[str, Any]
    applied: list[str] = field(default_factory=list)
    prompt_estimate: int = 0
    wants_exact_count: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.applied)
