"""Where weights live, which files a pull takes, and how its progress reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkd import weights
from sparkd.catalogue import load_catalogue
from sparkd.model import Model
from sparkd.progress import Progress, RateMeter
from sparkd.pull import chosen
from sparkd.quadlet import HostFacts, render_container
from sparkd.schema import validate

HOST = HostFacts(gpu=True, models_dir=Path("/srv/models"), hf_cache_dir=Path("/srv/hf"))


def model(**fields: object) -> Model:
    document = {"id": "m", "image": "x", "weights": "org/name", "context_length": 4096, "port": 18100}
    return validate(Model, {**document, **fields})


@pytest.mark.parametrize("shipped", [m for m in load_catalogue() if weights.hub_repo(m)], ids=lambda m: m.id)
def test_every_shipped_hub_model_can_be_pulled_into_a_volume(shipped: Model) -> None:
    assert weights.host_cache(shipped, HOST) is not None


@pytest.mark.parametrize(
    ("fields", "inside", "host"),
    [
        ({"args": ["--download-dir", "/models"], "volumes": ["{models}:/models"]}, "/models", "/srv/models"),
        ({"environment": {"HF_HUB_CACHE": "/c/hub"}, "volumes": ["/data:/c"]}, "/c/hub", "/data/hub"),
        ({"environment": {"HF_HOME": "/hf"}, "volumes": ["{hf_cache}:/hf"]}, "/hf/hub", "/srv/hf/hub"),
        ({"volumes": ["{hf_cache}:/root/.cache/huggingface"]}, "/root/.cache/huggingface/hub", "/srv/hf/hub"),
        # The deepest volume that holds the cache decides.
        ({"volumes": ["/a:/root", "/b:/root/.cache/huggingface/hub"]}, "/root/.cache/huggingface/hub", "/b"),
    ],
)
def test_the_engines_cache_is_found_and_traced_to_the_host(
    fields: dict[str, object], inside: str, host: str
) -> None:
    m = model(**fields)
    assert weights.container_cache(m) == inside
    assert weights.host_cache(m, HOST) == Path(host)


def test_a_cache_no_volume_holds_cannot_be_pulled_into() -> None:
    assert weights.host_cache(model(volumes=["/x:/elsewhere"]), HOST) is None


def test_weights_inside_the_image_are_not_a_hub_download() -> None:
    assert weights.hub_repo(model(weights="/opt/weights/model")) is None
    assert weights.hub_repo(model()) == "org/name"


def test_a_pulled_model_needs_its_record_and_its_snapshot(tmp_path: Path) -> None:
    host = HostFacts(gpu=True, models_dir=tmp_path / "models", state_dir=tmp_path / "state")
    m = model(args=["--download-dir", "/models"], volumes=["{models}:/models"])
    assert weights.needs_pull(m, host)
    weights.write_record(host.state_dir, "m", weights.Pulled("org/name", "main", "abc", 10, 1))
    assert weights.needs_pull(m, host)  # no snapshot on disk: deleted behind sparkd's back
    (tmp_path / "models" / "models--org--name" / "snapshots" / "abc").mkdir(parents=True)
    assert weights.pulled(m, host) == weights.Pulled("org/name", "main", "abc", 10, 1)
    offline = render_container(m, weights.with_pulled(host, [m]))
    assert "Environment=HF_HUB_OFFLINE=1" in offline
    # The engine loads the snapshot's directory: no repository id for it to look up.
    assert "serve /models/models--org--name/snapshots/abc --served-model-name m" in offline
    online = render_container(m, host)
    assert "HF_HUB_OFFLINE" not in online and "serve org/name" in online


def test_a_pull_takes_safetensors_and_leaves_other_formats_and_originals() -> None:
    files = ["config.json", "model.safetensors", "pytorch_model.bin", "original/consolidated.pth", "x.gguf"]
    assert chosen(files) == ["config.json", "model.safetensors"]
    assert chosen(["config.json", "pytorch_model.bin"]) == ["config.json", "pytorch_model.bin"]


def test_progress_reads_as_a_person_says_it() -> None:
    assert (
        Progress(12_300_000_000, 60_100_000_000, 95e6).line()
        == "downloading 12.3 of 60.1 GB, 95 MB/s, 8m left"
    )
    assert Progress(0, 60_100_000_000, 0.0).line() == "downloading 0.0 of 60.1 GB"
    again = Progress.from_json(Progress(1, 2, 3.0, finished=True, error="x").to_json())
    assert again == Progress(1, 2, 3.0, finished=True, error="x")


def test_the_rate_is_taken_over_the_last_seconds() -> None:
    meter = RateMeter(window=5.0)
    assert meter.add(0.0, 0) == 0.0
    assert meter.add(1.0, 100) == 100.0
    meter.add(10.0, 100)  # stalled: the old samples leave the window
    assert meter.add(11.0, 100) == 0.0


def test_render_makes_the_writable_volume_directories_podman_needs() -> None:
    from sparkd.quadlet import writable_dirs

    gpt = load_catalogue().models["gpt-oss-20b"]
    demo = load_catalogue().models["demo"]
    made = writable_dirs([gpt, demo], HOST)
    assert Path("/srv/models") in made and Path("/srv/hf") in made
    assert not any(str(p).startswith(("/usr", "/etc")) for p in made)  # never the host's own trees
