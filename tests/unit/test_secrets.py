"""Secrets: stored root-only, one file each; units name the file, never the value."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sparkd import secrets
from sparkd.catalogue import Model
from sparkd.quadlet import HostFacts, render_container

VALUE = "hf_sEcReT0123456789"


def test_a_secret_is_one_root_only_file_in_a_private_directory(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    path = secrets.store(directory, "HF_TOKEN", VALUE)
    assert path.read_text() == f"HF_TOKEN={VALUE}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert secrets.names(directory) == ["HF_TOKEN"]


def test_storing_again_replaces_it_and_removing_forgets_it(tmp_path: Path) -> None:
    secrets.store(tmp_path, "HF_TOKEN", "old-value")
    secrets.store(tmp_path, "HF_TOKEN", VALUE)
    assert (tmp_path / "HF_TOKEN").read_text() == f"HF_TOKEN={VALUE}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["HF_TOKEN"]  # no temporary left behind
    assert secrets.remove(tmp_path, "HF_TOKEN") is True
    assert secrets.remove(tmp_path, "HF_TOKEN") is False
    assert secrets.names(tmp_path) == []


@pytest.mark.parametrize("name", ["hf_token", "HF-TOKEN", "../HF_TOKEN", "", "A" * 65])
def test_a_name_that_is_not_an_environment_variable_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(secrets.SecretError):
        secrets.store(tmp_path, name, VALUE)


@pytest.mark.parametrize("value", ["", "two\nlines", "nul\0"])
def test_a_value_that_would_break_the_file_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(secrets.SecretError):
        secrets.store(tmp_path, "HF_TOKEN", value)


def gated(**fields: object) -> Model:
    return Model(
        id="gemma",
        image="img",
        weights="google/gemma",
        context_length=8192,
        port=18000,
        secrets=("HF_TOKEN",),
        **fields,  # type: ignore[arg-type]
    )


def test_a_unit_names_the_file_of_a_stored_secret_it_lists() -> None:
    host = HostFacts(gpu=True, secrets_dir=Path("/etc/sparkd/secrets"), secrets=frozenset({"HF_TOKEN"}))
    unit = render_container(gated(), host)
    assert "EnvironmentFile=/etc/sparkd/secrets/HF_TOKEN\n" in unit
    assert "HF_TOKEN=" not in unit


def test_a_secret_not_stored_is_not_named_so_the_engine_still_starts() -> None:
    assert "EnvironmentFile" not in render_container(gated(), HostFacts(gpu=True))
