"""The sparkd under test: this checkout's .deb, installed in the private systemd, and its catalogue."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed import PrivateSystemd

from bench.tools import DEMO_ENGINE, ENGINE_A, ENGINE_B, ENGINE_STREAM, ROOT
from tests.fake_engine import catalogue_entry

BOTH_APIS = 'api_families = ["openai", "anthropic"]'  # the fake engine speaks both
BASE_MODELS = (
    '[models."qwen3.5-0.8b"]\nstatus = "disabled"\n'
    + catalogue_entry(
        "bench-a", ENGINE_A, ', "--interval", "0", "--chunks", "1", "--start-delay", "1"', BOTH_APIS
    )
    + catalogue_entry("bench-b", ENGINE_B, ', "--interval", "0", "--chunks", "1", "--start-delay", "1"')
    + catalogue_entry(
        "bench-stream", ENGINE_STREAM, ', "--interval", "0.05", "--chunks", "100000"', BOTH_APIS
    )
)


def many_models(count: int) -> str:
    return "".join(
        f'\n[models.bulk-{i:03d}]\nengine = "generic"\nimage = "localhost/sparkd-demo:latest"\n'
        f'command = ["true"]\ncontext_length = 4096\ngpu = false\n'
        for i in range(count)
    )


@contextmanager
def packaged_sparkd(bed: PrivateSystemd) -> Iterator[str]:
    """This checkout's .deb, built and installed with apt as a user installs it; purged afterwards.

    Yields what runs: the package's version and its Python's.
    """
    if subprocess.run(["dpkg", "-s", "sparkd"], capture_output=True, check=False).returncode == 0:
        raise SystemExit("the benchmark installs its own build of sparkd: remove the installed one first")
    built = subprocess.run(
        [str(ROOT / "packaging" / "build-deb"), "--out", str(ROOT / "build")],
        capture_output=True,
        text=True,
        check=True,
    )
    deb = built.stdout.strip().splitlines()[-1]
    bed.apt("install", deb)
    try:
        version = bed.run("dpkg-query", "-W", "-f", "${Version}", "sparkd").stdout.strip()
        python = bed.run(
            "/usr/lib/sparkd/venv/bin/python", "-c", "import platform; print(platform.python_version())"
        ).stdout.strip()
        yield f"sparkd {version} from its .deb, on Python {python}"
    finally:
        # The purge takes /var/lib/sparkd, where the demo engine (minutes to make) lives too.
        kept = Path("/var/lib/sparkd-demo.bench")
        if DEMO_ENGINE.exists():
            DEMO_ENGINE.rename(kept)
        try:
            bed.apt("purge", "sparkd")
        finally:
            if kept.exists():
                DEMO_ENGINE.parent.mkdir(parents=True, exist_ok=True)
                kept.rename(DEMO_ENGINE)
