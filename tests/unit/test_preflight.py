from __future__ import annotations

from sparkd.preflight import Facts, Verdict, judge


def ready_machine() -> Facts:
    return Facts(
        podman_version=(4, 9),
        quadlet_generator=True,
        cdi_gpu=True,
        gpu_models=3,
        images={"localhost/vllm-node-mxfp4:latest": True},
        models_by_image={"localhost/vllm-node-mxfp4:latest": ["gpt-oss-20b"]},
        tiktoken_images=["localhost/vllm-node-mxfp4:latest"],
        hf_cache_dir="/var/lib/sparkd/cache/huggingface",
        hf_cache_exists=True,
        free_disk=2 * 2**40,
        key_file="/etc/sparkd/api-keys",
        key_problem=None,
        port_owner="sparkd.socket",
        socket_enabled="enabled",
    )


def verdicts(facts: Facts) -> dict[str, Verdict]:
    return {item.name: item.verdict for item in judge(facts)}


def test_a_ready_dgx_spark_passes_every_item() -> None:
    assert set(verdicts(ready_machine()).values()) == {Verdict.OK}


def test_old_podman_without_quadlet_fails_with_a_fix() -> None:
    facts = ready_machine()
    facts.podman_version, facts.quadlet_generator = (4, 3), False
    items = {item.name: item for item in judge(facts)}
    assert items["podman"].verdict is Verdict.FAIL
    assert items["quadlet"].verdict is Verdict.FAIL
    assert "4.4" in items["quadlet"].fix


def test_no_cdi_spec_fails_only_when_a_model_needs_the_gpu() -> None:
    facts = ready_machine()
    facts.cdi_gpu = False
    assert verdicts(facts)["gpu"] is Verdict.FAIL
    facts.gpu_models = 0
    assert verdicts(facts)["gpu"] is Verdict.OK


def test_a_missing_image_fails_and_so_do_the_encodings_it_carries() -> None:
    facts = ready_machine()
    facts.images["localhost/vllm-node-mxfp4:latest"] = False
    v = verdicts(facts)
    assert v["image localhost/vllm-node-mxfp4:latest"] is Verdict.FAIL
    assert v["tiktoken encodings in localhost/vllm-node-mxfp4:latest"] is Verdict.FAIL


def test_keys_port_socket_and_units() -> None:
    facts = ready_machine()
    facts.key_problem = "holds the original stack's public placeholder key"
    facts.port_owner = "other"
    facts.socket_enabled = "disabled"
    facts.units_missing = ["sparkd-demo.service"]
    v = verdicts(facts)
    assert (v["api keys"], v["port 8009"], v["sparkd.socket"], v["model units"]) == (Verdict.FAIL,) * 4


def test_low_disk_is_a_warning() -> None:
    facts = ready_machine()
    facts.free_disk = 10 * 2**30
    assert verdicts(facts)["model cache"] is Verdict.WARN
