"""`sparkd pull` against a local stand-in for the hub: the cache layout engines read, resume, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkd.pull import Download, PullError, plan_pull, shortfall
from tests.hub_server import Hub, HubRepo, serving
from tests.waiting import eventually_sync

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"
BIG = 3 * 1024 * 1024 + 17  # an LFS file, as weights are


@pytest.fixture
def files(tmp_path: Path) -> Path:
    source = tmp_path / "repo"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text('{"model_type": "llama"}')
    (source / "sub" / "tokenizer.json").write_text("{}")
    (source / "model.safetensors").write_bytes(os.urandom(BIG))
    (source / "pytorch_model.bin").write_bytes(b"not fetched beside safetensors")
    return source


@pytest.fixture
def hub(files: Path) -> Iterator[tuple[Hub, str]]:
    served = Hub({REPO: HubRepo.of(REPO, files), "org/gated": HubRepo.of("org/gated", files)}, "t0ken")
    served.gated = frozenset({"org/gated"})
    with serving(served) as url:
        yield served, url


def test_a_pull_leaves_the_layout_engines_read(hub: tuple[Hub, str], files: Path, tmp_path: Path) -> None:
    served, endpoint = hub
    plan = plan_pull(REPO, "main", tmp_path / "cache", None, endpoint)
    assert sorted(f.path for f in plan.files) == ["config.json", "model.safetensors", "sub/tokenizer.json"]
    assert plan.total == BIG + len('{"model_type": "llama"}') + 2
    Download(plan, None, endpoint, threading.Event()).run()
    folder = tmp_path / "cache" / "models--HuggingFaceTB--SmolLM2-135M-Instruct"
    commit = served.repos[REPO].commit
    assert (folder / "refs" / "main").read_text() == commit
    snapshot = folder / "snapshots" / commit
    for name in ("config.json", "model.safetensors", "sub/tokenizer.json"):
        assert (snapshot / name).is_symlink()
        assert (snapshot / name).read_bytes() == (files / name).read_bytes()
    assert not list(folder.glob("blobs/*.incomplete"))
    assert plan.done_bytes() == plan.total


def test_huggingface_hub_finds_the_pull_offline(hub: tuple[Hub, str], tmp_path: Path) -> None:
    from huggingface_hub import snapshot_download

    _, endpoint = hub
    plan = plan_pull(REPO, "main", tmp_path, None, endpoint)
    Download(plan, None, endpoint, threading.Event()).run()
    found = snapshot_download(REPO, cache_dir=tmp_path, local_files_only=True)
    assert (
        Path(found) == tmp_path / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots" / plan.commit
    )


def test_an_interrupted_pull_goes_on_from_the_byte_it_reached(hub: tuple[Hub, str], tmp_path: Path) -> None:
    served, endpoint = hub
    plan = plan_pull(REPO, "main", tmp_path, None, endpoint)
    served.rate = 512 * 1024  # bytes per second: slow enough to stop half way
    stop = threading.Event()
    first = threading.Thread(target=Download(plan, None, endpoint, stop).run)
    first.start()
    eventually_sync(lambda: plan.done_bytes() > 256 * 1024, "part of the weights to arrive")
    stop.set()
    first.join(10)
    reached = plan.done_bytes()
    assert 0 < reached < plan.total
    served.rate = None
    served.requests.clear()
    Download(plan, None, endpoint, threading.Event()).run()
    ranges = [r for _, path, r in served.requests if path.endswith("model.safetensors")]
    assert len(ranges) == 1 and ranges[0] is not None and int(ranges[0].split("=")[1].split("-")[0]) > 0
    assert plan.done_bytes() == plan.total


def test_a_gated_repository_wants_the_stored_token(hub: tuple[Hub, str], tmp_path: Path) -> None:
    _, endpoint = hub
    with pytest.raises(PullError, match=r"gated.*sudo sparkd secret set HF_TOKEN"):
        plan_pull("org/gated", "main", tmp_path, None, endpoint)
    plan = plan_pull("org/gated", "main", tmp_path, "t0ken", endpoint)
    Download(plan, "t0ken", endpoint, threading.Event()).run()
    assert plan.done_bytes() == plan.total


@pytest.mark.parametrize(
    ("repo", "revision", "says"),
    [("org/nothing", "main", "no repository org/nothing"), (REPO, "v9", "has no revision 'v9'")],
)
def test_what_the_hub_does_not_have_is_named(
    hub: tuple[Hub, str], tmp_path: Path, repo: str, revision: str, says: str
) -> None:
    with pytest.raises(PullError, match=says):
        plan_pull(repo, revision, tmp_path, None, hub[1])


def test_an_unreachable_hub_is_named(tmp_path: Path) -> None:
    with pytest.raises(PullError, match=r"cannot reach http://127\.0\.0\.1:9"):
        plan_pull(REPO, "main", tmp_path, None, "http://127.0.0.1:9")


def test_a_disk_too_small_is_refused_before_a_byte_moves(hub: tuple[Hub, str], tmp_path: Path) -> None:
    plan = plan_pull(REPO, "main", tmp_path, None, hub[1])
    assert shortfall(plan, free=10 * 1024**3) == 0
    assert shortfall(plan, free=1024**3) == plan.total  # the margin (1 GiB) is kept free


def sparkd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sparkd", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_command_pulls_shows_progress_renders_offline_and_removes(
    hub: tuple[Hub, str], tmp_path: Path
) -> None:
    served, endpoint = hub
    (tmp_path / "models.d").mkdir()
    common = f'weights = "{REPO}"\nimage = "localhost/x:1"\ncontext_length = 2048\n'
    (tmp_path / "models.d" / "smol.toml").write_text(
        f'[models.smol]\n{common}args = ["--download-dir", "/models"]\n'
        'volumes = ["{models}:/models", "{hf_cache}:/root/.cache/huggingface"]\n'
        f'[models.smol-too]\n{common}environment = {{ HF_HOME = "/hf" }}\nvolumes = ["{{models}}:/hf/hub"]\n'
    )
    config = tmp_path / "sparkd.toml"
    config.write_text(
        f'models_d = "{tmp_path}/models.d"\nstate_dir = "{tmp_path}/state"\n'
        f'models_dir = "{tmp_path}/models"\nhf_cache_dir = "{tmp_path}/hf"\n'
        f'secrets_dir = "{tmp_path}/secrets"\npulls_dir = "{tmp_path}/run/pulls"\n'
        f'hub_endpoint = "{endpoint}"\ngpu = "no"\n'
    )
    assert "not pulled" in next(
        line for line in sparkd(config, "models").stdout.splitlines() if "smol " in line
    )
    pulled = sparkd(config, "pull", "smol")
    assert pulled.returncode == 0, pulled.stderr
    assert "smol: pulled 0.00 GB" in pulled.stdout
    assert "downloading" in pulled.stdout  # progress lines, not a terminal here
    progress = json.loads((tmp_path / "run" / "pulls" / "smol.json").read_text())
    assert progress["finished"] and progress["done"] == progress["total"] and progress["error"] is None
    # The other model on the same weights shares the pull; both now run offline.
    listed = {
        m["id"]: m["weights_on_disk"] for m in json.loads(sparkd(config, "models", "--all", "--json").stdout)
    }
    assert listed["smol"]["pulled"] and listed["smol-too"]["pulled"]
    assert listed["demo"] is None
    offline = sparkd(config, "render", "--print", "smol-too").stdout
    commit = served.repos[REPO].commit
    assert "Environment=HF_HUB_OFFLINE=1" in offline
    assert f"/hf/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/{commit}" in offline
    # A second pull has nothing to fetch.
    served.requests.clear()
    assert sparkd(config, "pull", "smol").returncode == 0
    assert [r for r in served.requests if r[0] == "GET"] == []
    removed = sparkd(config, "rm", "smol")
    assert removed.returncode == 0, removed.stderr
    assert "also the weights of smol-too" in removed.stdout
    assert not (tmp_path / "models" / "models--HuggingFaceTB--SmolLM2-135M-Instruct").exists()
    assert "HF_HUB_OFFLINE" not in sparkd(config, "render", "--print", "smol").stdout


def test_the_command_names_what_it_cannot_pull(hub: tuple[Hub, str], tmp_path: Path) -> None:
    config = tmp_path / "sparkd.toml"
    config.write_text(
        f'models_d = "{tmp_path}/none"\nstate_dir = "{tmp_path}/state"\nhub_endpoint = "{hub[1]}"\n'
    )
    nothing = sparkd(config, "pull")
    assert (nothing.returncode, nothing.stderr) == (2, "sparkd: name the models to pull, or --enabled\n")
    unknown = sparkd(config, "pull", "no-such-model")
    assert (unknown.returncode, unknown.stderr) == (2, "sparkd: no model 'no-such-model'\n")
    demo = sparkd(config, "pull", "demo")
    assert demo.returncode == 0 and "not a hub download" in demo.stdout
