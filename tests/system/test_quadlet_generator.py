"""The real Quadlet generator reads every unit sparkd renders, without a warning."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.system.conftest import QUADLET, ROOT, require_parts


def dry_run(directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUADLET_UNIT_DIRS": str(directory)}
    return subprocess.run([str(QUADLET), "-dryrun"], capture_output=True, text=True, env=env, check=False)


def complaints(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Loading source unit file" not in line and line.strip()]


def test_the_generator_accepts_every_shipped_unit_without_a_warning() -> None:
    require_parts()
    units = sorted((ROOT / "quadlets").glob("*.container"))
    result = dry_run(ROOT / "quadlets")
    assert result.returncode == 0, result.stderr
    assert complaints(result.stderr) == []
    generated = {line.strip("-") for line in result.stdout.splitlines() if line.startswith("---")}
    assert generated == {u.name.replace(".container", ".service") for u in units}


def test_the_dry_run_would_catch_a_bad_unit(tmp_path: Path) -> None:
    require_parts()
    (tmp_path / "sparkd-bad.container").write_text("[Container]\nImage=short-name\nNoSuchKey=1\n")
    result = dry_run(tmp_path)
    assert result.returncode != 0 or complaints(result.stderr)


def test_the_generator_accepts_both_halves_of_a_two_spark_model() -> None:
    require_parts()
    halves = ROOT / "tests" / "golden" / "quadlet-two-sparks"
    result = dry_run(halves)
    assert result.returncode == 0, result.stderr
    assert complaints(result.stderr) == []
    generated = {line.strip("-") for line in result.stdout.splitlines() if line.startswith("---")}
    assert generated == {"sparkd-gpt-oss-120b.service", "sparkd-worker-gpt-oss-120b.service"}
    assert "ExecStart=" in result.stdout and "ray start --head" in result.stdout
