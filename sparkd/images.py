"""The engine images sparkd builds itself (custom-docker-containers/), and `sparkd images build`.

Each recipe names its Containerfile directory, the tag the catalogue uses,
and the recipes whose images it is built on, so a build runs in order and
skips images that are already present. The build context is the whole
custom-docker-containers directory: images share its mods/.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO_CONTAINERS = Path(__file__).resolve().parent.parent / "custom-docker-containers"
PACKAGED_CONTAINERS = Path("/usr/share/sparkd/containers")


@dataclass(frozen=True)
class Recipe:
    name: str
    tag: str
    directory: str
    needs: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    generated: tuple[str, ...] = ()  # context files sparkd makes as it builds


RECIPES = (
    Recipe("sparkd-demo", "localhost/sparkd-demo:latest", "sparkd-demo", generated=("rootfs.tar",)),
    Recipe("vllm-node", "localhost/vllm-node:latest", "vllm-node"),
    Recipe("vllm-node-tf5", "localhost/vllm-node-tf5:latest", "vllm-node-tf5", ("vllm-node",)),
    Recipe("vllm-node-mxfp4", "localhost/vllm-node-mxfp4:latest", "vllm-node-mxfp4"),
    # The same Transformers-5 recipe on the MXFP4 build, for GLM-4.6V and GLM-4.7.
    Recipe(
        "vllm-node-tf5-cu131",
        "localhost/vllm-node-tf5:cu131",
        "vllm-node-tf5",
        ("vllm-node-mxfp4",),
        (("BASE_IMAGE", "localhost/vllm-node-mxfp4:latest"),),
    ),
    Recipe(
        "vllm-node-tf5-gemma4",
        "localhost/vllm-node-tf5-gemma4:latest",
        "vllm-node-tf5-gemma4",
        ("vllm-node-tf5",),
    ),
    Recipe(
        "vllm-node-mxfp4-qwen35",
        "localhost/vllm-node-mxfp4-qwen35:latest",
        "vllm-node-mxfp4-qwen35",
        ("vllm-node-tf5",),
    ),
    Recipe(
        "vllm-glm-4.7-flash-awq",
        "localhost/vllm-glm-4.7-flash-awq:tf5",
        "vllm-glm-4.7-flash-awq",
        ("vllm-node-tf5-cu131",),
    ),
    Recipe("sglang-utility", "localhost/sparkd-sglang:0.5.9", "sglang-utility"),
)
BY_NAME = {r.name: r for r in RECIPES}
BY_TAG = {r.tag: r for r in RECIPES}


def containers_dir() -> Path:
    return REPO_CONTAINERS if REPO_CONTAINERS.is_dir() else PACKAGED_CONTAINERS


def build_plan(wanted: Iterable[str], present: Callable[[str], bool]) -> list[Recipe]:
    """The recipes to build, bases first; bases already present are not rebuilt."""
    plan: list[Recipe] = []

    def visit(name: str, asked: bool) -> None:
        recipe = BY_NAME[name]
        if recipe in plan or (not asked and present(recipe.tag)):
            return
        for base in recipe.needs:
            visit(base, asked=False)
        plan.append(recipe)

    for name in wanted:
        if name not in BY_NAME:
            raise KeyError(f"no image recipe {name!r}; known: {', '.join(BY_NAME)}")
        visit(name, asked=True)
    return plan


PODMAN_SOCKET = Path("/run/podman/podman.sock")


def image_present(tag: str) -> bool:
    """Whether podman has the image: through its API (podman-py) when podman.socket is
    enabled, which avoids a process per question; through the CLI otherwise."""
    if PODMAN_SOCKET.exists():
        try:
            from podman import PodmanClient

            with PodmanClient(base_url=f"unix://{PODMAN_SOCKET}") as client:
                return bool(client.images.exists(tag))
        except Exception:  # an API that does not answer: ask the CLI instead
            pass
    return subprocess.run(["podman", "image", "exists", tag], check=False).returncode == 0


def empty_root_tar() -> bytes:
    """A root tree with nothing in it but mount points and the usual /usr links."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("proc", "sys", "dev", "etc", "tmp", "run", "usr", "var", "var/tmp", "root"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name in ("tmp", "var/tmp") else 0o755
            tar.addfile(info)
        for link in ("bin", "sbin", "lib", "lib64"):
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = f"usr/{link}"
            tar.addfile(info)
    return buffer.getvalue()


def copied_sources(containerfile: str) -> list[str]:
    """The build-context paths a Containerfile's COPY and ADD lines read (not URLs, not other stages)."""
    sources: list[str] = []
    for line in containerfile.replace("\\\n", " ").splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from=") for w in words[1:]) or len(args) < 2:
            continue
        sources += [a for a in args[:-1] if "://" not in a]
    return sources


def missing_sources(recipe: Recipe, context: Path) -> list[str]:
    """What the recipe's Containerfile copies that its build context lacks (globs match anything)."""
    text = (context / recipe.directory / "Containerfile").read_text()
    missing = []
    for source in copied_sources(text):
        if source in recipe.generated:
            continue
        found = any(context.glob(source)) if any(c in source for c in "*?[") else (context / source).exists()
        if not found:
            missing.append(source)
    return missing


def podman_build_argv(recipe: Recipe, context: Path) -> list[str]:
    containerfile = context / recipe.directory / "Containerfile"
    argv = ["podman", "build", "--tag", recipe.tag, "--file", str(containerfile)]
    for key, value in recipe.build_args:
        argv += ["--build-arg", f"{key}={value}"]
    return [*argv, str(context)]


def build(recipe: Recipe, log: Callable[[str], None] = print) -> None:
    context = containers_dir()
    if recipe.name == "sparkd-demo":
        # Its root tree is generated, so it builds from a context of its own.
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "sparkd-demo").mkdir()
            (Path(tmp) / "sparkd-demo" / "Containerfile").write_bytes(
                (context / "sparkd-demo" / "Containerfile").read_bytes()
            )
            (Path(tmp) / "rootfs.tar").write_bytes(empty_root_tar())
            argv = podman_build_argv(recipe, Path(tmp))
            log("$ " + " ".join(argv))
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        return
    missing = missing_sources(recipe, context)
    if missing:
        raise FileNotFoundError(f"{recipe.name}: its build context {context} lacks {', '.join(missing)}")
    argv = podman_build_argv(recipe, context)
    log("$ " + " ".join(argv))
    subprocess.run(argv, check=True)
