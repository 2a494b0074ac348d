"""The system tier: a private systemd (real D-Bus, journald, podman, Quadlet, vLLM) for the session.

`scripts/test` installs every part first (scripts/bootstrap); a missing part
fails these tests rather than skipping them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from testbed import PrivateSystemd, wait_for  # noqa: E402

__all__ = ["ROOT", "SPARKD", "PrivateSystemd", "wait_for"]

QUADLET = Path("/usr/libexec/podman/quadlet")
SPARKD = str(ROOT / ".venv" / "bin" / "sparkd")


def require_parts() -> None:
    missing = [
        what
        for what, ok in [
            ("root", os.geteuid() == 0),
            ("unshare and nsenter", bool(shutil.which("unshare") and shutil.which("nsenter"))),
            ("podman", bool(shutil.which("podman"))),
            (f"the Quadlet generator at {QUADLET}", QUADLET.is_file()),
            ("the sparkd command in .venv", Path(SPARKD).is_file()),
        ]
        if not ok
    ]
    if missing:
        pytest.fail("the system test bed lacks " + ", ".join(missing) + "; run scripts/bootstrap")


@pytest.fixture(scope="session")
def bed() -> Iterator[PrivateSystemd]:
    require_parts()
    stale = PrivateSystemd.existing()
    if stale is not None:
        stale.poweroff()  # left by an interrupted run or the demo: start from a clean boot
    booted = PrivateSystemd.boot()
    try:
        yield booted
    finally:
        booted.poweroff()


@pytest.fixture(scope="module")
def sparkd(bed: PrivateSystemd, request: pytest.FixtureRequest) -> Iterator[PrivateSystemd]:
    """sparkd installed in the bed beside fake engines, for one module; `SPARKD_SETTINGS` in the
    module replaces its settings."""
    from tests.system.sparkd_bed import install, uninstall

    install(bed, getattr(request.module, "SPARKD_SETTINGS", "quiet_exit = 0\n"))
    yield bed
    uninstall(bed)
