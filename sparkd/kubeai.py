"""The catalogue as KubeAI `Model` manifests (kubeai.org/v1), for owners who move to a cluster.

One source of truth: each enabled vLLM model with hub weights becomes a
Model that KubeAI scales from zero on demand, as sparkd starts models on
demand: `url` from the weights (`hf://org/name`), the engine's arguments
(less what KubeAI decides itself: where weights are cached), its
environment (secrets by reference only: an `envFrom` of a Secret, never a
value), `minReplicas: 0` and `scaleDownDelaySeconds` from the idle timeout.
A Helm values snippet defines the GB10 resource profile the manifests name.
Pure: dictionaries out; `sparkd export kubeai` prints them as YAML.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sparkd.catalogue import Catalogue, Engine, Model
from sparkd.weights import hub_repo

RESOURCE_PROFILE = "nvidia-gpu-gb10"
SECRET = "sparkd-secrets"  # the Secret the exported models read HF_TOKEN and the like from
NAME_LIMIT = 40  # KubeAI: a Model's name must not exceed 40 characters
# Arguments KubeAI sets itself (the model's cache and the server's address).
DROPPED = {"--download-dir": 1, "--host": 1, "--port": 1, "--served-model-name": 1}
# Environment that points at sparkd's own host layout, meaningless in a pod.
HOST_ONLY = {"HF_HOME", "HF_HUB_CACHE", "HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}


def name_of(model: Model) -> str:
    """A Kubernetes name for the model: lower case, digits and '-', at most 40 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.id.lower()).strip("-")
    if len(name) > NAME_LIMIT:
        digest = hashlib.sha256(model.id.encode()).hexdigest()[:6]
        name = f"{name[: NAME_LIMIT - 7].rstrip('-')}-{digest}"
    return name


def exportable(model: Model) -> str | None:
    """Why the model has no KubeAI manifest, or None when it has one."""
    if model.engine is not Engine.VLLM:
        return f"{model.engine} is not a KubeAI engine"
    if hub_repo(model) is None:
        return f"its weights ({model.weights}) are not on the hub"
    return None


def manifest(model: Model) -> dict[str, Any]:
    repo = hub_repo(model)
    assert repo is not None, exportable(model)
    spec: dict[str, Any] = {
        "url": f"hf://{repo}",
        "engine": "VLLM",
        "features": ["TextGeneration"],
        "args": [*_args(list(model.args)), "--max-model-len", str(model.context_length)],
        "resourceProfile": f"{RESOURCE_PROFILE}:1",
        "minReplicas": 0,
        "maxReplicas": 1,
        "scaleDownDelaySeconds": int(model.idle_timeout),
        "targetRequests": 100,
    }
    if not model.image.startswith("localhost/"):
        spec["image"] = model.image  # a localhost/ image must first be pushed to the cluster's registry
    env = {k: v for k, v in model.environment.items() if k not in HOST_ONLY}
    if env:
        spec["env"] = env
    if model.secrets:
        spec["envFrom"] = [{"secretRef": {"name": SECRET}}]
    return {
        "apiVersion": "kubeai.org/v1",
        "kind": "Model",
        "metadata": {
            "name": name_of(model),
            "annotations": {"sparkd.io/model": model.id, "sparkd.io/description": model.description},
        },
        "spec": spec,
    }


def _args(args: list[str]) -> list[str]:
    kept, skip = [], 0
    for word in args:
        if skip:
            skip -= 1
            continue
        flag = word.split("=", 1)[0]
        if flag in DROPPED:
            skip = DROPPED[flag] if "=" not in word else 0
            continue
        kept.append(word)
    return kept


def manifests(catalogue: Catalogue) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The manifests of the enabled models, and why the others have none."""
    made, skipped = [], {}
    for model in catalogue.enabled():
        reason = exportable(model)
        if reason is None:
            made.append(manifest(model))
        else:
            skipped[model.id] = reason
    return made, skipped


def helm_values() -> dict[str, Any]:
    """KubeAI's Helm values for the GB10 profile the manifests name (DGX Spark nodes)."""
    return {
        "resourceProfiles": {
            RESOURCE_PROFILE: {
                "imageName": "nvidia-gpu",
                "limits": {"nvidia.com/gpu": "1"},
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-GB10"},
            }
        },
        "modelAutoscaling": {"interval": "10s", "timeWindow": "10m"},
    }
