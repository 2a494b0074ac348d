"""`sparkd check`, the link part: can a model span this Spark and its peer (`nodes = 2`)?

Facts about the link are gathered once (`gather_link`, I/O) and judged by a pure
function (`judge_link`), as the rest of `sparkd check` is. The worst failure is a
silent one: NCCL and Gloo take whatever interface the address routes over, so a
route over the 1 GbE port runs tensor parallelism a hundred times slower
without an error. So the route to the peer's link address must leave by the
link's interface.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sparkd import secrets as stored
from sparkd.catalogue import Catalogue
from sparkd.preflight_items import Item, Verdict
from sparkd.settings import Settings

JUMBO = 9000  # bytes: jumbo frames carry NCCL's traffic with less overhead per byte
PEER_TIMEOUT = 2.0  # seconds to wait for the peer's /healthz
# Its status asks its own peers (this Spark among them) what they serve: a socket-activated
# sparkd at either end may be starting first.
STATUS_TIMEOUT = 10.0
RDMA = Path("/sys/class/infiniband")


@dataclass
class LinkFacts:
    two_spark_models: list[str] = field(default_factory=list)
    configured: bool = False
    interface: str = ""
    interface_state: str | None = None  # operstate; None: no such interface
    mtu: int | None = None
    addresses: list[str] = field(default_factory=list)  # the interface's own
    address: str = ""
    peer_address: str = ""
    route_dev: str | None = None  # the interface the peer's link address routes over
    rdma_devices: list[str] = field(default_factory=list)
    peer: str = ""
    peer_url: str = ""
    peer_problem: str | None = None  # None: its /healthz answered
    peer_halves: list[str] | None = None  # the split models the peer runs worker halves for; None: unknown
    peer_status_problem: str | None = None  # why its status could not be read, when it could not


def judge_link(facts: LinkFacts) -> list[Item]:
    if not facts.configured:
        if not facts.two_spark_models:
            return []
        return [
            Item(
                "link",
                Verdict.FAIL,
                f"{', '.join(facts.two_spark_models)} span two Sparks, but no [link] is set",
                "set [link] in /etc/sparkd/sparkd.toml (docs/two-sparks.md)",
            )
        ]
    return [*_interface(facts), *_route(facts), *_rdma(facts), *_peer(facts), *_halves(facts)]


def _interface(facts: LinkFacts) -> list[Item]:
    name = f"link interface {facts.interface}"
    if facts.interface_state is None:
        return [Item(name, Verdict.FAIL, "no such interface", "`ip link` lists them; set link.interface")]
    if facts.interface_state not in ("up", "unknown"):
        return [
            Item(name, Verdict.FAIL, f"it is {facts.interface_state}", f"ip link set {facts.interface} up")
        ]
    if facts.address not in facts.addresses:
        return [
            Item(
                name,
                Verdict.FAIL,
                f"{facts.address} is not one of its addresses ({', '.join(facts.addresses) or 'none'})",
                f"ip addr add {facts.address}/24 dev {facts.interface} (or set link.address)",
            )
        ]
    items = [Item(name, Verdict.OK, f"up, with {facts.address}")]
    if facts.mtu is not None and facts.mtu < JUMBO:
        items.append(
            Item(
                f"link MTU {facts.interface}",
                Verdict.WARN,
                f"MTU {facts.mtu}: jumbo frames ({JUMBO}) carry NCCL's traffic with less overhead",
                f"ip link set {facts.interface} mtu {JUMBO}, on both Sparks",
            )
        )
    return items


def _route(facts: LinkFacts) -> list[Item]:
    name = f"route to {facts.peer_address}"
    if facts.route_dev == facts.interface:
        return [Item(name, Verdict.OK, f"over {facts.interface}")]
    over = f"over {facts.route_dev}" if facts.route_dev else "nowhere (no route)"
    return [
        Item(
            name,
            Verdict.FAIL,
            f"{over}, not {facts.interface}: NCCL and Gloo would leave by the wrong port",
            f"give {facts.interface} an address in {facts.peer_address}'s subnet",
        )
    ]


def _rdma(facts: LinkFacts) -> list[Item]:
    if facts.rdma_devices:
        return [Item("rdma", Verdict.OK, f"RDMA devices: {', '.join(facts.rdma_devices)}")]
    return [
        Item(
            "rdma",
            Verdict.WARN,
            "no RDMA device: NCCL falls back to TCP sockets over the link",
            "the ConnectX driver (DGX OS ships it) provides /sys/class/infiniband",
        )
    ]


def _peer(facts: LinkFacts) -> list[Item]:
    name = f"peer {facts.peer}"
    if facts.peer_problem is None:
        return [Item(name, Verdict.OK, f"{facts.peer_url} answers")]
    return [
        Item(name, Verdict.FAIL, facts.peer_problem, "is sparkd.socket enabled there? `sparkd check` on it")
    ]


def _halves(facts: LinkFacts) -> list[Item]:
    """Each split model needs its worker half on the peer: enabled there too, with nodes = 2."""
    if facts.peer_status_problem is not None:
        fix = f"is the secret named in [[peers]] a key of {facts.peer}'s? (sudo sparkd secret set ...)"
        return [Item("worker halves", Verdict.WARN, facts.peer_status_problem, fix)]
    if facts.peer_halves is None:
        return []  # the peer was not asked (it does not answer: said above)
    items = []
    for model in facts.two_spark_models:
        name = f"worker half of {model}"
        if model in facts.peer_halves:
            items.append(Item(name, Verdict.OK, f"{facts.peer} runs it"))
        else:
            fix = f"on {facts.peer}: enable {model} with nodes = 2, set its [link], `sparkd render`"
            items.append(Item(name, Verdict.FAIL, f"{facts.peer} runs no worker half for it", fix))
    return items


def gather_link(settings: Settings, catalogue: Catalogue) -> LinkFacts:
    facts = LinkFacts(two_spark_models=[m.id for m in catalogue.enabled() if m.nodes > 1])
    link = settings.link
    if link is None:
        return facts
    facts.configured = True
    facts.interface, facts.address, facts.peer_address = link.interface, link.address, link.peer_address
    # Asked over netlink, not /sys/class/net: sysfs shows the network namespace that mounted it.
    device = next(iter(_ip_json("link", "show", "dev", link.interface)), None)
    if device is not None:
        facts.interface_state = str(device.get("operstate", "unknown")).lower()
        mtu = device.get("mtu")
        facts.mtu = mtu if isinstance(mtu, int) else None
        facts.addresses = _addresses(link.interface)
    facts.route_dev = _route_dev(link.peer_address)
    facts.rdma_devices = sorted(p.name for p in RDMA.iterdir()) if RDMA.is_dir() else []
    peer = next(p for p in settings.peers if p.name == link.peer)
    facts.peer, facts.peer_url = peer.name, peer.url
    facts.peer_problem = _peer_problem(peer.url.rstrip("/") + "/healthz")
    if facts.peer_problem is None and facts.two_spark_models:
        key = stored.value(settings.secrets_dir, peer.key_secret)
        facts.peer_halves, facts.peer_status_problem = _peer_halves(peer.url, key)
    return facts


def _peer_halves(url: str, key: str | None) -> tuple[list[str] | None, str | None]:
    """The split models the peer runs worker halves for, from its status (with its key); or why not."""
    status = url.rstrip("/") + "/sparkd/status"
    asked = urllib.request.Request(status)
    if key:
        asked.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(asked, timeout=STATUS_TIMEOUT) as answer:
            halves = json.loads(answer.read()).get("worker_halves", [])
    except urllib.error.HTTPError as error:
        return None, f"{status} answered {error.code}"
    except (urllib.error.URLError, OSError, ValueError, AttributeError) as error:
        return None, f"{status} could not be read ({getattr(error, 'reason', error)})"
    return [str(h.get("model")) for h in halves if isinstance(h, dict)], None


def _ip_json(*argv: str) -> list[dict[str, object]]:
    try:
        out = subprocess.run(["ip", "-j", *argv], capture_output=True, text=True, timeout=10, check=False)
        found = json.loads(out.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return []
    return found if isinstance(found, list) else []


def _addresses(interface: str) -> list[str]:
    found = []
    for entry in _ip_json("addr", "show", "dev", interface):
        infos = entry.get("addr_info")
        for info in infos if isinstance(infos, list) else []:
            if isinstance(info, dict) and info.get("local"):
                found.append(str(info["local"]))
    return found


def _route_dev(address: str) -> str | None:
    routes = _ip_json("route", "get", address)
    return str(routes[0].get("dev")) if routes and routes[0].get("dev") else None


def _peer_problem(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=PEER_TIMEOUT) as answer:
            return None if answer.status == 200 else f"{url} answered {answer.status}"
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"{url} does not answer ({reason})"
