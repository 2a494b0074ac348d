"""The names sparkd gives things in systemd and podman, and the journalctl line that reads them.

Every model `<id>` has a Quadlet file `sparkd-<id>.container`, which the
generator turns into `sparkd-<id>.service` running container `sparkd-<id>`;
its idle timer is the transient `sparkd-idle-<id>.timer` with its oneshot
`sparkd-idle-<id>.service`; a download of its weights for a request is
`sparkd-pull@<id>.service` (units/sparkd-pull@.service). A model that spans two
Sparks (`nodes = 2`) has, on the Spark across the link, the Ray worker half
`sparkd-worker-<id>.container`. Written here once and parsed back here, so no
other module knows the pattern.
"""

from __future__ import annotations

import shlex

DAEMON_UNIT = "sparkd.service"
PREFIX = "sparkd-"
IDLE_PREFIX = "sparkd-idle-"
PULL_PREFIX = "sparkd-pull@"
WORKER = "worker-"  # sparkd-worker-<id>: the Ray worker half of a two-Spark model
# Model ids that would read as one of sparkd's own units.
RESERVED_ID_PREFIXES = ("idle-", WORKER)
DROP_CACHES_UNIT = "sparkd-drop-caches.service"  # units/: drops clean page cache before a start
MODEL_UNITS = "sparkd-*.service"  # a pattern for ListUnitsByPatterns and journalctl -u


def model_unit(model_id: str) -> str:
    return f"{PREFIX}{model_id}.service"


def quadlet_file(model_id: str) -> str:
    return f"{PREFIX}{model_id}.container"


def container(model_id: str) -> str:
    return f"{PREFIX}{model_id}"


def idle_timer(model_id: str) -> str:
    return f"{IDLE_PREFIX}{model_id}.timer"


def idle_service(model_id: str) -> str:
    return f"{IDLE_PREFIX}{model_id}.service"


def worker_of(model_id: str) -> str:
    """The id the Ray worker half of two-Spark model `model_id` goes by here (its unit is
    `model_unit()` of it, like any model's)."""
    return f"{WORKER}{model_id}"


def whole_of(model_id: str) -> str:
    """The catalogue model a worker half belongs to (itself for any other model)."""
    return model_id.removeprefix(WORKER)


def pull_unit(model_id: str) -> str:
    return f"{PULL_PREFIX}{model_id}.service"


def pull_model_of(unit: str) -> str | None:
    """The model whose weights `sparkd-pull@<id>.service` downloads, or None."""
    if unit.startswith(PULL_PREFIX) and unit.endswith(".service"):
        return unit[len(PULL_PREFIX) : -len(".service")]
    return None


def is_sparkd_unit(unit: str) -> bool:
    """Any unit sparkd made or watches (models and idle timers)."""
    return unit.startswith(PREFIX)


def model_of(unit: str) -> str | None:
    """The model a `sparkd-<id>.service` runs; None for any other unit (idle and pull ones included)."""
    if (
        unit.startswith(PREFIX)
        and unit.endswith(".service")
        and not unit.startswith((IDLE_PREFIX, PULL_PREFIX))
        and unit != DROP_CACHES_UNIT
    ):
        return unit[len(PREFIX) : -len(".service")]
    return None


def idle_model_of(unit: str) -> str | None:
    """The model whose idle timer ran `unit` (`sparkd-idle-<id>.service`), or None."""
    if unit.startswith(IDLE_PREFIX) and unit.endswith(".service"):
        return unit[len(IDLE_PREFIX) : -len(".service")]
    return None


def idle_command(model_id: str) -> bytes:
    """What an idle timer runs: nothing while sparkd runs (it decides), the model's stop when it does not."""
    unit = shlex.quote(model_unit(model_id))
    return f"systemctl is-active --quiet {DAEMON_UNIT} || exec systemctl --no-block stop {unit}".encode()


def journalctl(
    unit: str,
    lines: int,
    *,
    output: str = "short-iso",
    since: str | None = None,
    follow: bool = False,
) -> list[str]:
    """The journalctl command line that shows `unit`'s last `lines` entries (and follows them)."""
    argv = ["journalctl", "-u", unit, "--no-pager", "-o", output, "-n", str(lines)]
    if since:
        argv += ["--since", since]
    if follow:
        argv.append("--follow")
    return argv
