"""A model as `/v1/models` lists it: OpenAI's fields, and what sparkd knows besides."""

from __future__ import annotations

from typing import Any

from sparkd.catalogue import Model


def model_entry(phase: str, model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": "sparkd",
        "state": phase,
        "status": model.status.value,
        "role": model.role.value,
        "context_length": model.context_length,
        "max_model_len": model.context_length,
        "client_context": model.client_context or model.context_length,
        "aliases": list(model.aliases),
        "api_families": [family.value for family in model.api_families or ()],
        "description": model.description,
    }


def peer_entry(host: str, model_id: str) -> dict[str, Any]:
    """A model a peer sparkd serves: listed here, answered through here, marked with its host."""
    return {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": f"sparkd@{host}",
        "sparkd": {"host": host},
    }
