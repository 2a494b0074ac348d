"""Engine profiles: how long each simulated model takes to start, stop and answer, from a TOML file
that says where every number comes from (bench/schedule/profiles/)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from sparkd.catalogue import Role

PROFILES = Path(__file__).parent / "profiles"


@dataclass(frozen=True)
class EngineProfile:
    start: float  # seconds from StartUnit to healthy
    stop: float  # seconds from StopUnit to inactive
    service: float  # seconds one request takes once granted
    role: Role = Role.MAIN
    idle_timeout: float = 1200.0
    start_timeout: float = 900.0  # the catalogue's: with wait_margin, a waiter's deadline
    source: str = ""


def load_profile(name: str) -> dict[str, EngineProfile]:
    """profiles/<name>.toml as each model's profile; every model must say where its numbers come from."""
    path = PROFILES / f"{name}.toml"
    models = tomllib.loads(path.read_text())["models"]
    profiles = {}
    for model, fields in models.items():
        if not fields.get("source"):
            raise ValueError(f"{path}: models.{model} does not say where its numbers come from (source)")
        profiles[model] = EngineProfile(**{**fields, "role": Role(fields.get("role", "main"))})
    return profiles
