"""`sparkd export kubeai`: every manifest is a valid KubeAI Model by KubeAI's own CRD schema."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sparkd import kubeai
from sparkd.catalogue import load_catalogue
from sparkd.model import Model
from sparkd.schema import validate

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT.parent / "shared" / "reference" / "kubeai-model-crd.yaml"
GOLDEN = ROOT / "tests" / "golden" / "kubeai" / "gpt-oss-20b.yaml"
CATALOGUE = load_catalogue()
EXPORTED = [m for m in CATALOGUE if kubeai.exportable(m) is None]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not CRD.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CRD} is missing")
        pytest.skip(f"{CRD} is not beside this checkout")
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return dict(version["schema"]["openAPIV3Schema"])


def rules_kubernetes_checks(document: dict[str, Any]) -> list[str]:
    """The CRD's own CEL rules that bear on an exported manifest, checked as Kubernetes would."""
    spec, broken = document["spec"], []
    if len(document["metadata"]["name"]) > 40:
        broken.append("name must not exceed 40 characters")
    if not spec["url"].startswith(("hf://", "pvc://", "ollama://", "s3://", "gs://", "oss://")):
        broken.append("url prefix")
    if "maxReplicas" in spec and spec["minReplicas"] > spec["maxReplicas"]:
        broken.append("minReplicas <= maxReplicas")
    return broken


@pytest.mark.parametrize("model", EXPORTED, ids=lambda m: m.id)
def test_every_exported_manifest_is_a_valid_kubeai_model(model: Model, schema: dict[str, Any]) -> None:
    document = kubeai.manifest(model)
    # Through YAML and back, as kubectl reads it.
    document = yaml.safe_load(yaml.safe_dump(document))
    jsonschema.validate(document, schema)
    assert rules_kubernetes_checks(document) == []


def test_all_enabled_vllm_models_with_hub_weights_are_exported_and_the_rest_say_why() -> None:
    made, skipped = kubeai.manifests(CATALOGUE)
    assert {m["metadata"]["annotations"]["sparkd.io/model"] for m in made} | set(skipped) == {
        m.id for m in CATALOGUE.enabled()
    }
    assert skipped["qwen3.5-0.8b"] == "sglang is not a KubeAI engine"


def test_the_golden_manifest_of_gpt_oss_20b_is_what_the_export_writes() -> None:
    exported = kubeai.manifest(CATALOGUE.models["gpt-oss-20b"])
    assert exported == yaml.safe_load(GOLDEN.read_text())


def test_secrets_travel_as_references_and_the_hosts_layout_stays_home() -> None:
    spec = kubeai.manifest(CATALOGUE.models["gpt-oss-120b"])["spec"]
    assert spec["envFrom"] == [{"secretRef": {"name": "sparkd-secrets"}}]
    assert not {"HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE"} & set(spec.get("env", {}))
    assert "--download-dir" not in spec["args"] and spec["args"][-2:] == ["--max-model-len", "131072"]
    assert spec["scaleDownDelaySeconds"] == int(CATALOGUE.models["gpt-oss-120b"].idle_timeout)


def test_a_long_id_gets_a_short_unique_kubernetes_name() -> None:
    long = validate(
        Model,
        {
            "id": "Jackrong_Qwen3.5-35B-A3B-Claude-4.6-Opus-Reasoning",
            "image": "x",
            "weights": "a/b",
            "context_length": 4096,
            "port": 18100,
        },
    )
    name = kubeai.name_of(long)
    assert len(name) <= 40 and name == name.lower() and name.replace("-", "").isalnum()
    assert name != kubeai.name_of(dataclasses.replace(long, id=long.id + "-2"))
