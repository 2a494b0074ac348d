"""`sparkd images` with real podman: a recipe a drop-in declares is built on its base, rebuilt and pruned."""

from __future__ import annotations

import subprocess

from testbed import BED_CONFIG, SPARKD, PrivateSystemd

RECIPES = f"{BED_CONFIG}/models.d/recipes.toml"
DECLARED = """
[images.bed-base]
containerfile = "bed-images/base/Containerfile"
tag = "localhost/sparkd-bed-base:1"

[images.bed-top]
containerfile = "bed-images/top/Containerfile"
tag = "localhost/sparkd-bed-top:1"
base = "bed-base"
"""


def images(bed: PrivateSystemd, *args: str) -> subprocess.CompletedProcess[str]:
    return bed.run(
        str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml", "images", *args, check=False, timeout=300
    )


def image_id(bed: PrivateSystemd, tag: str) -> str:
    found = bed.run("podman", "image", "inspect", "--format", "{{.Id}}", tag, check=False)
    return found.stdout.strip() if found.returncode == 0 else ""


def test_a_declared_recipe_is_built_on_its_base_rebuilt_and_pruned(sparkd: PrivateSystemd) -> None:
    bed = sparkd
    models_d = f"{BED_CONFIG}/models.d"
    # Built from nothing (no registry here): the base from scratch, the top on it via BASE_IMAGE.
    bed.write_file(f"{models_d}/bed-images/base/Containerfile", "FROM scratch\nCOPY base.txt /\n")
    bed.write_file(f"{models_d}/bed-images/base/base.txt", "base\n")
    bed.write_file(
        f"{models_d}/bed-images/top/Containerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY top.txt /\n"
    )
    bed.write_file(f"{models_d}/bed-images/top/top.txt", "top\n")
    bed.write_file(RECIPES, DECLARED)
    try:
        built = images(bed, "build", "bed-top")
        assert built.returncode == 0, built.stdout + built.stderr
        assert image_id(bed, "localhost/sparkd-bed-base:1") and image_id(bed, "localhost/sparkd-bed-top:1")
        listed = images(bed, "list").stdout
        assert any(
            line.split()[:4] == ["bed-top", "localhost/sparkd-bed-top:1", "yes", "bed-base"]
            and line.split()[4] == RECIPES
            for line in listed.splitlines()
        ), listed

        # Present: nothing to do. --rebuild: both again, without the cache, so new images.
        assert images(bed, "build", "bed-top").stdout.count("podman build") == 1  # the asked one only
        before = image_id(bed, "localhost/sparkd-bed-top:1")
        rebuilt = images(bed, "build", "--rebuild", "bed-top")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert rebuilt.stdout.count("--no-cache") == 2
        assert image_id(bed, "localhost/sparkd-bed-top:1") not in ("", before)

        # No enabled model uses them: prune says so first, then removes them; the demo's stays.
        said = images(bed, "prune", "--dry-run").stdout
        assert "would remove localhost/sparkd-bed-top:1" in said and "sparkd-demo" not in said, said
        assert image_id(bed, "localhost/sparkd-bed-top:1")
        pruned = images(bed, "prune")
        assert pruned.returncode == 0, pruned.stderr
        assert (
            image_id(bed, "localhost/sparkd-bed-top:1"),
            image_id(bed, "localhost/sparkd-bed-base:1"),
        ) == ("", "")
        assert image_id(bed, "localhost/sparkd-demo:latest")
    finally:
        bed.run("rm", "-rf", RECIPES, f"{models_d}/bed-images")
        bed.run(
            "podman", "rmi", "-f", "localhost/sparkd-bed-top:1", "localhost/sparkd-bed-base:1", check=False
        )


def test_a_broken_recipe_is_named_with_its_file(sparkd: PrivateSystemd) -> None:
    sparkd.write_file(
        RECIPES, '[images.bad]\ncontainerfile = "nowhere/Containerfile"\ntag = "localhost/bad:1"\n'
    )
    try:
        listed = images(sparkd, "list")
        assert listed.returncode == 2
        assert f"{RECIPES}: image 'bad': containerfile" in listed.stderr
    finally:
        sparkd.run("rm", "-f", RECIPES)
