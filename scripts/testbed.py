#!/usr/bin/env python3
"""A private systemd for sparkd's system tests and demo: real systemd, D-Bus, journald, podman, Quadlet.

    scripts/testbed.py up | down | status | exec -- COMMAND... | install-sparkd LISTEN KEY

systemd boots as PID 1 of its own PID and mount namespace
(`unshare --fork --pid --mount --mount-proc --propagation private`), with
fresh tmpfs mounts on /run and /tmp (so it never writes into a host
systemd's /run, and its boot-time tmpfiles never empty the host's /tmp) and
on /etc/containers/systemd (so rendered units stay inside). The network
namespace is shared: engines on 127.0.0.1 inside are reachable from outside.
Nothing here touches the host's own systemd. `down` powers it off
(SIGRTMIN+4, systemd's "poweroff" signal) and waits until it is gone.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".testbed"
PIDFILE = STATE / "systemd.pid"
LOGFILE = STATE / "systemd.log"
PRIVATE_DIRS = ("/etc/containers/systemd",)


# An extra host's podman keeps its containers to itself: on one shared disk, a second podman's
# first start ("system refresh": it sees an empty /run) resets the state of the other's
# running containers. Images come read-only from the machine's own store.
EXTRA_HOST_STORAGE = """[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/run/bed-containers/storage"
[storage.options]
additionalimagestores = ["/var/lib/containers/storage"]
"""


def _boot_script(keep: list[Path], unit: str | None = None) -> str:
    """What runs as PID 1 of the new namespaces, before it becomes systemd (booting `unit`, if given)."""
    lines = ["set -e", "mount -t tmpfs -o mode=0755 tmpfs /run"]
    if unit is not None:  # an extra host: /etc/containers becomes a copy of its own
        lines += [
            "cp -a /etc/containers /run/bed-etc-containers",
            "mount --bind /run/bed-etc-containers /etc/containers",
            f"printf %s {shlex.quote(EXTRA_HOST_STORAGE)} > /etc/containers/storage.conf",
        ]
    # A directory under /tmp (a CI checkout, say) would vanish under the new
    # tmpfs: park it on /run, mount the tmpfs, then put it back.
    for index, path in enumerate(keep):
        lines += [f"mkdir -p /run/keep{index}", f"mount --bind {shlex.quote(str(path))} /run/keep{index}"]
    lines.append("mount -t tmpfs -o mode=1777 tmpfs /tmp")
    for index, path in enumerate(keep):
        quoted = shlex.quote(str(path))
        lines += [f"mkdir -p {quoted}", f"mount --move /run/keep{index} {quoted}", f"rmdir /run/keep{index}"]
    for private in PRIVATE_DIRS:
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {private}")
    if Path("/usr/sbin/policy-rc.d").exists():
        # Container images often forbid maintainer scripts to start services
        # (exit 101); the bed is a machine with its own systemd, where they may.
        lines += [
            "printf '#!/bin/sh\\nexit 0\\n' > /run/policy-rc.d",
            "chmod 755 /run/policy-rc.d",
            "mount --bind /run/policy-rc.d /usr/sbin/policy-rc.d",
        ]
    if Path("/var/log/journal").is_dir():
        lines.append("mount -t tmpfs -o mode=2755 tmpfs /var/log/journal")
    boot = f" --unit={unit}" if unit else ""
    lines.append(f"exec /lib/systemd/systemd --system --log-target=console --show-status=false{boot}")
    return "\n".join(lines)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> None:
    """Return once `predicate()` is true; raise, naming `what`, when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class PrivateSystemd:
    """A booted private systemd, named by the host PID of its PID 1.

    The test suite's one bed shares the machine's network. Extra hosts (`name`, "a" and
    "b" for two Sparks) have a network namespace of their own, joined by `link()`:
    their traffic stays between them.
    """

    pid: int
    unshare: subprocess.Popen[bytes] | None = None  # set when this process booted it
    name: str = ""  # "": the suite's bed; else an extra host
    own_network: bool = False

    @property
    def pidfile(self) -> Path:
        return STATE / f"host-{self.name}.pid" if self.name else PIDFILE

    @classmethod
    def boot(cls, timeout: float = 60.0, name: str = "", own_network: bool = False) -> PrivateSystemd:
        for private in PRIVATE_DIRS:
            Path(private).mkdir(parents=True, exist_ok=True)
        STATE.mkdir(exist_ok=True)
        keep = [ROOT] if ROOT.is_relative_to("/tmp") else []
        logfile = STATE / f"host-{name}.log" if name else LOGFILE
        with logfile.open("wb") as log:  # the child keeps its own descriptor
            unshare = subprocess.Popen(
                [
                    "unshare",
                    "--fork",
                    "--pid",
                    *(["--net"] if own_network else []),
                    "--mount",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    # An extra host boots to basic.target: the machine's own services (a
                    # database, say) would start twice on one disk.
                    _boot_script(keep, "basic.target" if name else None),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in the caller's process group: Ctrl-C goes to the caller only
            )
        deadline = time.monotonic() + timeout
        child = None
        while child is None and time.monotonic() < deadline:
            children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
            text = children.read_text().split() if children.exists() else []
            child = int(text[0]) if text else None
            if unshare.poll() is not None:
                raise RuntimeError(f"unshare exited with {unshare.returncode}; see {LOGFILE}")
            time.sleep(0.05)
        if child is None:
            raise RuntimeError("the private systemd did not start")
        bed = cls(child, unshare, name, own_network)
        bed.pidfile.write_text(f"{child}\n")
        try:
            if own_network:
                bed.run("ip", "link", "set", "lo", "up")
            bed.wait_until_running(deadline - time.monotonic())
        except BaseException:
            bed.poweroff()  # a bed that never came up is not left behind
            raise
        return bed

    @classmethod
    def existing(cls, name: str = "") -> PrivateSystemd | None:
        found = cls(0, None, name)
        try:
            pid = int(found.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return None
        comm = Path(f"/proc/{pid}/comm")
        if not comm.exists() or comm.read_text().strip() != "systemd":
            return None
        own_network = os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        return cls(pid, None, name, own_network)

    def command(self, *argv: str) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-m", "-p", *(["-n"] if self.own_network else []), *argv]

    def run(
        self, *argv: str, check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespaces and return its output."""
        result = subprocess.run(
            self.command(*argv), capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def wait_until_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", check=False, timeout=10).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        jobs = self.run("systemctl", "list-jobs", "--no-pager", check=False, timeout=10).stdout
        raise RuntimeError(f"the private systemd is {state!r}, not running; its jobs:\n{jobs}")

    def unit_state(self, unit: str) -> str:
        """`systemctl is-active`: active, inactive, failed, activating, ..."""
        return self.run("systemctl", "is-active", unit, check=False).stdout.strip()

    def unit_property(self, unit: str, name: str) -> str:
        return self.run("systemctl", "show", unit, "-p", name, "--value").stdout.strip()

    def apt(self, *args: str) -> None:
        """apt-get inside, so that maintainer scripts talk to this systemd; its output if it fails."""
        result = self.run(
            "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q", *args, check=False, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"apt-get {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def write_file(self, path: str, text: str) -> None:
        """Write a file as seen inside (its /run, /tmp and unit dirs are its own)."""
        self.run(
            "sh",
            "-c",
            f"mkdir -p {shlex.quote(str(Path(path).parent))} && cat > {shlex.quote(path)}",
            input=text,
        )

    def poweroff(self, timeout: float = 60.0) -> None:
        """Power the private systemd off and wait until its PID 1 is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGRTMIN + 4)
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{self.pid}").exists():
            os.kill(self.pid, signal.SIGKILL)  # killing PID 1 of a namespace ends every process in it
            while Path(f"/proc/{self.pid}").exists():
                time.sleep(0.1)
        if self.unshare is not None:
            self.unshare.wait(timeout=10)
        self.pidfile.unlink(missing_ok=True)


def link_end(bed: PrivateSystemd) -> str:
    """The name of `bed`'s end of the veth pair `link()` makes."""
    return f"spk{bed.pid}"


def link(first: PrivateSystemd, second: PrivateSystemd, subnet: str = "10.77.0") -> tuple[str, str]:
    """Join two hosts with their own networks by a veth pair; their addresses on it (.1, .2).

    The pair lives in the two namespaces only: it goes when they power off.
    """
    ends = (link_end(first), link_end(second))
    subprocess.run(["ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1]], check=True)
    addresses = (f"{subnet}.1", f"{subnet}.2")
    for bed, end, address in zip((first, second), ends, addresses, strict=True):
        subprocess.run(["ip", "link", "set", end, "netns", str(bed.pid)], check=True)
        bed.run("ip", "addr", "add", f"{address}/24", "dev", end)
        bed.run("ip", "link", "set", end, "up")
    return addresses


SPARKD = ROOT / ".venv" / "bin" / "sparkd"
SPARKD_UNITS = ("sparkd.socket", "sparkd-control.socket", "sparkd.service")
PULL_TEMPLATE = "sparkd-pull@.service"
HELPER_UNITS = (PULL_TEMPLATE, "sparkd-drop-caches.service")  # started by sparkd over D-Bus
BED_CONFIG = "/run/sparkd-bed"  # inside the bed: settings, keys and drop-ins of this checkout's sparkd


def install_sparkd(
    bed: PrivateSystemd,
    listen: str,
    key: str,
    settings: str = "",
    models: str = "",
    command: str | None = None,
) -> None:
    """Set sparkd up in the bed with its own settings, keys and drop-ins, and start its socket.

    With no `command`, this checkout's sparkd is installed as the package
    would be: the shipped units (units/) in the bed's private
    /run/systemd/system, with a drop-in for what differs from a package
    install (the command is this checkout's .venv). With `command` (the
    installed package's /usr/bin/sparkd), the package's own units run, and
    the drop-ins change only the address and where settings and keys are.
    """
    # The package creates the group whose members may use the control socket.
    bed.run("sh", "-c", "getent group sparkd >/dev/null || groupadd --system sparkd")
    bed.write_file(f"{BED_CONFIG}/api-keys", f"bed:{key}\n")
    bed.write_file(
        f"{BED_CONFIG}/sparkd.toml",
        f'models_d = "{BED_CONFIG}/models.d"\napi_keys_file = "{BED_CONFIG}/api-keys"\ngpu = "no"\n'
        f'secrets_dir = "{BED_CONFIG}/secrets"\n'
        f'listen = "{listen}"\n' + settings,
    )
    bed.write_file(f"{BED_CONFIG}/models.d/bed.toml", models)
    # The demo is installed here (scripts/bootstrap): on, as `sparkd demo install` turns it on.
    bed.write_file(f"{BED_CONFIG}/models.d/demo.toml", '[models.demo]\nstatus = "validated"\n')
    service = "[Service]\nExecStart=\n"
    if command is None:
        command = str(SPARKD)
        for unit in (*SPARKD_UNITS, *HELPER_UNITS):
            bed.write_file(f"/run/systemd/system/{unit}", (ROOT / "units" / unit).read_text())
        # The checkout's .venv may live under /root (pyenv) or /tmp (CI): the
        # packaged sparkd lives in /usr and keeps both protections.
        service += "ProtectHome=false\nPrivateTmp=false\n"
    else:
        bed.run(
            "sh",
            "-c",
            "rm -f /run/systemd/system/sparkd.socket /run/systemd/system/sparkd-control.socket "
            "/run/systemd/system/sparkd.service /run/systemd/system/sparkd-pull@.service "
            "/run/systemd/system/sparkd-drop-caches.service",
        )
    bed.write_file(
        "/run/systemd/system/sparkd.socket.d/bed.conf", f"[Socket]\nListenStream=\nListenStream={listen}\n"
    )
    bed.write_file(
        "/run/systemd/system/sparkd.service.d/bed.conf",
        service + f"ExecStart={command} --config {BED_CONFIG}/sparkd.toml serve\n"
        f"LoadCredential=\nLoadCredential=api-keys:{BED_CONFIG}/api-keys\n",
    )
    # The pull units run the same sparkd with the same settings.
    bed.write_file(
        f"/run/systemd/system/{PULL_TEMPLATE}.d/bed.conf",
        f"[Service]\nExecStart=\nExecStart={command} --config {BED_CONFIG}/sparkd.toml pull %i\n",
    )
    bed.run("systemctl", "start", "podman.socket")  # podman's API, which sparkd check asks
    bed.run(command, "--config", f"{BED_CONFIG}/sparkd.toml", "render")
    bed.run("systemctl", "daemon-reload")
    # A socket is not started while its service runs ("already active, refusing"), and a
    # connection in the backlog starts the service again the moment it has stopped: the
    # sockets stop with the service, in one transaction, before they start anew.
    # reset-failed clears systemd's count of starts (five in ten seconds by default).
    bed.run("systemctl", "stop", *SPARKD_UNITS)
    bed.run("systemctl", "reset-failed", *SPARKD_UNITS, check=False)
    started = bed.run("systemctl", "start", "sparkd.socket", "sparkd-control.socket", check=False)
    if started.returncode != 0:
        journal = bed.run(
            "journalctl", "--no-pager", "-n", "40", *(f"--unit={u}" for u in SPARKD_UNITS), check=False
        ).stdout
        raise RuntimeError(f"sparkd's sockets did not start: {started.stderr}\n{journal}")


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "status"
    bed = PrivateSystemd.existing()
    if action == "up":
        if bed is None:
            bed = PrivateSystemd.boot()
        print(f"private systemd running as host PID {bed.pid}; run commands in it with:")
        print(f"  nsenter -t {bed.pid} -m -p systemctl status")
        return 0
    if action == "down":
        if bed is not None:
            bed.poweroff()
        print("private systemd stopped")
        return 0
    if action == "install-sparkd":
        # install-sparkd LISTEN KEY: this checkout's sparkd, socket-activated, in the bed.
        if bed is None:
            print("not running; start it with: scripts/testbed.py up", file=sys.stderr)
            return 1
        install_sparkd(bed, argv[2], argv[3])
        print(f"sparkd.socket listening on {argv[2]} in the private systemd")
        return 0
    if action == "status":
        print(f"running as host PID {bed.pid}" if bed else "not running")
        return 0 if bed else 1
    if action == "exec":
        if bed is None:
            print("not running; start it with: scripts/testbed.py up", file=sys.stderr)
            return 1
        command = argv[3:] if argv[2:3] == ["--"] else argv[2:]
        return subprocess.run(bed.command(*command), check=False).returncode
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
