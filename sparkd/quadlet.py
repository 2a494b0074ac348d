"""Render a catalogue model as a podman Quadlet `.container` unit: a pure function.

Host facts (GPU present, directories) come in as values, so the same model
renders the same text everywhere and golden files can pin it. Only keys that
podman 4.9's Quadlet accepts are written (DGX OS is Ubuntu 24.04): anything
newer goes through `PodmanArgs=` or the `[Service]` section, because an
unknown key makes 4.9 reject the whole unit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sparkd import names, two_node
from sparkd.catalogue import Engine, Model
from sparkd.duration import format_seconds
from sparkd.settings import Link

ENGINE_HOST = "127.0.0.1"  # engines' admin routes are unauthenticated: loopback only
MODEL_LABEL = "io.sparkd.model"


@dataclass(frozen=True)
class HostFacts:
    """What rendering needs to know about the machine the units will run on."""

    gpu: bool
    hf_cache_dir: Path = Path("/var/lib/sparkd/cache/huggingface")
    models_dir: Path = Path("/var/lib/sparkd/models")
    cache_dir: Path = Path("/var/lib/sparkd/cache")
    data_dir: Path = Path("/usr/share/sparkd")
    state_dir: Path = Path("/var/lib/sparkd")
    secrets_dir: Path = Path("/etc/sparkd/secrets")
    secrets: frozenset[str] = frozenset()  # the names stored there (never their values)
    # Models whose weights `sparkd pull` fetched, with the snapshot directory their engine loads
    # (inside the container): they run offline.
    pulled: Mapping[str, str] = field(default_factory=dict)
    # The link to the other Spark, for models that span both (`nodes = 2`).
    link: Link | None = None

    def volume_roots(self) -> dict[str, Path]:
        return {
            "{hf_cache}": self.hf_cache_dir,
            "{models}": self.models_dir,
            "{cache}": self.cache_dir,
            "{data}": self.data_dir,
            "{state}": self.state_dir,
        }


@dataclass
class UnitFile:
    """Ordered sections of ordered, repeatable keys, rendered deterministically."""

    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)

    def add(self, section: str, key: str, value: str) -> None:
        if "\n" in value:
            raise ValueError(f"{section}.{key}: a unit file value cannot span lines")
        self.sections.setdefault(section, []).append((key, value))

    def comment(self, section: str, text: str) -> None:
        self.sections.setdefault(section, [])
        self.comments.setdefault(section, []).append(text)

    def render(self) -> str:
        blocks = []
        for name, entries in self.sections.items():
            lines = [f"# {text}" for text in self.comments.get(name, [])]
            lines.append(f"[{name}]")
            lines.extend(f"{key}={value}" for key, value in entries)
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) + "\n"


_BARE = re.compile(r"[A-Za-z0-9_@+=:,./{}\[\]-]+")


def quote_word(word: str) -> str:
    """One argument as Quadlet's `Exec=`/`Environment=` splitting reads it back.

    Quadlet copies words into `ExecStart=`, where systemd expands `%` specifiers
    and `$` variables: both are doubled so they reach the engine as written.
    """
    escaped = word.replace("%", "%%").replace("$", "$$")
    if escaped and _BARE.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def engine_command(model: Model, weights_path: str | None = None) -> list[str]:
    """The argv the engine runs with inside its container (after any entrypoint); `weights_path`:
    a local directory that replaces the hub id (pulled weights)."""
    port = str(model.engine_port)
    if model.engine is Engine.GENERIC:
        values = {"host": ENGINE_HOST, "port": port, "model_id": model.id}
        return [word.format_map(values) for word in model.command]
    assert model.weights is not None  # the schema requires weights for vllm and sglang
    source = weights_path or model.weights
    if model.engine is Engine.SGLANG:
        launcher = list(model.launcher or ("python3", "-m", "sglang.launch_server"))
        return [
            *launcher,
            *("--model-path", source, "--served-model-name", model.id),
            *("--host", ENGINE_HOST, "--port", port, "--context-length", str(model.context_length)),
            *model.args,
        ]
    launcher = list(model.launcher or ("vllm", "serve"))
    # `vllm serve` takes the model as its first word; the server modules want --model.
    weights = [source] if launcher[-1] == "serve" else ["--model", source]
    return (
        launcher
        + weights
        + [
            "--served-model-name",
            model.id,
            "--host",
            ENGINE_HOST,
            "--port",
            port,
            "--max-model-len",
            str(model.context_length),
            *model.args,
        ]
    )


def health_command(model: Model) -> str:
    """A probe of the engine's health route that needs only Python in the image."""
    url = f"http://{ENGINE_HOST}:{model.engine_port}{model.health_path}"
    # Single quotes for the container's /bin/sh; Quadlet passes this value on unchanged.
    return f"python3 -c 'import urllib.request as u; u.urlopen(\"{url}\", timeout=5)'"


def host_side(model: Model, container_path: str, host: HostFacts) -> str | None:
    """Where a path inside the model's container lives on the host, through its volumes; None if nowhere."""
    best: tuple[str, str] | None = None
    for spec in model.volumes:
        source, _, rest = spec.partition(":")
        target = rest.partition(":")[0]
        inside = container_path == target or container_path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) > len(best[1])):
            best = (source, target)
    if best is None:
        return None
    source, target = best
    return host_path(source, host).rstrip("/") + container_path[len(target.rstrip("/")) :]


def host_path(spec: str, host: HostFacts) -> str:
    for root, path in host.volume_roots().items():
        if spec.startswith(root):
            return str(path) + spec[len(root) :]
    return spec


# Volume roots that are sparkd's own, writable directories: made by `sparkd render` when
# missing, since podman refuses to mount a host path that does not exist.
WRITABLE_ROOTS = ("{hf_cache}", "{models}", "{cache}", "{state}")


def writable_dirs(models: list[Model], host: HostFacts) -> set[Path]:
    """The host directories the models' volumes mount from sparkd's own roots."""
    found = set()
    for model in models:
        for spec in model.volumes:
            if spec.startswith(WRITABLE_ROOTS):
                found.add(Path(host_path(spec.split(":")[0], host)))
    return found


def render_container(model: Model, host: HostFacts) -> str:
    """The `.container` text for one model (the head half, for one across two Sparks)."""
    engine = engine_command(model, host.pulled.get(model.id))
    if model.nodes > 1 and host.link is not None and model.engine is Engine.VLLM:
        return _render(model, host, model.id, two_node.head_command(engine, host.link), health=True)
    return _render(model, host, model.id, engine, health=True)


def render_worker(model: Model, host: HostFacts) -> str:
    """The `.container` text for the Ray worker half of a two-Spark model, run for the other Spark."""
    assert host.link is not None, "a worker half needs the link"
    worker_id = names.worker_of(model.id)
    return _render(model, host, worker_id, two_node.worker_command(model, host.link), health=False)


def _render(model: Model, host: HostFacts, unit_id: str, command: list[str], health: bool) -> str:
    unit = UnitFile()
    unit.comment(
        "Unit", f"sparkd model unit for {unit_id!r}, rendered from the catalogue by `sparkd render`."
    )
    unit.comment("Unit", "sparkd starts and stops it on demand: it has no [Install] section.")
    unit.add("Unit", "Description", f"sparkd model {unit_id}")
    unit.add("Unit", "Documentation", "man:sparkd(8)")
    # A crash-looping engine is refused by systemd after three tries in ten
    # minutes; sparkd reports that instead of starting it again and again.
    # (A start that becomes healthy clears the count: see Runtime._forget_past_starts.)
    unit.add("Unit", "StartLimitIntervalSec", "10min")
    unit.add("Unit", "StartLimitBurst", "3")
    _container_section(unit, model, host, unit_id)
    if health:
        c = "Container"
        unit.add(c, "HealthCmd", health_command(model))
        unit.add(c, "HealthInterval", "30s")
        unit.add(c, "HealthTimeout", "10s")
        unit.add(c, "HealthRetries", "5")
        unit.add(c, "HealthStartPeriod", format_seconds(model.start_timeout))
    _run_section(unit, model, command)
    return unit.render()


def _container_section(unit: UnitFile, model: Model, host: HostFacts, unit_id: str) -> None:
    c = "Container"
    unit.add(c, "ContainerName", names.container(unit_id))
    unit.add(c, "Image", model.image)
    unit.add(c, "Label", f"{MODEL_LABEL}={unit_id}")
    unit.add(c, "Network", "host")
    unit.add(c, "LogDriver", "journald")
    environment = dict(model.environment)
    if model.nodes > 1 and host.link is not None:
        environment = two_node.environment(host.link) | environment  # the catalogue's own win
    for key, value in environment.items():
        unit.add(c, "Environment", quote_word(f"{key}={value}"))
    if model.id in host.pulled:
        # The weights are all here (`sparkd pull`), and the engine loads their directory:
        # a start never waits on the hub.
        for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            if key not in model.environment:
                unit.add(c, "Environment", f"{key}=1")
    for name in model.secrets:
        # The value stays in its root-only file: podman reads it as the container starts.
        if name in host.secrets:
            unit.add(c, "EnvironmentFile", quote_word(str(host.secrets_dir / name)))
    for spec in model.volumes:
        unit.add(c, "Volume", quote_word(host_path(spec, host)))
    if model.gpu and host.gpu:
        unit.add(c, "AddDevice", "nvidia.com/gpu=all")
    for device in model.devices:
        unit.add(c, "AddDevice", device)
    if model.shm_size:
        unit.add(c, "ShmSize", model.shm_size)
    if model.run_init:
        unit.add(c, "RunInit", "true")


def _run_section(unit: UnitFile, model: Model, command: list[str]) -> None:
    c = "Container"
    unit.add(c, "Exec", " ".join(quote_word(word) for word in command))
    stop_seconds = int(model.stop_timeout)
    # No StopTimeout= before podman 5.0: the flag itself sets how long
    # `podman stop` waits after SIGTERM before it sends SIGKILL.
    unit.add(c, "PodmanArgs", f"--stop-timeout={stop_seconds}")
    # 4.9 honours only the last Ulimit= line, so each limit goes as a flag.
    for name, limit in model.ulimits.items():
        unit.add(c, "PodmanArgs", f"--ulimit={name}={limit}:{limit}")
    if model.entrypoint is not None:
        # An empty entrypoint ("") clears the image's own.
        unit.add(c, "PodmanArgs", f"--entrypoint={quote_word(model.entrypoint)}")

    s = "Service"
    # A cid file left behind (a crashed conmon, or podman older than 4.4, which
    # never removes it) makes `podman run --cidfile` refuse the next start.
    unit.add(s, "ExecStartPre", "-/bin/rm -f %t/%N.cid")
    # Starting includes pulling a missing image and creating the container.
    unit.add(s, "TimeoutStartSec", format_seconds(model.start_timeout))
    # Longer than podman's own stop timeout, so systemd never kills first.
    unit.add(s, "TimeoutStopSec", format_seconds(stop_seconds + 30))
    # An engine that ends on SIGTERM exits 143: a clean stop, not a failure.
    unit.add(s, "SuccessExitStatus", "143")
    unit.add(s, "Restart", "no")


def render_all(models: list[Model], host: HostFacts) -> dict[str, str]:
    """File name -> text for every enabled model, and the worker half of each that spans two Sparks
    (run here for the other): the set sparkd owns in the Quadlet dir. A two-Spark model without a
    [link] is left out (`sparkd check` says why)."""
    files = {}
    for model in (m for m in models if m.enabled):
        if model.nodes > 1 and host.link is None:
            continue
        files[model.quadlet_name] = render_container(model, host)
        if model.nodes > 1:
            files[names.quadlet_file(names.worker_of(model.id))] = render_worker(model, host)
    return files
