"""Verbs about model weights: pull (from the hub, with progress) and rm (free the disk)."""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sparkd.commands import EXIT_FAILED, EXIT_USAGE, Verbs, catalogue_of
from sparkd.commands.output import bar

if TYPE_CHECKING:
    import argparse

    from sparkd.catalogue import Catalogue
    from sparkd.model import Model
    from sparkd.progress import Progress
    from sparkd.pull import Download, Plan
    from sparkd.quadlet import HostFacts
    from sparkd.settings import Settings

EXIT_INTERRUPTED = 130


def register(verbs: Verbs) -> None:
    pull = verbs.add(
        "pull",
        "download models' weights, with progress",
        _pull,
        "Download each model's weights from the hub into the cache its engine reads (resumable: "
        "an interrupted pull goes on where it stopped). Refused up front when the disk cannot "
        "hold them. Uses the HF_TOKEN secret when stored. Once pulled, a model's unit runs offline.",
    )
    pull.add_argument("models", nargs="*", metavar="MODEL")
    pull.add_argument("--enabled", action="store_true", help="every enabled model")
    pull.add_argument("--revision", default="main", help="a branch, tag or commit (default: main)")
    remove = verbs.add(
        "rm", "delete a model's downloaded weights", _rm, "Delete a model's weights from disk."
    )
    remove.add_argument("model", metavar="MODEL")


def progress_dir(settings: Settings) -> Path:
    """Where a running pull says how far it is (read by the daemon for status and waiting clients)."""
    return settings.pulls_dir


def _pull(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd.hostfacts import detect_host

    catalogue = catalogue_of(settings)
    if args.enabled:
        chosen = [m for m in catalogue.enabled() if _hub_model(m)]
    else:
        if not args.models:
            print("sparkd: name the models to pull, or --enabled", file=sys.stderr)
            return EXIT_USAGE
        chosen = []
        for name in args.models:
            model = catalogue.resolve(name)
            if model is None:
                print(f"sparkd: no model {name!r}", file=sys.stderr)
                return EXIT_USAGE
            if not _hub_model(model):
                print(f"{model.id}: its weights ({model.weights}) are not a hub download; nothing to pull")
                continue
            chosen.append(model)
    host = detect_host(settings)
    for model in chosen:
        code = pull_one(model, catalogue, host, settings, args.revision)
        if code != 0:
            return code
    if chosen:
        _render_again(settings, catalogue, host)
    return 0


def _hub_model(model: Model) -> bool:
    from sparkd.weights import hub_repo

    return hub_repo(model) is not None


def pull_one(model: Model, catalogue: Catalogue, host: HostFacts, settings: Settings, revision: str) -> int:
    from sparkd import secrets, weights
    from sparkd.pull import Download, PullError, plan_pull, shortfall

    repo = weights.hub_repo(model)
    cache = weights.host_cache(model, host)
    assert repo is not None
    if cache is None:
        inside = weights.container_cache(model)
        print(f"sparkd: {model.id}: no volume holds its cache ({inside})", file=sys.stderr)
        return EXIT_USAGE
    token = secrets.value(settings.secrets_dir, "HF_TOKEN")
    try:
        plan = plan_pull(repo, revision, cache, token, settings.hub_endpoint)
    except PullError as error:
        print(f"sparkd: {model.id}: {error}", file=sys.stderr)
        return EXIT_FAILED
    missing = shortfall(plan, _free_bytes(cache))
    if missing:
        to_go = (plan.total - plan.done_bytes()) / 1e9
        print(
            f"sparkd: {model.id} needs {plan.total / 1e9:.1f} GB ({to_go:.1f} to go) and {cache} "
            f"lacks {missing / 1e9:.1f} GB of free space (1 GiB stays free)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"{model.id}: {repo}@{plan.commit[:12]}, {len(plan.files)} files, {plan.total / 1e9:.2f} GB")
    stop = threading.Event()
    outcome: list[BaseException] = []
    download = Download(plan, token, settings.hub_endpoint, stop)
    worker = threading.Thread(target=_run, args=(download, outcome), daemon=True)
    started = time.monotonic()
    report = ProgressReport(model.id, progress_dir(settings) / f"{model.id}.json", sys.stdout.isatty())
    worker.start()
    try:
        _watch(plan, worker, report)
    except KeyboardInterrupt:
        stop.set()
        worker.join()
        report.finish(plan, f"interrupted at {plan.done_bytes() / 1e9:.1f} GB")
        print(f"\n{model.id}: interrupted; `sparkd pull {model.id}` goes on from here", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome:
        report.finish(plan, str(outcome[0]))
        print(f"sparkd: {model.id}: {outcome[0]}", file=sys.stderr)
        return EXIT_FAILED
    record = weights.Pulled(repo, revision, plan.commit, plan.total, len(plan.files))
    for other in catalogue:  # models on the same weights share the pull
        if weights.hub_repo(other) == repo and weights.host_cache(other, host) == cache:
            weights.write_record(host.state_dir, other.id, record)
    report.finish(plan, None)
    took = time.monotonic() - started
    print(f"{model.id}: pulled {plan.total / 1e9:.2f} GB in {took:.0f}s into {plan.folder}")
    return 0


def _run(download: Download, outcome: list[BaseException]) -> None:
    try:
        download.run()
    except BaseException as error:  # reported by the main thread
        outcome.append(error)


def _watch(plan: Plan, worker: threading.Thread, report: ProgressReport) -> None:
    from sparkd.progress import Progress, RateMeter

    meter = RateMeter()
    while worker.is_alive():
        worker.join(0.5)
        done = plan.done_bytes()
        report.show(Progress(done, plan.total, meter.add(time.monotonic(), done)))


class ProgressReport:
    """A pull's progress: a bar on a terminal, a line every few seconds otherwise, and a file
    the daemon reads (for `sparkd status` and clients waiting for the model)."""

    def __init__(self, model_id: str, file: Path, terminal: bool, every: float = 5.0) -> None:
        self.model_id = model_id
        self.file = file
        self.terminal = terminal
        self.every = every
        self._last_line = 0.0
        # Without a runtime directory (not root, no systemd) the terminal still shows it.
        with contextlib.suppress(OSError):
            file.parent.mkdir(parents=True, exist_ok=True)

    def show(self, progress: Progress) -> None:
        self._write(progress)
        if self.terminal:
            print(
                f"\r{self.model_id}: {bar(progress.done, progress.total)} {progress.line()}\033[K",
                end="",
                flush=True,
            )
        elif time.monotonic() - self._last_line >= self.every:
            self._last_line = time.monotonic()
            print(f"{self.model_id}: {progress.line()}", flush=True)

    def finish(self, plan: Plan, error: str | None) -> None:
        from sparkd.progress import Progress

        self._write(Progress(plan.done_bytes(), plan.total, 0.0, finished=True, error=error))
        if self.terminal:
            print()

    def _write(self, progress: Progress) -> None:
        with contextlib.suppress(OSError):
            temporary = self.file.with_suffix(".tmp")
            temporary.write_text(progress.to_json())
            temporary.replace(self.file)


def _free_bytes(path: Path) -> int:
    """Free space where `path` is (or would be made)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def _rm(args: argparse.Namespace, settings: Settings) -> int:
    from sparkd import weights
    from sparkd.hostfacts import detect_host
    from sparkd.systemd import unit_active

    catalogue = catalogue_of(settings)
    model = catalogue.resolve(args.model)
    if model is None:
        print(f"sparkd: no model {args.model!r}", file=sys.stderr)
        return EXIT_USAGE
    host = detect_host(settings)
    repo, cache = weights.hub_repo(model), weights.host_cache(model, host)
    if repo is None or cache is None:
        print(f"sparkd: {model.id}'s weights are not a hub download sparkd keeps", file=sys.stderr)
        return EXIT_USAGE
    sharing = [m for m in catalogue if weights.hub_repo(m) == repo and weights.host_cache(m, host) == cache]
    running = [m.id for m in sharing if unit_active(m.unit_name)]
    if running:
        print(f"sparkd: {', '.join(running)} runs on these weights: `sparkd stop` it first", file=sys.stderr)
        return EXIT_FAILED
    freed = weights.bytes_on_disk(model, host)
    shutil.rmtree(cache / weights.repo_folder(repo), ignore_errors=True)
    for other in sharing:
        weights.forget_record(host.state_dir, other.id)
    print(f"removed {repo} from {cache} ({freed / 1e9:.2f} GB)")
    if len(sharing) > 1:
        print(f"(also the weights of {', '.join(m.id for m in sharing if m is not model)})")
    _render_again(settings, catalogue, host)
    return 0


def _render_again(settings: Settings, catalogue: Catalogue, host: HostFacts) -> None:
    """Units name whether a model runs offline: render them again where systemd runs."""
    from sparkd.commands.catalogue import write_units

    if Path("/run/systemd/system").is_dir():
        write_units(settings, catalogue, host)
