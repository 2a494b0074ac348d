"""`sparkd check`: is this machine ready to serve? One verdict per item, each with how to fix it.

Facts are gathered once (I/O, `gather`), then judged by a pure function
(`judge`), so every verdict is tested without the machine it describes. The
link to a peer, for models that span two Sparks, is `sparkd.link_check`.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sparkd.auth import KeyFileError, parse_keys
from sparkd.catalogue import Catalogue
from sparkd.hostfacts import cdi_lists_nvidia_gpu
from sparkd.images import PODMAN_SOCKET, image_present
from sparkd.preflight_items import Item, Verdict

__all__ = ["Facts", "Item", "Verdict", "gather", "judge"]
from sparkd.settings import Settings

QUADLET_PATHS = (
    Path("/usr/libexec/podman/quadlet"),
    Path("/usr/lib/systemd/system-generators/podman-system-generator"),
)
PLACEHOLDER_KEYS = {"63TestTOKEN0REPLACEME"}  # the original stack's default
LOW_DISK = 100 * 2**30
TIKTOKEN_ENV = "TIKTOKEN_ENCODINGS_BASE"


@dataclass
class Facts:
    podman_version: tuple[int, int] | None = None
    podman_api: bool = False  # podman.socket answers (sparkd then asks podman-py, not the CLI)
    quadlet_generator: bool = False
    cdi_gpu: bool = False
    gpu_models: int = 0
    images: dict[str, bool] = field(default_factory=dict)  # image -> present
    models_by_image: dict[str, list[str]] = field(default_factory=dict)
    tiktoken_images: list[str] = field(default_factory=list)
    hf_cache_dir: str = ""
    hf_cache_exists: bool = False
    free_disk: int | None = None
    key_file: str = ""
    key_problem: str | None = None  # None: keys are fine
    port: int = 8009
    port_owner: str = "free"  # "sparkd.socket", "free" or "other"
    socket_enabled: str = "unknown"  # systemctl is-enabled output
    units_missing: list[str] = field(default_factory=list)
    catalogue_warnings: tuple[str, ...] = ()


def judge(facts: Facts) -> list[Item]:
    """A verdict (or one per image) for each thing a Spark needs, in the order `sparkd check` prints."""
    return [item for check in CHECKS for item in check(facts)]


def _podman(facts: Facts) -> list[Item]:
    items: list[Item] = []
    if facts.podman_version is None:
        items.append(Item("podman", Verdict.FAIL, "podman is not installed", "apt install podman"))
    elif facts.podman_version < (4, 4) and not facts.quadlet_generator:
        items.append(
            Item(
                "podman",
                Verdict.FAIL,
                f"podman {_v(facts.podman_version)} has no Quadlet generator",
                "podman 4.4 or newer (DGX OS ships 4.9)",
            )
        )
    else:
        api = (
            "its API socket is enabled"
            if facts.podman_api
            else "no API socket (systemctl enable --now podman.socket)"
        )
        items.append(Item("podman", Verdict.OK, f"podman {_v(facts.podman_version)}; {api}"))
    return items


def _quadlet(facts: Facts) -> list[Item]:
    items: list[Item] = []
    items.append(
        Item("quadlet", Verdict.OK, "the Quadlet generator is installed")
        if facts.quadlet_generator
        else Item(
            "quadlet",
            Verdict.FAIL,
            "no Quadlet generator: model units cannot be generated",
            "podman 4.4 or newer provides /usr/libexec/podman/quadlet",
        )
    )
    return items


def _gpu(facts: Facts) -> list[Item]:
    items: list[Item] = []
    if facts.cdi_gpu:
        items.append(Item("gpu", Verdict.OK, "the NVIDIA CDI spec lists nvidia.com/gpu"))
    elif facts.gpu_models:
        items.append(
            Item(
                "gpu",
                Verdict.FAIL,
                f"no CDI spec lists nvidia.com/gpu; {facts.gpu_models} enabled models need the GPU",
                "install the NVIDIA Container Toolkit, then "
                "`nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (docs/troubleshooting.md)",
            )
        )
    else:
        items.append(Item("gpu", Verdict.OK, "no enabled model needs a GPU"))
    return items


def _images(facts: Facts) -> list[Item]:
    items: list[Item] = []
    for image, present in sorted(facts.images.items()):
        models = ", ".join(facts.models_by_image.get(image, []))
        if present:
            items.append(Item(f"image {image}", Verdict.OK, f"present (for {models})"))
        else:
            items.append(
                Item(
                    f"image {image}",
                    Verdict.FAIL,
                    f"missing (for {models})",
                    "`sparkd images build` for sparkd's own images (custom-docker-containers/), "
                    f"or `podman pull {image}`",
                )
            )
    return items


def _tiktoken(facts: Facts) -> list[Item]:
    items: list[Item] = []
    for image in facts.tiktoken_images:
        present = facts.images.get(image, False)
        items.append(
            Item(
                f"tiktoken encodings in {image}",
                Verdict.OK if present else Verdict.FAIL,
                "baked into the image" if present else "the image that carries them is missing",
                "" if present else "build it: `sparkd images build`",
            )
        )
    return items


def _model_cache(facts: Facts) -> list[Item]:
    items: list[Item] = []
    if not facts.hf_cache_exists:
        items.append(
            Item(
                "model cache",
                Verdict.WARN,
                f"{facts.hf_cache_dir} does not exist yet",
                "`sparkd render` creates it; or set hf_cache_dir in /etc/sparkd/sparkd.toml",
            )
        )
    elif facts.free_disk is not None and facts.free_disk < LOW_DISK:
        items.append(
            Item(
                "model cache",
                Verdict.WARN,
                f"{facts.hf_cache_dir}: {_gib(facts.free_disk)} free",
                "large models need 20-130 GB each",
            )
        )
    else:
        items.append(
            Item("model cache", Verdict.OK, f"{facts.hf_cache_dir}: {_gib(facts.free_disk or 0)} free")
        )
    return items


def _api_keys(facts: Facts) -> list[Item]:
    items: list[Item] = []
    if facts.key_problem is None:
        items.append(Item("api keys", Verdict.OK, f"{facts.key_file} holds usable keys"))
    else:
        items.append(Item("api keys", Verdict.FAIL, facts.key_problem, "`sparkd key create`"))
    return items


def _port(facts: Facts) -> list[Item]:
    items: list[Item] = []
    if facts.port_owner == "sparkd.socket":
        items.append(Item(f"port {facts.port}", Verdict.OK, "owned by sparkd.socket"))
    elif facts.port_owner == "free":
        items.append(
            Item(
                f"port {facts.port}",
                Verdict.WARN,
                "free, but sparkd.socket is not listening on it",
                "systemctl enable --now sparkd.socket",
            )
        )
    else:
        items.append(
            Item(
                f"port {facts.port}",
                Verdict.FAIL,
                "in use by another program",
                f"`ss -ltnp 'sport = :{facts.port}'` shows which; stop it or move sparkd.socket",
            )
        )
    return items


def _socket(facts: Facts) -> list[Item]:
    items: list[Item] = []
    if facts.socket_enabled == "enabled":
        items.append(Item("sparkd.socket", Verdict.OK, "installed and enabled"))
    else:
        items.append(
            Item(
                "sparkd.socket",
                Verdict.FAIL,
                f"sparkd.socket is {facts.socket_enabled}",
                "systemctl enable --now sparkd.socket",
            )
        )
    return items


def _model_units(facts: Facts) -> list[Item]:
    items: list[Item] = []
    if facts.units_missing:
        shown = ", ".join(facts.units_missing[:5]) + (" ..." if len(facts.units_missing) > 5 else "")
        items.append(
            Item(
                "model units",
                Verdict.FAIL,
                f"{len(facts.units_missing)} not loaded: {shown}",
                "sparkd render",
            )
        )
    else:
        items.append(Item("model units", Verdict.OK, "every enabled model's unit is loaded"))
    return items


def _catalogue(facts: Facts) -> list[Item]:
    if not facts.catalogue_warnings:
        return [Item("catalogue", Verdict.OK, "no enabled model needs a disabled one")]
    return [Item("catalogue", Verdict.WARN, warning) for warning in facts.catalogue_warnings]


CHECKS = (
    _catalogue,
    _podman,
    _quadlet,
    _gpu,
    _images,
    _tiktoken,
    _model_cache,
    _api_keys,
    _port,
    _socket,
    _model_units,
)


def _v(version: tuple[int, int] | None) -> str:
    return ".".join(map(str, version)) if version else "?"


def _gib(size: int) -> str:
    return f"{size / 2**30:.0f} GiB"


def _run(*argv: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def gather(settings: Settings, catalogue: Catalogue, port: int) -> Facts:
    facts = Facts(port=port, catalogue_warnings=catalogue.warnings)
    version = _run("podman", "--version")
    if version is not None and version.returncode == 0:
        match = re.search(r"(\d+)\.(\d+)", version.stdout)
        facts.podman_version = (int(match.group(1)), int(match.group(2))) if match else None
    facts.quadlet_generator = any(path.exists() for path in QUADLET_PATHS)
    facts.cdi_gpu = cdi_lists_nvidia_gpu()
    enabled = catalogue.enabled()
    facts.gpu_models = sum(1 for m in enabled if m.gpu)
    for model in enabled:
        facts.models_by_image.setdefault(model.image, []).append(model.id)
        if TIKTOKEN_ENV in model.environment and model.image not in facts.tiktoken_images:
            facts.tiktoken_images.append(model.image)
    facts.podman_api = PODMAN_SOCKET.exists()
    for image in facts.models_by_image:
        facts.images[image] = image_present(image)
    facts.hf_cache_dir = str(settings.hf_cache_dir)
    facts.hf_cache_exists = settings.hf_cache_dir.is_dir()
    existing = settings.hf_cache_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    facts.free_disk = shutil.disk_usage(existing).free
    facts.key_file = str(settings.api_keys_file)
    facts.key_problem = _key_problem(settings.api_keys_file)
    listen = _run("systemctl", "show", "sparkd.socket", "-p", "Listen", "--value")
    if listen is not None and re.search(rf"[:\]]?{port}\b", listen.stdout):
        facts.port_owner = "sparkd.socket"
    else:
        facts.port_owner = "free" if _port_free(port) else "other"
    enabled_state = _run("systemctl", "is-enabled", "sparkd.socket")
    facts.socket_enabled = enabled_state.stdout.strip() or "not installed" if enabled_state else "unknown"
    for model in enabled:
        loaded = _run("systemctl", "show", model.unit_name, "-p", "LoadState", "--value")
        if loaded is None or loaded.stdout.strip() != "loaded":
            facts.units_missing.append(model.unit_name)
    return facts


def _key_problem(path: Path) -> str | None:
    try:
        keys = parse_keys(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        return f"{path} does not exist"
    except PermissionError:
        return f"{path} is not readable by this user (run as root)"
    except KeyFileError as error:
        return str(error)
    if not keys:
        return f"{path} holds no keys"
    if PLACEHOLDER_KEYS & set(keys.values()):
        return f"{path} holds the original stack's public placeholder key"
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True
