"""sparkd's own settings: `/etc/sparkd/sparkd.toml`, every key optional, every path overridable."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from sparkd.catalogue import SHIPPED_DIR
from sparkd.duration import Seconds
from sparkd.schema import STRICT, Bounds, FieldError, validate

DEFAULT_PATH = Path("/etc/sparkd/sparkd.toml")


class SettingsError(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class Settings:
    __pydantic_config__ = STRICT

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
    # One root-only file per secret (`sparkd secret set`), named by model units.
    secrets_dir: Path = Path("/etc/sparkd/secrets")
    # "auto" asks the CDI spec; "yes"/"no" decide for it.
    gpu: Literal["auto", "yes", "no"] = "auto"

    # Serving. systemd's socket owns the port in production; `listen` is only
    # bound when sparkd runs without socket activation (development).
    listen: str = "127.0.0.1:8009"
    # The command line's way in (sparkd-control.socket): no key, the group `sparkd` is the permission.
    control_socket: Path = Path("/run/sparkd/control.sock")
    # name:key lines. Under systemd the key file arrives as a credential
    # ($CREDENTIALS_DIRECTORY/api-keys), which wins over this path.
    api_keys_file: Path = Path("/etc/sparkd/api-keys")
    # Requests waiting for one model at most; beyond it: 429 at once.
    queue_cap: Annotated[int, Bounds(ge=1)] = 100
    # A queued request waits at most its model's start timeout plus this.
    wait_margin: Seconds = 600.0
    # "queue" waits for the GPU; "refuse" answers 429 at once like the original stack.
    busy_policy: Literal["queue", "refuse"] = "queue"
    # sparkd exits after this long with no main model running and no connection
    # open; the socket starts it again on the next request. 0: never.
    quiet_exit: Seconds = 600.0
    # How often an engine's health route is asked while it starts (a refused
    # connection costs next to nothing; a late answer costs the client time).
    health_interval: Seconds = 0.02
    max_body_bytes: Annotated[int, Bounds(ge=1024)] = 64 * 1024 * 1024
    # Audio uploads (/v1/audio/*) stream through a spool file instead: their own bound.
    max_upload_bytes: Annotated[int, Bounds(ge=1024)] = 1024 * 1024 * 1024
    # Refuse (503, with the reason) to start a model whose recorded memory
    # need is more than the machine has available.
    fit_gate: bool = False
    # While a streaming request waits for a cold start, send SSE progress comments.
    loading_progress: bool = True


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path` (default /etc/sparkd/sparkd.toml; a missing file means defaults)."""
    path = path or DEFAULT_PATH
    if not path.is_file():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return validate(Settings, data)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    except FieldError as error:
        field = ".".join(str(p) for p in error.location)
        raise SettingsError(f"{path}: field {field!r}: {error.message}") from None
