from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparkd.catalogue import Catalogue, Model, load_catalogue
from sparkd.quadlet import HostFacts, quote_word, render_all, render_container
from tests.unit.podman49 import problems_for_podman49, sections

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "quadlet"
SHIPPED_SET = ROOT / "quadlets"
DGX_SPARK = HostFacts(gpu=True)  # the host the checked-in quadlets/ set is rendered for
NO_GPU = HostFacts(gpu=False)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def model(catalogue: Catalogue, model_id: str) -> Model:
    found = catalogue.resolve(model_id)
    assert found is not None
    return found


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.container")), ids=lambda p: p.stem)
def test_representative_models_render_as_their_golden_files(catalogue: Catalogue, golden: Path) -> None:
    model_id = golden.stem.removeprefix("sparkd-")
    assert render_container(model(catalogue, model_id), DGX_SPARK) == golden.read_text()


def test_the_checked_in_quadlet_set_matches_the_shipped_catalogue(catalogue: Catalogue) -> None:
    """Refresh it: `sparkd --config /dev/null render --quadlet-dir quadlets --gpu yes --no-reload`."""
    rendered = render_all(list(catalogue), DGX_SPARK)
    on_disk = {p.name: p.read_text() for p in SHIPPED_SET.glob("*.container")}
    assert sorted(on_disk) == sorted(rendered), "quadlets/ lists other models than the catalogue"
    stale = [name for name in rendered if on_disk[name] != rendered[name]]
    assert not stale, f"quadlets/ is out of date for {stale}"


def test_every_rendered_unit_is_one_podman_49_accepts(catalogue: Catalogue) -> None:
    for host in (DGX_SPARK, NO_GPU):
        for name, text in render_all(list(catalogue), host).items():
            assert problems_for_podman49(name, text) == [], name


def test_the_podman_49_check_catches_what_49_rejects() -> None:
    text = "[Container]\nImage=x\nStopTimeout=30\nNotify=healthy\nUlimit=a=1\nUlimit=b=2\n"
    problems = problems_for_podman49("sparkd-x@.container", text)
    assert len(problems) == 4


def test_model_units_are_named_for_sparkd_and_never_installed(catalogue: Catalogue) -> None:
    for name, text in render_all(list(catalogue), DGX_SPARK).items():
        assert name.startswith("sparkd-")
        assert "Install" not in sections(text)


def test_engines_listen_on_loopback_only(catalogue: Catalogue) -> None:
    for m in catalogue.enabled():
        parsed = dict(sections(render_container(m, DGX_SPARK))["Container"])
        assert parsed["Network"] == "host"
        assert f"--host 127.0.0.1 --port {m.engine_port}" in parsed["Exec"]
        assert "PublishPort" not in parsed


def test_gpu_only_where_the_host_has_one_and_the_model_wants_it(catalogue: Catalogue) -> None:
    gpt = model(catalogue, "gpt-oss-20b")
    demo = model(catalogue, "demo")
    assert "AddDevice=nvidia.com/gpu=all" in render_container(gpt, DGX_SPARK)
    assert "nvidia.com/gpu" not in render_container(gpt, NO_GPU)
    assert "nvidia.com/gpu" not in render_container(demo, DGX_SPARK)


def test_the_stop_timeout_lets_the_engine_exit_before_systemd_would_kill(catalogue: Catalogue) -> None:
    text = render_container(model(catalogue, "demo"), DGX_SPARK)
    assert "PodmanArgs=--stop-timeout=30" in text
    assert "TimeoutStopSec=1m" in text


def test_volume_roots_become_the_hosts_directories(catalogue: Catalogue) -> None:
    host = HostFacts(gpu=False, hf_cache_dir=Path("/srv/hf"), cache_dir=Path("/srv/cache"))
    text = render_container(model(catalogue, "glm-4.7-flash-awq"), host)
    assert "Volume=/srv/hf:/root/.cache/huggingface" in text
    assert "Volume=/srv/cache/flashinfer:/root/.cache/flashinfer" in text


def test_rendering_is_deterministic(catalogue: Catalogue) -> None:
    assert render_all(list(catalogue), DGX_SPARK) == render_all(list(catalogue), DGX_SPARK)


def unquote(text: str) -> str:
    """Read one word back the way Quadlet splits it and systemd then expands it."""
    if text.startswith('"'):
        assert text.endswith('"')
        body, out, i = text[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\":
                i += 1
            out.append(body[i])
            i += 1
        text = "".join(out)
    return text.replace("%%", "%").replace("$$", "$")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_any_argument_survives_quoting(word: str) -> None:
    assert unquote(quote_word(word)) == word


def test_json_arguments_are_quoted_for_quadlet() -> None:
    assert quote_word('{"a": 1}') == '"{\\"a\\": 1}"'
    assert quote_word("50%") == '"50%%"'
    assert quote_word("--port") == "--port"
