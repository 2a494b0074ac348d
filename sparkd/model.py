"""One catalogue entry: what a model is, how its engine runs, how requests to it are patched.

Frozen dataclasses whose field rules (`sparkd.schema` markers) pydantic
applies when a file is validated; `sparkd.catalogue` loads and merges them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated

from sparkd import names
from sparkd.duration import DURATION
from sparkd.schema import STRICT, Bounds, Check

# Model ids become parts of unit and container names, so they keep to the
# characters both allow: `sparkd-<id>.service`, container `sparkd-<id>`.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
# Host sides of volumes may start with one of these roots; the renderer
# replaces them with the host's configured directories.
VOLUME_ROOTS = ("{hf_cache}", "{models}", "{cache}", "{data}", "{state}")


def _check_id(value: str) -> str:
    if not _ID_PATTERN.fullmatch(value):
        raise ValueError(
            "a model id is 1-80 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    reserved = next((p for p in names.RESERVED_ID_PREFIXES if value.startswith(p)), None)
    if reserved is not None:
        raise ValueError(f"a model id cannot start with {reserved!r}: sparkd names its own units so")
    return value


def _check_volume(value: str) -> str:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(f"{value!r} is not HOST:CONTAINER[:OPTIONS]")
    host, container = parts[0], parts[1]
    if not (host.startswith("/") or host.startswith(VOLUME_ROOTS)):
        raise ValueError(
            f"volume host path {host!r} must be absolute or start with one of {', '.join(VOLUME_ROOTS)}"
        )
    if not container.startswith("/"):
        raise ValueError(f"volume container path {container!r} must be absolute")
    return value


def _check_secret_name(value: str) -> str:
    from sparkd.secrets import check_name

    return check_name(value)


ModelId = Annotated[str, Check(_check_id)]
VolumeSpec = Annotated[str, Check(_check_volume)]


class Status(StrEnum):
    VALIDATED = "validated"
    EXPERIMENTAL = "experimental"
    DISABLED = "disabled"


class Role(StrEnum):
    MAIN = "main"  # holds the GPU; one at a time
    UTILITY = "utility"  # small helper that runs beside a main model
    EXCLUSIVE = "exclusive"  # a main model that needs the utility gone too


class Engine(StrEnum):
    VLLM = "vllm"
    SGLANG = "sglang"
    GENERIC = "generic"  # any image; `command` says how it listens


class ApiFamily(StrEnum):
    """An API an engine speaks on its own port; sparkd routes a family only to models that serve it."""

    OPENAI = "openai"  # chat, completions, embeddings, responses, and the engine's other public routes
    ANTHROPIC = "anthropic"  # /v1/messages and /v1/messages/count_tokens


class ToolSupport(StrEnum):
    FULL = "full"
    NONE = "none"  # tool fields are stripped from requests
    FORCE_REQUIRED = "force-required"  # tool_choice "auto" becomes "required" before a first tool result


@dataclass(frozen=True, kw_only=True)
class Rewrites:
    """Which request rewrites apply to a model (see docs/design.md, request compatibility)."""

    __pydantic_config__ = STRICT

    fill_max_tokens: bool = True  # a request without a budget gets what is left of the context
    cap_max_tokens: bool = True  # a budget larger than what is left of the context is lowered
    safety_buffer_tokens: Annotated[int, Bounds(ge=0)] | None = None  # None: max(512, 10% of context)
    normalize_text_content: bool = False  # array content becomes one string (text-only templates)
    strict_alternation: bool = False  # user/assistant must alternate; system folds into the first user turn
    llama_tool_guard: bool = False  # instruct raw-JSON tool arguments, annotate tool schemas
    thinking_off_by_default: bool = False  # enable_thinking=false unless the client says otherwise
    binary_thinking: bool = False  # map `thinking` and `reasoning_effort` to chat_template_kwargs


@dataclass(frozen=True, kw_only=True)
class Model:
    """One catalogue entry, as validated (`load_catalogue` assigns every model a port)."""

    __pydantic_config__ = STRICT

    id: ModelId  # the name clients use; also the unit sparkd-<id>.service (letters, digits, . _ -)
    aliases: tuple[str, ...] = ()  # more names clients may use for it
    description: str = ""  # one line, shown by `sparkd models` and /v1/models
    status: Status = Status.EXPERIMENTAL  # validated, experimental, or disabled (not served)
    role: Role = Role.MAIN  # main (one GPU tenant), utility (beside it) or exclusive (alone)
    # Sparks it runs across: 2 splits it over the link to the peer named in [link] (a Ray head and
    # vLLM here, a Ray worker there, tensor parallel 2); each half is its Spark's GPU tenant.
    nodes: Annotated[int, Bounds(ge=1, le=2)] = 1

    engine: Engine = Engine.VLLM  # vllm, sglang, or generic (any image; `command` says how)
    # The container image (`sparkd images build` makes the localhost/ ones).
    image: Annotated[str, Bounds(min_length=1)]
    weights: str | None = None  # HF repo id or a path inside the container
    # The weights' download size in GB, where their name does not tell it (see sparkd/sizing.py).
    weights_gb: Annotated[float, Bounds(gt=0)] | None = None
    # How the engine is started inside the image. None: the engine's usual
    # launcher (`vllm serve`, `python3 -m sglang.launch_server`).
    launcher: tuple[str, ...] | None = None
    entrypoint: str | None = None  # replaces the image's ENTRYPOINT; "" clears it
    # Generic engines only: the whole command, with {host}, {port} and {model_id}
    # standing for what sparkd decides.
    command: tuple[str, ...] = ()
    # A generic engine across two Sparks: the worker half's command ({address}, {peer_address},
    # {ray_port}, {model_id} from [link]); vllm engines get Ray's (sparkd/two_node.py).
    worker_command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()  # engine arguments beyond what sparkd sets itself
    # The engine's environment variables (never secrets: see `secrets`).
    environment: dict[str, str] = field(default_factory=dict)
    # host:container[:options]; a host path may start with {hf_cache}, {models}, {cache},
    # {data} or {state}.
    volumes: tuple[VolumeSpec, ...] = ()
    shm_size: str | None = None  # the container's /dev/shm (e.g. "16g")
    ulimits: dict[str, int] = field(default_factory=dict)  # e.g. memlock = -1
    devices: tuple[str, ...] = ()  # more devices for the container
    gpu: bool = True  # asks for the GPU through CDI when the host has one
    run_init: bool = False  # an init as PID 1, for servers that ignore SIGTERM

    port: Annotated[int, Bounds(ge=1024, le=65535)] | None = None  # None: assigned on load
    health_path: str = "/health"  # the engine's route that answers 200 once it is ready
    # How long a start may take (download, load, compile) before it is a failure.
    start_timeout: Annotated[float, Bounds(gt=0), DURATION] = 900.0
    stop_timeout: Annotated[float, Bounds(gt=0), DURATION] = 30.0  # before the engine is killed
    idle_timeout: Annotated[float, Bounds(ge=0), DURATION] = 1200.0  # 0: never stopped for idleness
    # Never stopped for idleness sooner than this after its start.
    min_uptime: Annotated[float, Bounds(ge=0), DURATION] = 30.0
    keep_warm: bool = False  # utility only: started and kept running while no exclusive model runs
    # While a streaming chat request waits for this model, show the loading
    # progress as reasoning_content deltas (chat UIs and SDKs display those).
    progress_as_reasoning: bool = False

    context_length: Annotated[int, Bounds(gt=0)]  # what the engine serves (max_model_len)
    client_context: Annotated[int, Bounds(gt=0)] | None = None  # what clients are told to use
    tool_support: ToolSupport = ToolSupport.FULL  # full, none (tools stripped) or force-required
    multimodal: bool = False  # takes images (its content parts are never flattened to text)
    rewrites: Rewrites = field(default_factory=Rewrites)  # the request rewrites it needs (below)
    # None: what the engine speaks (vLLM and SGLang both families; a generic engine OpenAI's only).
    api_families: tuple[ApiFamily, ...] | None = None
    # Secrets the engine gets as environment variables (`sparkd secret set NAME`), by name.
    secrets: tuple[Annotated[str, Check(_check_secret_name)], ...] = ()
    # Models whose files this one reads (the Qwen 3.6 lanes: their chat template comes
    # with the utility's download); disabling one of them is warned about.
    needs: tuple[ModelId, ...] = ()
    # The model clients start with (`sparkd export`, the docs): one per catalogue.
    recommended: bool = False

    notes: str = ""  # for people: why a value is what it is
    source_recipe: str | None = None  # where the entry came from (the original stack's recipe)

    def __post_init__(self) -> None:
        # Rules between fields; pydantic reports a ValueError here like a field's.
        if self.engine is Engine.GENERIC and not self.command:
            raise ValueError("a generic engine needs `command`")
        if self.engine is not Engine.GENERIC and self.command:
            raise ValueError("`command` is for generic engines; use `args` for vllm and sglang")
        if self.engine is not Engine.GENERIC and not self.weights:
            raise ValueError(f"a {self.engine} engine needs `weights`")
        if self.keep_warm and self.role is not Role.UTILITY:
            raise ValueError("`keep_warm` is for the utility model")
        if self.client_context is not None and self.client_context > self.context_length:
            raise ValueError("`client_context` cannot exceed `context_length`")
        if self.api_families is None:
            spoken = (ApiFamily.OPENAI,) if self.engine is Engine.GENERIC else tuple(ApiFamily)
            # Frozen: the default is settled once, here, like a field's own default.
            object.__setattr__(self, "api_families", spoken)
        if not self.health_path.startswith("/"):
            raise ValueError("`health_path` must start with '/'")
        if self.nodes > 1 and (self.role is Role.UTILITY or self.engine is Engine.SGLANG):
            raise ValueError("`nodes = 2` is for vllm or generic engines of role main or exclusive")
        if self.nodes > 1 and self.engine is Engine.GENERIC and not self.worker_command:
            raise ValueError("a generic engine across two Sparks needs `worker_command`")
        if self.worker_command and (self.nodes < 2 or self.engine is not Engine.GENERIC):
            raise ValueError("`worker_command` is for generic engines with `nodes = 2`")

    def serves(self, family: ApiFamily) -> bool:
        return family in (self.api_families or ())

    @property
    def enabled(self) -> bool:
        return self.status is not Status.DISABLED

    @property
    def unit_name(self) -> str:
        return names.model_unit(self.id)

    @property
    def quadlet_name(self) -> str:
        return names.quadlet_file(self.id)

    @property
    def engine_port(self) -> int:
        assert self.port is not None, "ports are assigned when the catalogue loads"
        return self.port
