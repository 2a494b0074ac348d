"""sparkd installed in the private systemd, with fake engines beside the real demo: shared by system tests."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request

from testbed import PrivateSystemd, install_sparkd

from tests.fake_engine import catalogue_entry

PORT = 18009
URL = f"http://127.0.0.1:{PORT}"
KEY = "bed-" + secrets.token_hex(16)
MAINS = (
    "demo",
    "fake-a",
    "fake-b",
    "fake-excl",
    "fake-idle",
    "fake-broken",
    "fake-slow",
    "fake-never",
    "fake-idle-slow",
)


def fake(model_id: str, port: int, extra: str = "", flags: str = "", start_timeout: str = "60s") -> str:
    return catalogue_entry(
        model_id, port, ', "--start-delay", "1"' + flags, f'start_timeout = "{start_timeout}"\n{extra}'
    )


# The bed has no GPU: the shipped utility is disabled (fake-util stands in), and the
# demo shows its loading progress as reasoning text.
BED_OVERRIDES = '[models."qwen3.5-0.8b"]\nstatus = "disabled"\n[models.demo]\nprogress_as_reasoning = true\n'
FAKE_MODELS = BED_OVERRIDES + "".join(
    [
        fake("fake-a", 18101, 'secrets = ["BED_SECRET"]'),
        fake("fake-b", 18102),
        fake("fake-util", 18103, 'role = "utility"\nkeep_warm = true'),
        fake("fake-excl", 18104, 'role = "exclusive"'),
        fake("fake-broken", 18105, "", ', "--fail-at-start"'),
        fake("fake-idle", 18106, 'idle_timeout = "3s"\nmin_uptime = "0s"'),
        fake("fake-slow", 18107, "", ', "--interval", "0.3", "--chunks", "30"'),
        fake("fake-never", 18108, "", ', "--never-healthy"', start_timeout="6s"),
        fake(
            "fake-idle-slow",
            18109,
            'idle_timeout = "2s"\nmin_uptime = "0s"',
            ', "--interval", "0.3", "--chunks", "20"',
        ),
    ]
)


def request(
    path: str, body: object | None = None, key: str | None = KEY, timeout: float = 120
) -> tuple[int, dict[str, str], dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw.startswith(b"{") else {}
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers), json.loads(raw) if raw.startswith(b"{") else {}


def chat(model: str) -> tuple[int, dict[str, str], dict[str, object]]:
    return request(
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
    )


def streamed_chat(model: str, max_tokens: int = 16) -> tuple[str, str]:
    """A streaming chat through the openai SDK, as a user's tool sends it: (reasoning, content).

    Loading progress arrives as reasoning text for models with `progress_as_reasoning`.
    """
    import openai

    client = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=600)
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=max_tokens, stream=True
    )
    reasoning, content = [], []
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning.append((delta.model_extra or {}).get("reasoning_content") or "")
            content.append(delta.content or "")
    return "".join(reasoning), "".join(content)


def active_mains(bed: PrivateSystemd) -> set[str]:
    listed = bed.run(
        "systemctl",
        "list-units",
        "sparkd-*.service",
        "--no-legend",
        "--plain",
        "--state=active,activating,deactivating,reloading",
        check=False,
    ).stdout
    units = {line.split()[0] for line in listed.splitlines() if line.strip()}
    return {m for m in MAINS if f"sparkd-{m}.service" in units}


def install(bed: PrivateSystemd, settings: str = "quiet_exit = 0\n") -> None:
    # Swaps at once: these tests pin the mechanism; tests/unit/test_swap_hold.py pins the hold.
    install_sparkd(bed, f"127.0.0.1:{PORT}", KEY, settings="swap_hold = 0\n" + settings, models=FAKE_MODELS)


def uninstall(bed: PrivateSystemd) -> None:
    bed.run("systemctl", "stop", "sparkd.socket", "sparkd-control.socket", "sparkd.service", check=False)
    units = bed.run(
        "systemctl", "list-units", "sparkd-*", "--plain", "--no-legend", "--all", check=False
    ).stdout
    for line in units.splitlines():
        if line.strip():
            bed.run("systemctl", "stop", line.split()[0], check=False)


class TenancyChecker:
    """An independent sampler of unit states: every moment with two main units up is recorded."""

    def __init__(self, bed: PrivateSystemd) -> None:
        self.bed = bed
        self.violations: list[set[str]] = []
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            up = active_mains(self.bed)
            self.samples += 1
            if len(up) > 1:
                self.violations.append(up)
            time.sleep(0.05)

    def __enter__(self) -> TenancyChecker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
