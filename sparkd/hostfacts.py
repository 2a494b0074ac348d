"""Reading the facts about this machine that rendering needs (the I/O half of HostFacts)."""

from __future__ import annotations

from pathlib import Path

from sparkd.quadlet import HostFacts
from sparkd.secrets import names as secret_names
from sparkd.settings import Settings

# Where the NVIDIA Container Toolkit writes CDI specs (`nvidia-ctk cdi generate`).
CDI_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))


def cdi_lists_nvidia_gpu(dirs: tuple[Path, ...] = CDI_DIRS) -> bool:
    for directory in dirs:
        if not directory.is_dir():
            continue
        for spec in sorted(directory.iterdir()):
            if spec.suffix in (".yaml", ".yml", ".json"):
                text = spec.read_text(encoding="utf-8", errors="replace")
                if "nvidia.com/gpu" in text:
                    return True
    return False


def detect_host(settings: Settings) -> HostFacts:
    gpu = {"yes": True, "no": False}.get(settings.gpu)
    return HostFacts(
        gpu=cdi_lists_nvidia_gpu() if gpu is None else gpu,
        hf_cache_dir=settings.hf_cache_dir,
        models_dir=settings.models_dir,
        cache_dir=settings.cache_dir,
        data_dir=settings.data_dir,
        state_dir=settings.state_dir,
        secrets_dir=settings.secrets_dir,
        secrets=frozenset(secret_names(settings.secrets_dir)),
        link=settings.link,
    )
