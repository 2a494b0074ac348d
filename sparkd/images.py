"""The engine images sparkd builds itself, and how: `sparkd images build|list|prune`.

Each recipe names its Containerfile, the tag the catalogue uses, and the
recipes whose images it is built on, so a build runs in order and skips
images that are already present. The shipped recipes live in
custom-docker-containers/ and build from that whole directory (images share
its mods/); a drop-in may declare more (`sparkd.recipes`).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_CONTAINERS = Path(__file__).resolve().parent.parent / "custom-docker-containers"
PACKAGED_CONTAINERS = Path("/usr/share/sparkd/containers")


@dataclass(frozen=True)
class Recipe:
    name: str
    tag: str
    directory: str = ""  # a shipped recipe's folder in the containers directory
    needs: tuple[str, ...] = ()  # recipes whose images this one is built on
    build_args: tuple[tuple[str, str], ...] = ()
    generated: tuple[str, ...] = ()  # context files sparkd makes as it builds
    # A recipe declared in a drop-in brings its own Containerfile and context.
    containerfile: Path | None = None
    context: Path | None = None
    declared_in: Path | None = None

    def containerfile_in(self, containers: Path) -> Path:
        return self.containerfile or containers / self.directory / "Containerfile"

    def context_in(self, containers: Path) -> Path:
        return self.context or containers


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
SHIPPED: Mapping[str, Recipe] = BY_NAME


def containers_dir() -> Path:
    return REPO_CONTAINERS if REPO_CONTAINERS.is_dir() else PACKAGED_CONTAINERS


def build_plan(
    wanted: Iterable[str],
    present: Callable[[str], bool],
    recipes: Mapping[str, Recipe] = SHIPPED,
    rebuild: bool = False,
) -> list[Recipe]:
    """The recipes to build, bases first. Bases already present are not rebuilt,
    unless `rebuild` asks for every image in the chain anew (an upgrade)."""
    plan: list[Recipe] = []
    visiting: list[str] = []

    def visit(name: str, asked: bool) -> None:
        recipe = recipes[name]
        if name in visiting:
            raise KeyError(f"image recipes built on each other: {' -> '.join([*visiting, name])}")
        if recipe in plan or (not asked and not rebuild and present(recipe.tag)):
            return
        visiting.append(name)
        for base in recipe.needs:
            visit(base, asked=False)
        visiting.pop()
        plan.append(recipe)

    for name in wanted:
        if name not in recipes:
            raise KeyError(f"no image recipe {name!r}; known: {', '.join(recipes)}")
        visit(name, asked=True)
    return plan


def needed(recipes: Mapping[str, Recipe], used_tags: Iterable[str]) -> set[str]:
    """The recipes whose images the catalogue uses, with every base they are built on."""
    by_tag = {r.tag: r.name for r in recipes.values()}
    todo = [by_tag[t] for t in used_tags if t in by_tag]
    kept: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in kept:
            kept.add(name)
            todo.extend(b for b in recipes[name].needs if b in recipes)
    return kept


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


def missing_sources(recipe: Recipe, containers: Path) -> list[str]:
    """What the recipe's Containerfile copies that its build context lacks (globs match anything)."""
    text = recipe.containerfile_in(containers).read_text()
    context = recipe.context_in(containers)
    missing = []
    for source in copied_sources(text):
        if source in recipe.generated:
            continue
        found = any(context.glob(source)) if any(c in source for c in "*?[") else (context / source).exists()
        if not found:
            missing.append(source)
    return missing


def podman_build_argv(recipe: Recipe, containers: Path, pull: bool = False, fresh: bool = False) -> list[str]:
    """`pull` fetches the upstream base anew (only a recipe on no other recipe has one:
    the others' bases are local images no registry holds); `fresh` reruns every step."""
    argv = ["podman", "build", "--tag", recipe.tag, "--file", str(recipe.containerfile_in(containers))]
    for key, value in recipe.build_args:
        argv += ["--build-arg", f"{key}={value}"]
    if pull and not recipe.needs:
        argv.append("--pull=always")
    if fresh:
        argv.append("--no-cache")
    return [*argv, str(recipe.context_in(containers))]


def build(
    recipe: Recipe,
    log: Callable[[str], None] = print,
    pull: bool = False,
    fresh: bool = False,
    steps: Steps | None = None,
) -> None:
    """Build the recipe's image; `steps` (on a terminal) hears each build step instead of
    podman's own output, which is shown only if the build fails."""
    containers = containers_dir()
    if recipe.generated:
        # Its root tree is generated, so it builds from a context of its own.
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / recipe.directory).mkdir()
            (Path(tmp) / recipe.directory / "Containerfile").write_bytes(
                recipe.containerfile_in(containers).read_bytes()
            )
            (Path(tmp) / "rootfs.tar").write_bytes(empty_root_tar())
            argv = podman_build_argv(recipe, Path(tmp), pull, fresh)
            log("$ " + " ".join(argv))
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        return
    missing = missing_sources(recipe, containers)
    if missing:
        context = recipe.context_in(containers)
        raise FileNotFoundError(f"{recipe.name}: its build context {context} lacks {', '.join(missing)}")
    argv = podman_build_argv(recipe, containers, pull, fresh)
    log("$ " + " ".join(argv))
    if steps is None:
        subprocess.run(argv, check=True)
    else:
        _run_showing_steps(argv, steps)


STEP = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
Steps = Callable[[int, int, str], None]


def step_of(line: str) -> tuple[int, int, str] | None:
    """podman build's `STEP 2/9: RUN pip install ...` as (2, 9, "RUN pip install ...")."""
    found = STEP.match(line.strip())
    return (int(found[1]), int(found[2]), found[3]) if found else None


def _run_showing_steps(argv: list[str], steps: Steps) -> None:
    """podman build with its output kept back: each step is shown; on failure, the last lines."""
    kept: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as build:
        assert build.stdout is not None
        for line in build.stdout:
            kept = [*kept[-39:], line.rstrip("\n")]
            step = step_of(line)
            if step is not None:
                steps(*step)
    if build.returncode != 0:
        raise subprocess.CalledProcessError(build.returncode, argv, output="\n".join(kept))


def remove_image(tag: str) -> str | None:
    """Remove an image; podman's reason when it refuses (a container uses it), else None."""
    done = subprocess.run(["podman", "rmi", tag], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else (done.stderr.strip() or f"podman rmi exited {done.returncode}")


def prune_dangling() -> str:
    """Remove the untagged layers rebuilds leave behind; podman's list of what went."""
    argv = ["podman", "image", "prune", "--force"]
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
