"""Weights from a hub into the bed: `sparkd pull` of the real SmolLM2 files, interrupted and resumed,
then the real vLLM starting offline from them; a request for a model never pulled, with
pull_on_demand on (a streaming client watches the download) and off (a clear 409).

The hub is out of reach here: tests/hub_server.py stands in for it at the network edge,
serving the demo's converted SmolLM2 files.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed import BED_CONFIG, SPARKD, PrivateSystemd

from tests.hub_server import Hub, HubRepo, serving
from tests.system.conftest import wait_for
from tests.system.sparkd_bed import install, request, streamed_chat

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM = Path("/var/lib/sparkd/demo/SmolLM2-135M-Instruct")  # `sparkd demo install` made them
HUB_PORT = 18950
WHERE = "/var/tmp/sparkd-bed-weights"  # the bed's model and Hugging Face caches, for this module
SPARKD_SETTINGS = (
    f'quiet_exit = 0\nhub_endpoint = "http://127.0.0.1:{HUB_PORT}"\n'
    f'models_dir = "{WHERE}/models"\nhf_cache_dir = "{WHERE}/hf"\n'
)
# The demo's engine, reading SmolLM2 from the hub's layout as a Spark model reads its weights.
DEMO_HUB = f"""
[models.demo-hub]
status = "validated"
engine = "vllm"
image = "localhost/sparkd-demo:latest"
weights = "{REPO}"
launcher = ["/opt/sparkd-demo/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
args = ["--enforce-eager", "--distributed-executor-backend", "uni", "--kv-cache-memory-bytes", "256M",
        "--max-num-seqs", "8", "--download-dir", "/models"]
volumes = ["/usr:/usr:ro", "/etc:/etc:ro", "{{state}}/demo:/opt/sparkd-demo:ro", "{{models}}:/models",
           "{{hf_cache}}:/hf"]
shm_size = "1g"
gpu = false
start_timeout = "5m"
context_length = 2048
tool_support = "none"
progress_as_reasoning = true
[models.demo-hub.environment]
HOME = "/tmp"
HF_HOME = "/hf"
VLLM_NO_USAGE_STATS = "1"
DO_NOT_TRACK = "1"
VLLM_HOST_IP = "127.0.0.1"
GLOO_SOCKET_IFNAME = "lo"
VLLM_ENABLE_V1_MULTIPROCESSING = "0"
"""
FOLDER = "models--HuggingFaceTB--SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    served = Hub({REPO: HubRepo.of(REPO, SMOLLM)})
    with serving(served, HUB_PORT):
        yield served


@pytest.fixture(scope="module")
def bed(sparkd: PrivateSystemd, hub: Hub) -> Iterator[PrivateSystemd]:
    sparkd.write_file(f"{BED_CONFIG}/models.d/demo-hub.toml", DEMO_HUB)
    subprocess.run(["rm", "-rf", WHERE], check=True)
    install(sparkd, SPARKD_SETTINGS)  # again: the catalogue has demo-hub now
    yield sparkd
    sparkd.run("systemctl", "stop", "sparkd-demo-hub.service", check=False)
    sparkd.run("rm", "-f", f"{BED_CONFIG}/models.d/demo-hub.toml")
    subprocess.run(["rm", "-rf", WHERE], check=False)


def cli(bed: PrivateSystemd, *args: str) -> subprocess.CompletedProcess[str]:
    return bed.run(str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml", *args, check=False, timeout=300)


def partial_bytes() -> int:
    return sum(p.stat().st_size for p in Path(WHERE, "models", FOLDER, "blobs").glob("*.incomplete"))


def test_a_pull_interrupted_goes_on_and_the_engine_then_starts_offline(bed: PrivateSystemd, hub: Hub) -> None:
    hub.rate = 40e6  # bytes per second: a pull of 538 MB takes long enough to interrupt
    pulling = subprocess.Popen(
        bed.command(str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml", "pull", "demo-hub"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: partial_bytes() > 50e6, 60, "part of the weights to arrive")
    bed.run("pkill", "-INT", "-f", "sparkd.toml pull demo-hub")
    out, err = pulling.communicate(timeout=60)
    assert pulling.returncode == 130, out + err
    assert "goes on from here" in err
    reached = partial_bytes()
    assert 50e6 < reached < 538e6

    hub.rate = None
    hub.requests.clear()
    pulled = cli(bed, "pull", "demo-hub")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    weights_ranges = [r for _, path, r in hub.requests if path.endswith("model.safetensors")]
    assert len(weights_ranges) == 1 and weights_ranges[0] is not None
    assert int(weights_ranges[0].split("=")[1].split("-")[0]) >= reached
    # Pulled, the unit runs the engine offline: no start waits on a hub.
    unit = bed.run("cat", "/etc/containers/systemd/sparkd-demo-hub.container").stdout
    assert "Environment=HF_HUB_OFFLINE=1" in unit
    listed = {m["id"]: m["weights_on_disk"] for m in json.loads(cli(bed, "models", "--json").stdout)}
    assert listed["demo-hub"]["pulled"] and listed["demo-hub"]["bytes"] > 538e6

    hub.requests.clear()
    status, _, body = request(
        "/v1/chat/completions",
        {"model": "demo-hub", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8},
        timeout=300,
    )
    journal = bed.run("journalctl", "-u", "sparkd-demo-hub.service", "-n", "300", "--no-pager", check=False)
    assert status == 200, f"{body}\n{journal.stdout}"
    assert hub.requests == []  # the engine never asked the hub


def test_a_model_never_pulled_is_downloaded_while_a_streaming_client_watches(
    bed: PrivateSystemd, hub: Hub
) -> None:
    bed.run("systemctl", "stop", "sparkd-demo-hub.service")
    removed = cli(bed, "rm", "demo-hub")
    assert removed.returncode == 0, removed.stderr
    hub.rate = 100e6  # a few seconds of download, long enough to be watched
    said, content = streamed_chat("demo-hub", max_tokens=8)
    assert "pulling demo-hub: downloading" in said, said
    assert "starting demo-hub" in said
    assert content.strip()
    assert bed.unit_state("sparkd-pull@demo-hub.service") == "inactive"  # a oneshot that ended well
    hub.rate = None


def test_with_pull_on_demand_off_a_model_never_pulled_gets_a_409_naming_sparkd_pull(
    bed: PrivateSystemd,
) -> None:
    bed.run("systemctl", "stop", "sparkd-demo-hub.service")
    assert cli(bed, "rm", "demo-hub").returncode == 0
    install(bed, SPARKD_SETTINGS + "pull_on_demand = false\n")
    try:
        status, headers, body = request(
            "/v1/chat/completions", {"model": "demo-hub", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert status == 409, body
        error = body["error"]
        assert isinstance(error, dict) and error["code"] == "model_not_pulled"
        assert "sudo sparkd pull demo-hub" in str(error["message"])
        assert "Retry-After" not in headers
    finally:
        install(bed, SPARKD_SETTINGS)


def test_an_operator_pulls_a_model_through_the_api_as_the_dashboards_button_does(bed: PrivateSystemd) -> None:
    bed.run("systemctl", "stop", "sparkd-demo-hub.service")
    assert cli(bed, "rm", "demo-hub").returncode == 0
    status, _, body = request("/sparkd/models/demo-hub/pull", {})
    assert (status, body["unit"]) == (202, "sparkd-pull@demo-hub.service")

    def pulled() -> bool:
        listed = {m["id"]: m["weights_on_disk"] for m in json.loads(cli(bed, "models", "--json").stdout)}
        return bool(listed["demo-hub"]["pulled"])

    wait_for(pulled, 120, "the pull unit to finish")
    status, _, body = request("/sparkd/models/demo-hub/pull", {})
    assert status == 409, body


def cached_bytes(bed: PrivateSystemd) -> int:
    line = next(x for x in bed.run("cat", "/proc/meminfo").stdout.splitlines() if x.startswith("Cached:"))
    return int(line.split()[1]) * 1024


def test_the_page_cache_drop_sparkd_asks_for_frees_clean_cache(bed: PrivateSystemd) -> None:
    # The weights just read are clean page cache, as a stopped model's are on a Spark.
    bed.run("sh", "-c", f"cat {SMOLLM}/model.safetensors > /dev/null")
    before = cached_bytes(bed)
    bed.run("systemctl", "start", "sparkd-drop-caches.service")
    assert bed.unit_property("sparkd-drop-caches.service", "Result") == "success"
    assert cached_bytes(bed) < before - 300e6
