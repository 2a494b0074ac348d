"""sparkd's own settings: `/etc/sparkd/sparkd.toml`, every key optional, every path overridable."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from sparkd.catalogue import SHIPPED_DIR
from sparkd.duration import Seconds, SecondsOrAuto
from sparkd.schema import STRICT, Bounds, Check, FieldError, validate

DEFAULT_PATH = Path("/etc/sparkd/sparkd.toml")


class SettingsError(Exception):
    pass


def _check_ip(value: str) -> str:
    ipaddress.ip_address(value)  # its ValueError says what is wrong
    return value


@dataclass(frozen=True)
class Peer:
    """Another sparkd on the LAN whose models this one serves too, through one endpoint."""

    __pydantic_config__ = STRICT

    name: Annotated[str, Bounds(min_length=1)]
    # Its address, e.g. "http://spark-b.lan:8009".
    url: Annotated[str, Bounds(min_length=1)]
    # The secret (`sparkd secret set`) holding an API key of the peer's.
    key_secret: str = "PEER_KEY"


@dataclass(frozen=True)
class Link:
    """The cable between two Sparks (the ConnectX ports), over which a `nodes = 2` model runs."""

    __pydantic_config__ = STRICT

    # The [[peers]] entry of the Spark at the other end.
    peer: Annotated[str, Bounds(min_length=1)]
    # This Spark's address on the link, and the other one's (e.g. "192.168.100.10", ".11").
    address: Annotated[str, Check(_check_ip)]
    peer_address: Annotated[str, Check(_check_ip)]
    # The link's network interface here: NCCL and Gloo are pinned to it, or they may pick the
    # 1 GbE port and run a hundred times slower without a word.
    interface: Annotated[str, Bounds(min_length=1)]
    # Ray's port on whichever Spark holds the head.
    ray_port: Annotated[int, Bounds(ge=1024, le=65535)] = 6379


@dataclass(frozen=True, kw_only=True)
class Settings:
    __pydantic_config__ = STRICT

    # The shipped catalogue (the package's `models/`; /usr/share/sparkd/models when packaged).
    catalogue_dir: Path = SHIPPED_DIR
    # Drop-in catalogue files (`*.toml`): tables merge key by key, values replace.
    models_d: Path = Path("/etc/sparkd/models.d")
    # Where `sparkd render` writes sparkd-*.container (rootful Quadlet's admin directory).
    quadlet_dir: Path = Path("/etc/containers/systemd")
    # `{state}` in volumes; sparkd's own state (memory needs, the configuration cache, the demo).
    state_dir: Path = Path("/var/lib/sparkd")
    # `{hf_cache}` in volumes: the Hugging Face cache.
    hf_cache_dir: Path = Path("/var/lib/sparkd/cache/huggingface")
    # `{models}` in volumes: model weights.
    models_dir: Path = Path("/var/lib/sparkd/models")
    # `{cache}` in volumes: FlashInfer and torch caches.
    cache_dir: Path = Path("/var/lib/sparkd/cache")
    # `{data}` in volumes: runtime patches, plugins, the images' build context.
    data_dir: Path = Path("/usr/share/sparkd")
    # One root-only file per secret (`sparkd secret set`), named by model units.
    secrets_dir: Path = Path("/etc/sparkd/secrets")
    # "auto" asks the CDI spec for nvidia.com/gpu; "yes" and "no" decide for it.
    gpu: Literal["auto", "yes", "no"] = "auto"
    # Bound only when sparkd runs without socket activation (by hand); sparkd.socket owns the port.
    listen: str = "127.0.0.1:8009"
    # The command line's way in (sparkd-control.socket): no key, the group `sparkd` is the permission.
    control_socket: Path = Path("/run/sparkd/control.sock")
    # Where a running `sparkd pull` keeps its progress, for `sparkd status` and waiting clients.
    pulls_dir: Path = Path("/run/sparkd/pulls")
    # `name:key` lines. Read directly whenever sparkd can (so a reload picks up edits); the
    # systemd credential `api-keys` stands in when the sandbox cannot read it.
    api_keys_file: Path = Path("/etc/sparkd/api-keys")
    # Requests waiting for one model at most; more get 429 at once.
    queue_cap: Annotated[int, Bounds(ge=1)] = 100
    # A queued request waits at most its model's start timeout plus this (then 503).
    wait_margin: Seconds = 600.0
    # While requests for another model wait, keep serving the tenant's own new requests for up to
    # this long if they keep coming (an agent's burst), so one swap serves a whole burst. "auto":
    # as long as swapping there and back would take (both models' measured starts). 0: swap as soon
    # as the tenant drains. Never so long that the waiter would pass its deadline. docs/scheduling.md
    # compares them on a day of agent traffic.
    swap_hold: SecondsOrAuto = "auto"
    # "queue" waits for the GPU; "refuse" answers 429 with X-Busy-Model at once, like the original stack.
    busy_policy: Literal["queue", "refuse"] = "queue"
    # Exit after this long with no main model and no connection; the socket starts sparkd again. 0: never.
    quiet_exit: Seconds = 600.0
    # How often a starting engine's health route is asked (a refused connection costs next to nothing).
    health_interval: Seconds = 0.02
    # Larger request bodies get 413.
    max_body_bytes: Annotated[int, Bounds(ge=1024)] = 64 * 1024 * 1024
    # Audio uploads (/v1/audio/*), spooled to disk as they arrive; larger ones get 413.
    max_upload_bytes: Annotated[int, Bounds(ge=1024)] = 1024 * 1024 * 1024
    # Refuse (503, with the numbers) to start a model that needed more memory before than is available.
    fit_gate: bool = False
    # While a streaming request waits for a start, send SSE progress comments once a second.
    loading_progress: bool = True
    # Drop clean page cache before a start that fits the available memory but not the free memory
    # (vLLM's start check counts free memory, and on unified memory the page cache holds the rest).
    # "auto": on GPU hosts.
    drop_page_cache: Literal["auto", "yes", "no"] = "auto"
    # A request for a model whose weights were never pulled: true downloads them first (`sparkd
    # pull`, as a unit of its own, progress shown to waiting clients); false answers 409 at once.
    pull_on_demand: bool = True
    # The Hugging Face hub `sparkd pull` downloads from (a mirror's address works too).
    hub_endpoint: str = "https://huggingface.co"
    # Web pages (origins, exactly as browsers send them, e.g. "http://openwebui.lan:3000") that
    # may call the API, besides localhost and VS Code's webviews. Each still needs a key.
    cors_origins: tuple[str, ...] = ()
    # Peer sparkds (`[[peers]]` tables: name, url, key_secret): a model only a peer serves is
    # listed by /v1/models and answered through this sparkd.
    peers: tuple[Peer, ...] = ()
    # The link to one peer for models that span both Sparks (`[link]`: peer, address,
    # peer_address, interface, ray_port); `sparkd check` verifies it. docs/two-sparks.md.
    link: Link | None = None

    def __post_init__(self) -> None:
        if self.link is not None and self.link.peer not in {p.name for p in self.peers}:
            raise ValueError(f"link.peer {self.link.peer!r} is none of the [[peers]]")


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
        where = f"field {field!r}: " if field else ""  # a rule between fields names them itself
        raise SettingsError(f"{path}: {where}{error.message}") from None
