"""sparkd's own settings: `/etc/sparkd/sparkd.toml`, every key optional, every path overridable."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from sparkd.catalogue import SHIPPED_DIR

DEFAULT_PATH = Path("/etc/sparkd/sparkd.toml")


class SettingsError(Exception):
    pass


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where the catalogue comes from.
    catalogue_dir: Path = SHIPPED_DIR
    models_d: Path = Path("/etc/sparkd/models.d")
    # Where rendered units go (rootful Quadlet's admin directory).
    quadlet_dir: Path = Path("/etc/containers/systemd")
    # Host directories that model volumes refer to as {hf_cache}, {models}, ...
    state_dir: Path = Path("/var/lib/sparkd")
    hf_cache_dir: Path = Path("/var/lib/sparkd/cache/huggingface")
    models_dir: Path = Path("/var/lib/sparkd/models")
    cache_dir: Path = Path("/var/lib/sparkd/cache")
    data_dir: Path = Path("/usr/share/sparkd")
    # "auto" asks the CDI spec; "yes"/"no" decide for it.
    gpu: Literal["auto", "yes", "no"] = "auto"


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path` (default /etc/sparkd/sparkd.toml; a missing file means defaults)."""
    path = path or DEFAULT_PATH
    if not path.is_file():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Settings.model_validate(data)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"{path}: field {field!r}: {first['msg']}") from None
