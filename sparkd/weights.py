"""Where a model's weights live on this machine, and whether `sparkd pull` has fetched them.

A model whose `weights` is a hub repository id (`org/name`) reads them from
a Hugging Face cache inside its container: vLLM's `--download-dir`, else
`HF_HUB_CACHE`, else `$HF_HOME/hub`, else root's default. That directory
is a volume, so the host side is known: `sparkd pull` fills it in the layout
the engines read (`models--org--name/{blobs,snapshots,refs}`).

A complete pull leaves a record in the state directory (`weights/<id>.json`).
A model counts as pulled while its record and its snapshot both exist; its
unit then runs the engine offline on the snapshot's own directory, so a
start never includes a download and no engine has to map a repository id
to its cache (vLLM offline looks only in the default cache, whatever its
`--download-dir`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath

from sparkd import quadlet
from sparkd.model import Model
from sparkd.quadlet import HostFacts

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
DEFAULT_CONTAINER_CACHE = "/root/.cache/huggingface/hub"
RECORDS = "weights"  # under the state directory


def hub_repo(model: Model) -> str | None:
    """The hub repository the model's weights come from; None for a path inside the image."""
    weights = model.weights
    return weights if weights and _HUB_ID.fullmatch(weights) else None


def container_cache(model: Model) -> str:
    """The Hugging Face cache directory the model's engine reads weights from, inside its container."""
    args = list(model.args)
    if "--download-dir" in args[:-1]:
        return args[args.index("--download-dir") + 1]
    return default_cache(model)


def default_cache(model: Model) -> str:
    """The cache the Hugging Face libraries use inside the container."""
    env = dict(model.environment)
    if env.get("HF_HUB_CACHE"):
        return env["HF_HUB_CACHE"]
    if env.get("HF_HOME"):
        return f"{env['HF_HOME'].rstrip('/')}/hub"
    return DEFAULT_CONTAINER_CACHE


def host_cache(model: Model, host: HostFacts) -> Path | None:
    """The host directory behind the model's weights cache (the volume that holds it), or None."""
    return host_path(model, container_cache(model), host)


def host_path(model: Model, container_path: str, host: HostFacts) -> Path | None:
    """The host path behind a path inside the model's container (the deepest volume holding it)."""
    inside = PurePosixPath(container_path)
    best: tuple[int, Path] | None = None
    for volume in model.volumes:
        source, target = volume.split(":")[:2]
        target_path = PurePosixPath(target)
        if inside != target_path and target_path not in inside.parents:
            continue
        depth = len(target_path.parts)
        if best is None or depth > best[0]:
            best = (depth, Path(quadlet.host_path(source, host)) / inside.relative_to(target_path))
    return best[1] if best else None


def repo_folder(repo: str) -> str:
    """The cache's folder for a model repository (huggingface_hub's naming)."""
    return "models--" + repo.replace("/", "--")


@dataclass(frozen=True)
class Pulled:
    """What a complete `sparkd pull` fetched."""

    repo: str
    revision: str
    commit: str
    bytes: int
    files: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Pulled:
        data = json.loads(text)
        return cls(
            str(data["repo"]),
            str(data["revision"]),
            str(data["commit"]),
            int(data["bytes"]),
            int(data["files"]),
        )


def record_path(state_dir: Path, model_id: str) -> Path:
    return state_dir / RECORDS / f"{model_id}.json"


def read_record(state_dir: Path, model_id: str) -> Pulled | None:
    try:
        return Pulled.from_json(record_path(state_dir, model_id).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pulled(model: Model, host: HostFacts) -> Pulled | None:
    """The model's record, while it names its repository and its snapshot is still on disk."""
    repo = hub_repo(model)
    cache = host_cache(model, host)
    record = read_record(host.state_dir, model.id)
    if repo is None or cache is None or record is None or record.repo != repo:
        return None
    snapshot = cache / repo_folder(repo) / "snapshots" / record.commit
    return record if snapshot.is_dir() else None


def snapshot_inside(model: Model, record: Pulled) -> str:
    """The pulled snapshot's directory as the model's container sees it: what its engine loads."""
    return f"{container_cache(model).rstrip('/')}/{repo_folder(record.repo)}/snapshots/{record.commit}"


def needs_pull(model: Model, host: HostFacts) -> bool:
    """Whether the model's weights are a hub download that has not been pulled (complete)."""
    return hub_repo(model) is not None and pulled(model, host) is None


def bytes_on_disk(model: Model, host: HostFacts) -> int:
    """What the model's repository folder holds, partial downloads included."""
    repo, cache = hub_repo(model), host_cache(model, host)
    if repo is None or cache is None:
        return 0
    blobs = cache / repo_folder(repo) / "blobs"
    try:
        return sum(f.stat().st_size for f in blobs.iterdir() if f.is_file())
    except OSError:
        return 0


def with_pulled(host: HostFacts, models: Iterable[Model]) -> HostFacts:
    """The host facts, knowing which models' weights are pulled: their units run offline, on the snapshot."""
    found = {}
    for model in models:
        record = pulled(model, host)
        if record is not None:
            found[model.id] = snapshot_inside(model, record)
    return replace(host, pulled=found)


def write_record(state_dir: Path, model_id: str, record: Pulled) -> None:
    path = record_path(state_dir, model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(record.to_json())
    temporary.replace(path)


def forget_record(state_dir: Path, model_id: str) -> None:
    record_path(state_dir, model_id).unlink(missing_ok=True)
