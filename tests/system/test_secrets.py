"""A secret reaches the engine that lists it, and nothing a person or another program can read."""

from __future__ import annotations

import json
import secrets
import urllib.request

from testbed import BED_CONFIG, SPARKD, PrivateSystemd

from tests.system.conftest import wait_for
from tests.system.sparkd_bed import chat, request

ENGINE = "http://127.0.0.1:18101"  # fake-a's engine, which lists BED_SECRET


def cli(bed: PrivateSystemd, *args: str, stdin: str | None = None) -> str:
    result = bed.run(str(SPARKD), "--config", f"{BED_CONFIG}/sparkd.toml", *args, input=stdin, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_a_secret_reaches_its_engine_and_is_never_shown(sparkd: PrivateSystemd) -> None:
    value = "sparkd-test-" + secrets.token_hex(16)
    cli(sparkd, "secret", "set", "BED_SECRET", stdin=value + "\n")
    stored = f"{BED_CONFIG}/secrets/BED_SECRET"
    assert sparkd.run("stat", "-c", "%a %U", stored).stdout.split() == ["600", "root"]
    assert sparkd.run("stat", "-c", "%a", f"{BED_CONFIG}/secrets").stdout.strip() == "700"
    assert "BED_SECRET" in cli(sparkd, "secret", "list")

    # The unit changed (it names the file now): the next start gives the engine the value.
    sparkd.run("systemctl", "stop", "sparkd-fake-a.service")
    wait_for(lambda: sparkd.unit_state("sparkd-fake-a.service") != "active", 60, "fake-a to stop")
    assert chat("fake-a")[0] == 200
    with urllib.request.urlopen(f"{ENGINE}/v1/models", timeout=10) as response:
        assert "BED_SECRET" in json.loads(response.read())["env"]

    shown = {
        "rendered units": sparkd.run("sh", "-c", "cat /etc/containers/systemd/*.container").stdout,
        "generated units": sparkd.run("sh", "-c", "cat /run/systemd/generator/sparkd-*.service").stdout,
        "status": json.dumps(request("/sparkd/status")[2]),
        "models --json": cli(sparkd, "models", "--json"),
        "sparkd status": cli(sparkd, "status", "--all"),
        "journal": sparkd.run("journalctl", "-o", "json", "--no-pager", "--since", "-10min").stdout,
        "the secret list": cli(sparkd, "secret", "list"),
    }
    assert "EnvironmentFile=" + stored in shown["rendered units"]
    leaks = [where for where, text in shown.items() if value in text]
    assert leaks == [], f"the secret's value is shown in {leaks}"

    cli(sparkd, "secret", "rm", "BED_SECRET")
    assert "BED_SECRET" not in cli(sparkd, "secret", "list")
    assert (
        "EnvironmentFile" not in sparkd.run("cat", "/etc/containers/systemd/sparkd-fake-a.container").stdout
    )
