"""The .deb, for real: build, install, serve, upgrade with a model running, remove, purge.

apt and dpkg run inside the private systemd, so maintainer scripts talk to
a real systemd; the files land on this machine's file system, and the purge
at the end must leave none behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed import PrivateSystemd

from tests.system.conftest import ROOT, wait_for

URL = "http://127.0.0.1:8009"
DEMO = Path("/var/lib/sparkd/demo")
DEMO_KEPT = Path("/var/lib/sparkd-demo.kept")  # the demo engine outlives the purge: it is slow to make
PACKAGE_PATHS = [
    "/etc/sparkd",
    "/var/lib/sparkd",
    "/usr/lib/sparkd",
    "/usr/share/sparkd",
    "/usr/bin/sparkd",
    "/lib/systemd/system/sparkd.socket",
    "/lib/systemd/system/sparkd-control.socket",
    "/lib/systemd/system/sparkd.service",
    "/lib/systemd/system/sparkd-pull@.service",
    "/lib/systemd/system/sparkd-drop-caches.service",
    "/usr/share/doc/sparkd",
    "/usr/share/man/man8/sparkd.8.gz",
]


def build(version: str, out: Path) -> Path:
    result = subprocess.run(
        [str(ROOT / "packaging" / "build-deb"), "--version", version, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


def key() -> str:
    for line in Path("/etc/sparkd/api-keys").read_text().splitlines():
        if line and not line.startswith("#"):
            return line.partition(":")[2]
    raise AssertionError("no key in /etc/sparkd/api-keys")


def in_flight(model: str) -> int:
    req = urllib.request.Request(URL + "/sparkd/status", headers={"Authorization": f"Bearer {key()}"})
    with urllib.request.urlopen(req, timeout=30) as response:
        models = json.loads(response.read())["models"]
    return int(next(m["in_flight"] for m in models if m["id"] == model))


def chat(max_tokens: int = 8, stream: bool = False) -> tuple[int, bytes]:
    body = {
        "model": "demo",
        "messages": [{"role": "user", "content": "Tell me a story."}],
        "max_tokens": max_tokens,
        "stream": stream,
    }
    req = urllib.request.Request(
        URL + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key()}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=300) as response:
        return response.status, response.read()


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = ROOT / "build"
    return build("0.1.0", out), build("0.1.1", out)


@pytest.fixture(scope="module")
def clean_bed(bed: PrivateSystemd) -> Iterator[PrivateSystemd]:
    """The bed without the checkout's own sparkd (from test_daemon.py), which would shadow the package's."""
    bed.run("systemctl", "stop", "sparkd.socket", "sparkd-control.socket", "sparkd.service", check=False)
    bed.run(
        "sh",
        "-c",
        "rm -rf /run/systemd/system/sparkd.* /run/systemd/system/sparkd-control.socket* "
        "/run/systemd/system/sparkd-pull@.service* /run/systemd/system/sparkd-drop-caches.service*",
    )
    bed.run("systemctl", "daemon-reload")
    yield bed
    # Whatever happened, leave this machine as it was: no package, the demo engine back.
    if subprocess.run(["dpkg", "-s", "sparkd"], capture_output=True, check=False).returncode == 0:
        bed.run(
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "-y",
            "purge",
            "sparkd",
            check=False,
            timeout=300,
        )
    if DEMO_KEPT.exists() and not DEMO.exists():
        DEMO.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(DEMO_KEPT, DEMO)


def test_lintian_finds_no_errors(debs: tuple[Path, Path]) -> None:
    result = subprocess.run(
        ["lintian", "--fail-on", "error", str(debs[0])], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "E: " not in result.stdout


def test_install_serve_upgrade_remove_purge(debs: tuple[Path, Path], clean_bed: PrivateSystemd) -> None:
    bed = clean_bed
    first, second = debs

    bed.apt("install", str(first))
    assert bed.run("systemctl", "is-enabled", "sparkd.socket").stdout.strip() == "enabled"
    assert bed.run("systemctl", "is-active", "sparkd.socket").stdout.strip() == "active"
    assert bed.run("systemctl", "is-active", "sparkd-control.socket").stdout.strip() == "active"
    assert Path("/etc/sparkd/api-keys").stat().st_mode & 0o777 == 0o600
    assert len(key()) > 40
    # The demo is off until its install turns it on, renders its unit and restarts sparkd
    # (its engine, weights and image are here).
    bed.run("/usr/bin/sparkd", "demo", "install", timeout=600)
    assert bed.run("/usr/bin/sparkd", "status").returncode == 0  # root, through the control socket
    # The bed's Quadlet directory is its own: look from inside.
    assert bed.run("test", "-e", "/etc/containers/systemd/sparkd-demo.container", check=False).returncode == 0
    keys_before = Path("/etc/sparkd/api-keys").read_text()

    status, body = chat()
    assert status == 200, body
    assert json.loads(body)["model"] == "demo"
    engine = bed.unit_property("sparkd-demo.service", "InvocationID")
    installed_package_works_as_a_user_meets_it(bed)

    # Upgrade while an answer streams: it finishes, and the model keeps running.
    streamed: list[bytes] = []
    reader = threading.Thread(target=lambda: streamed.append(chat(max_tokens=120, stream=True)[1]))
    reader.start()
    wait_for(lambda: in_flight("demo") == 1, 60, "the streaming answer to be under way")
    bed.apt("install", str(second))
    reader.join(timeout=120)
    assert streamed, "the streaming answer did not finish"
    assert streamed[0].rstrip().endswith(b"data: [DONE]"), streamed[0][-300:]
    assert b'"error"' not in streamed[0]
    assert bed.run("dpkg-query", "-W", "-f", "${Version}", "sparkd").stdout == "0.1.1"
    assert bed.unit_property("sparkd-demo.service", "InvocationID") == engine, (
        "the upgrade restarted the model"
    )
    assert Path("/etc/sparkd/api-keys").read_text() == keys_before
    assert chat()[0] == 200
    the_group_sparkd_runs_the_cli_without_root_or_a_key(bed)

    bed.apt("remove", "sparkd")
    assert bed.run("systemctl", "is-active", "sparkd.socket", check=False).stdout.strip() != "active"
    assert bed.run("systemctl", "is-active", "sparkd.service", check=False).stdout.strip() != "active"
    wait_for(
        lambda: (
            bed.run("systemctl", "is-active", "sparkd-demo.service", check=False).stdout.strip() != "active"
        ),
        60,
        "the model to stop on remove",
    )

    DEMO.rename(DEMO_KEPT)
    bed.apt("purge", "sparkd")
    left = [p for p in PACKAGE_PATHS if Path(p).exists()]
    assert left == []
    units = bed.run("systemctl", "list-unit-files", "sparkd*", "--no-legend", check=False).stdout.strip()
    assert units == ""
    quadlets = bed.run("sh", "-c", "ls /etc/containers/systemd/ | grep '^sparkd-' || true").stdout.strip()
    assert quadlets == ""
    assert subprocess.run(["getent", "passwd", "sparkd"], capture_output=True, check=False).returncode != 0
    assert subprocess.run(["dpkg", "-s", "sparkd"], capture_output=True, check=False).returncode != 0


def installed_package_works_as_a_user_meets_it(bed: PrivateSystemd) -> None:
    """What the package must do on its own, with no checkout in sight."""
    # The documentation is where Debian keeps it, beside the manual page.
    assert Path("/usr/share/doc/sparkd/install.md.gz").is_file()
    assert Path("/usr/share/doc/sparkd/README.md.gz").is_file()
    assert Path("/usr/share/man/man8/sparkd.8.gz").is_file()
    # Every engine image's recipe finds what it copies in the shipped build context.
    from sparkd import images

    shipped = Path("/usr/share/sparkd/containers")
    assert {r.name: images.missing_sources(r, shipped) for r in images.RECIPES} == {
        r.name: [] for r in images.RECIPES
    }
    # A recipe a drop-in declares is built by the packaged command (real podman, from scratch).
    recipe = Path("/etc/sparkd/models.d/bed-recipe.toml")
    (recipe.parent / "bed-recipe").mkdir()
    try:
        (recipe.parent / "bed-recipe" / "Containerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
        (recipe.parent / "bed-recipe" / "hello.txt").write_text("hello\n")
        recipe.write_text(
            '[images.bed-recipe]\ncontainerfile = "bed-recipe/Containerfile"\n'
            'tag = "localhost/bed-recipe:1"\n'
        )
        built = bed.run("/usr/bin/sparkd", "images", "build", "bed-recipe", check=False, timeout=300)
        assert built.returncode == 0, built.stdout + built.stderr
        assert bed.run("podman", "image", "exists", "localhost/bed-recipe:1", check=False).returncode == 0
    finally:
        recipe.unlink(missing_ok=True)
        shutil.rmtree(recipe.parent / "bed-recipe")
        bed.run("podman", "rmi", "-f", "localhost/bed-recipe:1", check=False)
    # Started from a directory that holds a `sparkd/` package, the command runs its own code.
    with tempfile.TemporaryDirectory() as decoy:
        (Path(decoy) / "sparkd").mkdir()
        for name in ("__init__.py", "__main__.py"):
            (Path(decoy) / "sparkd" / name).write_text("print('DECOY'); raise SystemExit(9)\n")
        command = ["/usr/bin/sparkd", "--version"]
        ran = subprocess.run(command, check=False, cwd=decoy, capture_output=True, text=True)
    assert (ran.returncode, ran.stdout.startswith("sparkd "), "DECOY" in ran.stdout) == (0, True, False)
    # `sparkd demo install` from the package (which has no pip of its own): the weights step
    # runs for real into a fresh state directory, beside the existing demo engine.
    with tempfile.TemporaryDirectory(dir="/var/tmp") as state:
        (Path(state) / "demo").mkdir()
        (Path(state) / "demo" / "venv").symlink_to(DEMO / "venv")
        settings = Path(state) / "sparkd.toml"
        settings.write_text(f'state_dir = "{state}"\n')
        made = subprocess.run(
            ["/usr/bin/sparkd", "--config", str(settings), "demo", "install"],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
        assert (Path(state) / "demo" / "SmolLM2-135M-Instruct" / "model.safetensors").is_file()


def as_user(bed: PrivateSystemd, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return bed.run("runuser", "-u", user, "--", "/usr/bin/sparkd", *args, check=False)


def the_group_sparkd_runs_the_cli_without_root_or_a_key(bed: PrivateSystemd) -> None:
    """The control socket: membership of `sparkd` is the permission; the API port can be narrowed."""
    assert bed.run("getent", "group", "sparkd").returncode == 0  # made by the package
    for user, groups in (("sparkd-member", ["-G", "sparkd"]), ("sparkd-outsider", [])):
        if bed.run("id", user, check=False).returncode != 0:
            bed.run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", *groups, user)
    # The API port narrowed to an address the command line does not use.
    bed.write_file(
        "/run/systemd/system/sparkd.socket.d/narrow.conf",
        "[Socket]\nListenStream=\nListenStream=127.0.0.2:8009\n",
    )
    bed.run("systemctl", "daemon-reload")
    bed.run("systemctl", "restart", "sparkd.socket")
    try:
        status = as_user(bed, "sparkd-member", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["sparkd"]["version"]
        assert as_user(bed, "sparkd-member", "stop", "demo").returncode == 0
        wait_for(lambda: bed.unit_state("sparkd-demo.service") != "active", 60, "the member's stop")
        assert as_user(bed, "sparkd-member", "start", "demo").returncode == 0
        wait_for(lambda: bed.unit_state("sparkd-demo.service") == "active", 120, "the member's start")
        refused = as_user(bed, "sparkd-outsider", "status")
        assert refused.returncode == 3
        assert "join the group sparkd" in refused.stderr
    finally:
        bed.run("rm", "-f", "/run/systemd/system/sparkd.socket.d/narrow.conf")
        bed.run("systemctl", "daemon-reload")
        bed.run("systemctl", "restart", "sparkd.socket")
        bed.run("userdel", "sparkd-member", check=False)
        bed.run("userdel", "sparkd-outsider", check=False)
