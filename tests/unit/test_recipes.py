"""Image recipes a drop-in declares: read beside the shipped ones, built in order, pruned when unused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkd.images import SHIPPED, build_plan, missing_sources, needed, podman_build_argv
from sparkd.recipes import RecipeError, load_recipes


def dropin(directory: Path, text: str, containerfiles: tuple[str, ...] = ("mine/Containerfile",)) -> Path:
    for name in containerfiles:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY patch.py /opt/\n")
    (directory / "mine.toml").write_text(text)
    return directory


def test_a_declared_recipe_joins_the_shipped_ones(tmp_path: Path) -> None:
    dropin(tmp_path, '[images.mine]\ncontainerfile = "mine/Containerfile"\ntag = "localhost/mine:1"\n')
    recipes = load_recipes(tmp_path)
    assert set(SHIPPED) < set(recipes)
    mine = recipes["mine"]
    assert (mine.tag, mine.needs, mine.declared_in) == ("localhost/mine:1", (), tmp_path / "mine.toml")
    # Paths are the drop-in's: its Containerfile, and that file's directory as the context.
    argv = podman_build_argv(mine, Path("/unused"))
    assert argv[argv.index("--file") + 1] == str(tmp_path / "mine" / "Containerfile")
    assert argv[-1] == str(tmp_path / "mine")


def test_a_recipe_on_a_shipped_recipe_builds_that_first_and_reads_it_as_base_image(tmp_path: Path) -> None:
    dropin(
        tmp_path,
        '[images.mine]\ncontainerfile = "mine/Containerfile"\ntag = "localhost/mine:1"\nbase = "vllm-node"\n',
    )
    recipes = load_recipes(tmp_path)
    assert recipes["mine"].needs == ("vllm-node",)
    assert ("BASE_IMAGE", "localhost/vllm-node:latest") in recipes["mine"].build_args
    plan = build_plan(["mine"], present=lambda tag: False, recipes=recipes)
    assert [r.name for r in plan] == ["vllm-node", "mine"]


def test_a_base_named_by_its_tag_is_the_recipe_and_any_other_reference_is_pulled(tmp_path: Path) -> None:
    text = (
        '[images.a]\ncontainerfile = "a/Containerfile"\ntag = "localhost/a:1"\n'
        'base = "localhost/vllm-node-mxfp4:latest"\n'
        '[images.b]\ncontainerfile = "b/Containerfile"\ntag = "localhost/b:1"\n'
        'base = "nvcr.io/nvidia/vllm:25.09-py3"\nbuild_args = { VLLM_REF = "v0.11.0" }\n'
    )
    recipes = load_recipes(dropin(tmp_path, text, ("a/Containerfile", "b/Containerfile")))
    assert recipes["a"].needs == ("vllm-node-mxfp4",)
    assert recipes["b"].needs == ()
    assert dict(recipes["b"].build_args) == {
        "BASE_IMAGE": "nvcr.io/nvidia/vllm:25.09-py3",
        "VLLM_REF": "v0.11.0",
    }


def test_pull_refreshes_only_an_upstream_base_and_rebuild_skips_the_cache(tmp_path: Path) -> None:
    text = (
        '[images.a]\ncontainerfile = "a/Containerfile"\ntag = "localhost/a:1"\nbase = "vllm-node"\n'
        '[images.b]\ncontainerfile = "b/Containerfile"\ntag = "localhost/b:1"\nbase = "docker.io/x/y:1"\n'
    )
    recipes = load_recipes(dropin(tmp_path, text, ("a/Containerfile", "b/Containerfile")))
    on_recipe = podman_build_argv(recipes["a"], Path("/c"), pull=True, fresh=True)
    on_upstream = podman_build_argv(recipes["b"], Path("/c"), pull=True)
    assert ("--pull=always" in on_recipe, "--no-cache" in on_recipe) == (False, True)
    assert ("--pull=always" in on_upstream, "--no-cache" in on_upstream) == (True, False)


def test_rebuild_builds_every_image_of_the_chain_even_when_present() -> None:
    present = build_plan(["vllm-glm-4.7-flash-awq"], present=lambda tag: True)
    rebuilt = build_plan(["vllm-glm-4.7-flash-awq"], present=lambda tag: True, rebuild=True)
    assert [r.name for r in present] == ["vllm-glm-4.7-flash-awq"]
    assert [r.name for r in rebuilt] == ["vllm-node-mxfp4", "vllm-node-tf5-cu131", "vllm-glm-4.7-flash-awq"]


def test_recipes_built_on_each_other_are_refused_by_name(tmp_path: Path) -> None:
    text = (
        '[images.a]\ncontainerfile = "a/Containerfile"\ntag = "localhost/a:1"\nbase = "b"\n'
        '[images.b]\ncontainerfile = "b/Containerfile"\ntag = "localhost/b:1"\nbase = "a"\n'
    )
    recipes = load_recipes(dropin(tmp_path, text, ("a/Containerfile", "b/Containerfile")))
    with pytest.raises(KeyError, match="a -> b -> a"):
        build_plan(["a"], present=lambda tag: False, recipes=recipes)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('containerfile = "nope/Containerfile"\ntag = "localhost/mine:1"\n', "does not exist"),
        ('containerfile = "mine/Containerfile"\n', "tag"),
        ('containerfile = "mine/Containerfile"\ntag = "Localhost/Mine"\n', "not an image reference"),
        (
            'containerfile = "mine/Containerfile"\ntag = "localhost/m:1"\nbase = "no-such"\n',
            "neither a recipe",
        ),
        ('containerfile = "mine/Containerfile"\ntag = "localhost/m:1"\nfrom = "x"\n', "not a known field"),
    ],
)
def test_a_broken_recipe_names_its_file_its_name_and_the_fault(tmp_path: Path, table: str, says: str) -> None:
    dropin(tmp_path, "[images.mine]\n" + table)
    with pytest.raises(RecipeError, match=says) as raised:
        load_recipes(tmp_path)
    assert f"{tmp_path / 'mine.toml'}: image 'mine'" in str(raised.value)


def test_the_context_is_checked_against_what_the_containerfile_copies(tmp_path: Path) -> None:
    dropin(tmp_path, '[images.mine]\ncontainerfile = "mine/Containerfile"\ntag = "localhost/mine:1"\n')
    mine = load_recipes(tmp_path)["mine"]
    assert missing_sources(mine, Path("/unused")) == ["patch.py"]
    (tmp_path / "mine" / "patch.py").write_text("")
    assert missing_sources(mine, Path("/unused")) == []


def test_prune_keeps_what_enabled_models_use_and_every_base_under_it() -> None:
    kept = needed(SHIPPED, ["localhost/vllm-glm-4.7-flash-awq:tf5", "docker.io/not/ours:1"])
    assert kept == {"vllm-glm-4.7-flash-awq", "vllm-node-tf5-cu131", "vllm-node-mxfp4"}


def test_a_catalogue_drop_in_may_hold_recipes_beside_its_models(tmp_path: Path) -> None:
    from sparkd.catalogue import load_catalogue

    dropin(
        tmp_path,
        '[images.mine]\ncontainerfile = "mine/Containerfile"\ntag = "localhost/mine:1"\n'
        '[models.demo]\nimage = "localhost/mine:1"\n',
    )
    assert load_catalogue(dropin_dir=tmp_path).models["demo"].image == "localhost/mine:1"
