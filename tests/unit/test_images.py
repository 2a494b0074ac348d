from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sparkd import images
from sparkd.catalogue import load_catalogue
from sparkd.images import BY_TAG, RECIPES, build_plan, containers_dir, podman_build_argv

CONTAINERS = Path(__file__).resolve().parents[2] / "custom-docker-containers"


def test_every_local_image_of_the_catalogue_has_a_recipe() -> None:
    local = {m.image for m in load_catalogue().enabled() if m.image.startswith("localhost/")}
    assert local <= set(BY_TAG)


def test_every_recipe_has_a_containerfile_and_a_readme() -> None:
    for recipe in RECIPES:
        assert (CONTAINERS / recipe.directory / "Containerfile").is_file(), recipe.name
    assert (CONTAINERS / "README.md").is_file()


def test_bases_are_built_first_and_only_when_missing() -> None:
    nothing = build_plan(["vllm-glm-4.7-flash-awq"], present=lambda tag: False)
    assert [r.name for r in nothing] == ["vllm-node-mxfp4", "vllm-node-tf5-cu131", "vllm-glm-4.7-flash-awq"]
    bases_there = build_plan(["vllm-glm-4.7-flash-awq"], present=lambda tag: True)
    assert [r.name for r in bases_there] == ["vllm-glm-4.7-flash-awq"]


def test_an_unknown_recipe_is_named() -> None:
    with pytest.raises(KeyError, match="no image recipe"):
        build_plan(["nope"], present=lambda tag: False)


def test_the_build_uses_the_catalogues_tag_and_the_shared_context() -> None:
    recipe = BY_TAG["localhost/vllm-node-tf5:cu131"]
    argv = podman_build_argv(recipe, containers_dir())
    assert argv[:4] == ["podman", "build", "--tag", "localhost/vllm-node-tf5:cu131"]
    assert "BASE_IMAGE=localhost/vllm-node-mxfp4:latest" in argv
    assert argv[-1] == str(containers_dir())


@pytest.mark.parametrize(
    "containerfile", sorted(CONTAINERS.glob("*/Containerfile")), ids=lambda p: p.parent.name
)
def test_hadolint_finds_no_warnings(containerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(containerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_copy_and_add_sources_are_read_but_urls_and_stages_are_not() -> None:
    text = (
        "FROM x AS build\nCOPY --from=build /wheels /wheels\nCOPY mods/lib a/b /dest/\n"
        "ADD https://example.com/enc.tiktoken /enc/\nADD --chown=0:0 rootfs.tar /\n"
        "RUN cp a b\n"
    )
    assert images.copied_sources(text) == ["mods/lib", "a/b", "rootfs.tar"]


@pytest.mark.parametrize("recipe", images.RECIPES, ids=lambda r: r.name)
def test_every_recipe_finds_what_it_copies_in_the_checkout(recipe: images.Recipe) -> None:
    assert images.missing_sources(recipe, images.REPO_CONTAINERS) == []


def test_a_context_without_mods_is_caught_before_podman_runs(tmp_path: Path) -> None:
    recipe = images.BY_NAME["vllm-glm-4.7-flash-awq"]
    (tmp_path / recipe.directory).mkdir()
    source = images.REPO_CONTAINERS / recipe.directory / "Containerfile"
    (tmp_path / recipe.directory / "Containerfile").write_text(source.read_text())
    assert "mods/lib" in images.missing_sources(recipe, tmp_path)


def test_podman_build_steps_are_read_for_the_progress_bar() -> None:
    assert images.step_of("STEP 2/3: COPY a.txt /\n") == (2, 3, "COPY a.txt /")
    assert images.step_of("--> 570e544ab94") is None
    from sparkd.commands.output import bar

    assert bar(2, 4, width=8) == "[####    ]"
    assert bar(5, 4, width=8) == "[########]"
