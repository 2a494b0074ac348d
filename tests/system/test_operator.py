"""The operator's view of a running sparkd: the CLI (status, start, stop, logs, check) and /metrics."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from testbed import BED_CONFIG, SPARKD, PrivateSystemd

from sparkd.engine_log import loading_progress
from tests.system.conftest import wait_for
from tests.system.sparkd_bed import (
    KEY,
    URL,
    chat,
)


def cli(bed: PrivateSystemd, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return bed.run(str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml", *args, check=False, timeout=timeout)


def test_sparkd_status_shows_what_runs(sparkd: PrivateSystemd) -> None:
    chat("fake-a")
    shown = cli(sparkd, "status")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^fake-a\s+main\s+ready", shown.stdout, re.MULTILINE), shown.stdout
    document = json.loads(cli(sparkd, "status", "--json").stdout)
    fake_a = next(m for m in document["models"] if m["id"] == "fake-a")
    assert fake_a["phase"] == "ready"
    assert fake_a["memory_bytes"] > 0  # systemd's cgroup accounting of the unit


def test_sparkd_start_and_stop_by_hand(sparkd: PrivateSystemd) -> None:
    assert cli(sparkd, "start", "fake-b").returncode == 0
    wait_for(lambda: sparkd.unit_state("sparkd-fake-b.service") == "active", 60, "fake-b to start")
    assert sparkd.unit_state("sparkd-fake-a.service") == "inactive"
    assert cli(sparkd, "stop", "fake-b").returncode == 0
    try:
        wait_for(lambda: sparkd.unit_state("sparkd-fake-b.service") == "inactive", 60, "fake-b to stop")
    except BaseException:
        # Seen once in CI, not reproduced since: keep what sparkd and the unit said.
        for unit in ("sparkd.service", "sparkd-fake-b.service"):
            print(sparkd.run("journalctl", "-u", unit, "-n", "30", "--no-pager", check=False).stdout)
        print(sparkd.run("systemctl", "status", "sparkd-fake-b.service", "--no-pager", check=False).stdout)
        raise
    assert cli(sparkd, "start", "no-such-model").returncode == 2


def test_sparkd_start_waits_until_the_model_answers_and_says_why_a_start_fails(
    sparkd: PrivateSystemd,
) -> None:
    sparkd.run("systemctl", "stop", "sparkd-demo.service", check=False)
    started = cli(sparkd, "start", "demo", timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "demo: ready after" in started.stdout
    assert "demo: starting: " in started.stdout  # where the start was, while it loaded
    # What the real vLLM printed is what `sparkd status` reads a start's progress from.
    journal = sparkd.run("journalctl", "-u", "sparkd-demo.service", "-n", "300", "--no-pager", check=False)
    assert loading_progress(journal.stdout.splitlines()) is not None, journal.stdout[-3000:]

    failed = cli(sparkd, "start", "fake-broken", timeout=120)
    assert failed.returncode == 1, failed.stdout
    assert "sparkd: fake-broken did not start: " in failed.stderr

    asked = cli(sparkd, "start", "fake-b", "--no-wait")
    assert asked.returncode == 0 and "ready after" not in asked.stdout
    wait_for(lambda: sparkd.unit_state("sparkd-fake-b.service") == "active", 60, "fake-b to start")


def test_sparkd_logs_follows_a_models_journal(sparkd: PrivateSystemd) -> None:
    chat("fake-a")
    followed = sparkd.run(
        "timeout",
        "3",
        str(SPARKD),
        "--config",
        f"{BED_CONFIG}/sparkd.toml",
        "logs",
        "fake-a",
        "-f",
        check=False,
    )
    assert followed.returncode == 124  # still following when the timeout ended it
    assert "fake engine fake-a on 127.0.0.1:18101" in followed.stdout


def test_sparkd_check_gives_a_verdict_per_item(sparkd: PrivateSystemd) -> None:
    checked = cli(sparkd, "check")
    assert checked.returncode == 1  # this machine has no GPU for the shipped models
    lines = checked.stdout.splitlines()
    assert any(line.startswith("ok    podman") and "API socket is enabled" in line for line in lines), (
        checked.stdout
    )
    assert any(line.startswith("ok    image localhost/sparkd-demo:latest") for line in lines)
    assert any(line.startswith("ok    port 18009: owned by sparkd.socket") for line in lines)
    assert any(line.startswith("FAIL  gpu") for line in lines)
    assert any(line.startswith("FAIL  image localhost/vllm-node-mxfp4:latest") for line in lines)
    verdicts = {item["item"]: item["verdict"] for item in json.loads(cli(sparkd, "check", "--json").stdout)}
    assert verdicts["api keys"] == "ok"
    assert verdicts["model units"] == "ok"


def test_metrics_are_prometheus_text(sparkd: PrivateSystemd) -> None:
    chat("fake-a")
    req = urllib.request.Request(URL + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as response:
        text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    answered = {
        s.labels["model"] for s in families["sparkd_requests"].samples if s.labels.get("status") == "200"
    }
    assert "fake-a" in answered
    available = [s for s in families["sparkd_memory_bytes"].samples if s.labels["what"] == "available"]
    assert available and available[0].value > 0
