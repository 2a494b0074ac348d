"""Files one model reads from another's download: where one looks is where the other writes."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from sparkd.catalogue import Catalogue, load_catalogue
from sparkd.quadlet import HostFacts, host_side

HOST = HostFacts(gpu=True)
UTILITY = "qwen3.5-0.8b"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def template_readers(catalogue: Catalogue) -> list[str]:
    weights = catalogue.models[UTILITY].weights
    return [m.id for m in catalogue if m.environment.get("QWEN35_CHAT_TEMPLATE_MODEL_ID") == weights]


def test_the_qwen36_lanes_read_the_template_from_the_utility(catalogue: Catalogue) -> None:
    assert len(template_readers(catalogue)) == 5


@pytest.mark.parametrize("reader", template_readers(load_catalogue()))
def test_a_lane_looks_for_the_template_where_the_utility_downloads_it(
    catalogue: Catalogue, reader: str
) -> None:
    utility, model = catalogue.models[UTILITY], catalogue.models[reader]
    downloads = host_side(utility, utility.environment["HF_HUB_CACHE"], HOST)
    looks = host_side(model, model.environment["QWEN35_CHAT_TEMPLATE_CACHE_ROOT"], HOST)
    assert downloads is not None and looks == downloads, (looks, downloads)
    assert PurePosixPath(downloads).is_absolute()


@pytest.mark.parametrize("reader", template_readers(load_catalogue()))
def test_a_lane_names_the_utility_it_needs(catalogue: Catalogue, reader: str) -> None:
    assert UTILITY in catalogue.models[reader].needs


def test_disabling_a_needed_model_is_warned_about(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    (tmp_path / "off.toml").write_text(f'[models."{UTILITY}"]\nstatus = "disabled"\n')
    catalogue = load_catalogue(dropin_dir=tmp_path)
    warned = [w for w in catalogue.warnings if UTILITY in w]
    assert len(warned) == len(template_readers(catalogue)), catalogue.warnings
    assert "chat template" in warned[0] or "needs" in warned[0]
