"""What `sparkd check` says of one thing: a verdict, the detail, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Item:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""
