"""Hostile input against the real gateway: every answer is the right 4xx envelope, and nothing wakes or leaks.

The gateway runs on loopback in a thread of its own; hypothesis drives raw
HTTP at it, so even requests no well-behaved client would send get through.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fake_engine import RECEIVED
from tests.loopback.harness import KEY, Bed, gateway
from tests.reliability import record

ENVELOPE_KEYS = {"message", "type", "param", "code"}


@dataclass
class Live:
    bed: Bed
    host: str
    port: int

    def engine_requests(self) -> int:
        return sum(len(app[RECEIVED].requests) for app in self.bed.engines.values())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    ready = threading.Event()
    stop: asyncio.Event | None = None
    holder: list[Live] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with gateway(tmp_path_factory.mktemp("hostile"), max_body=1024 * 1024) as bed:
            host, port = bed.url.removeprefix("http://").split(":")
            holder.append(Live(bed, host, int(port)))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield holder[0]
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def raw(live: Live, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; read the whole answer (the request asks the server to close)."""
    with socket.create_connection((live.host, live.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return status, headers, body


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


def http(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: sparkd", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace") + body


def assert_envelope(status: int, body: bytes) -> dict[str, object]:
    document = json.loads(body)
    assert set(document) == {"error"}
    assert set(document["error"]) == ENVELOPE_KEYS
    assert isinstance(document["error"]["message"], str) and document["error"]["message"]
    return dict(document["error"])


AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


@FUZZ
@given(body=st.binary(max_size=2000))
def test_arbitrary_bytes_get_a_400_envelope(live: Live, body: bytes) -> None:
    before = live.engine_requests()
    status, _, answer = raw(live, http("POST", "/v1/chat/completions", body, AUTH))
    if status != 200:
        assert 400 <= status < 500
        assert_envelope(status, answer)
        assert live.engine_requests() == before
    record("inputs_tried")


@FUZZ
@given(
    document=st.dictionaries(
        st.sampled_from(
            [
                "model",
                "messages",
                "max_tokens",
                "stream",
                "tools",
                "thinking",
                "prompt",
                "chat_template_kwargs",
                "x",
            ]
        ),
        JSON_VALUES,
        max_size=6,
    ),
    endpoint=st.sampled_from(["chat/completions", "completions", "embeddings", "responses"]),
)
def test_wrong_types_in_known_fields_never_crash_sparkd(
    live: Live, document: dict[str, object], endpoint: str
) -> None:
    status, _, answer = raw(live, http("POST", f"/v1/{endpoint}", json.dumps(document).encode(), AUTH))
    assert status < 500 or status == 502, answer  # 502: the fake engine's own refusal relayed
    if status >= 400:
        assert_envelope(status, answer)
    record("inputs_tried")


@pytest.mark.parametrize("depth", [10, 900, 5000, 100_000])
def test_deeply_nested_json_is_refused_not_crashed_on(live: Live, depth: int) -> None:
    nested = b'{"model": "alpha", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    status, _, answer = raw(live, http("POST", "/v1/chat/completions", nested, AUTH))
    assert status == 400
    assert_envelope(status, answer)
    record("inputs_tried")


@FUZZ
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_odd_unicode_passes_through_unharmed(live: Live, text: str) -> None:
    document = {"model": "beta", "messages": [{"role": "user", "content": text}]}
    body = json.dumps(document, ensure_ascii=False).encode()
    status, _, answer = raw(live, http("POST", "/v1/chat/completions", body, AUTH))
    assert status == 200, answer
    record("inputs_tried")


def test_a_body_over_the_limit_is_413_even_in_chunks(live: Live) -> None:
    big = b"x" * (1024 * 1024 + 10)
    chunked = (
        b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (big[:600_000], big[600_000:]))
        + b"0\r\n\r\n"
    )
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: s\r\nConnection: close\r\n"
    head += b"Transfer-Encoding: chunked\r\n"
    head += f"Authorization: Bearer {KEY}\r\n\r\n".encode()
    status, _, answer = raw(live, head + chunked)
    assert status == 413
    assert_envelope(status, answer)
    record("inputs_tried")


PATH_TRICKS = [
    "/v1/../tokenize",
    "/v1/alpha/../../tokenize",
    "/v1/%2e%2e/tokenize",
    "/v1/alpha%2F..%2Ftokenize",
    "//v1/chat/completions/../../sleep",
    "/v1/alpha/tokenize",
    "/v1/alpha/chat/completions/../../../collective_rpc",
    "/sleep",
    "/wake_up",
    "/collective_rpc",
    "/metrics/../tokenize",
    "/v1/alpha/v1/tokenize",
    "/v1/" + "a" * 5000,
    "/v1/alpha/chat%2Fcompletions",
    "/load",
    "/invocations",
    "/ping",
    "/version",
    "/reset_prefix_cache",
    "/v1/load_lora_adapter",
    "/start_profile",
    "/server_info",
    "/pause",
    "/update_weights",
]


@pytest.mark.parametrize("path", PATH_TRICKS)
def test_engine_admin_routes_cannot_be_reached_through_sparkd(live: Live, path: str) -> None:
    before = live.engine_requests()
    status, _, answer = raw(live, http("POST", path, b'{"model": "alpha", "prompt": "x"}', AUTH))
    assert status in (400, 404), (path, status)
    assert_envelope(status, answer)
    assert live.engine_requests() == before
    record("inputs_tried")


AUTH_ATTEMPTS = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer wrong-key-0123456789abcdef"},
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": f"Token {KEY}"},
    {"X-Api-Key": "nope"},
    {"Authorization": f"Bearer {KEY[:-1]}"},
    {"Authorization": f"Bearer {KEY}x"},
    {"Authorization": f"Bearer {KEY.upper()}"},
    {"Authorization": "Bearer " + "k" * 10000},
]


@pytest.mark.parametrize("headers", AUTH_ATTEMPTS, ids=[str(i) for i in range(len(AUTH_ATTEMPTS))])
def test_without_a_valid_key_nothing_is_woken(live: Live, headers: dict[str, str]) -> None:
    started = list(live.bed.units.started)
    body = json.dumps({"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, answer = raw(live, http("POST", "/v1/chat/completions", body, headers))
    assert status == 401
    assert assert_envelope(status, answer)["type"] == "authentication_error"
    assert live.bed.units.started == started
    record("inputs_tried")


@pytest.mark.parametrize("query", [f"?key={KEY}", f"?api_key={KEY}"])
def test_keys_in_the_url_are_refused(live: Live, query: str) -> None:
    status, _, answer = raw(live, http("GET", "/v1/models" + query))
    assert (status, assert_envelope(status, answer)["code"]) == (401, "key_in_url")
    record("inputs_tried")


@pytest.mark.parametrize("value", ["x\r\nX-Injected: 1", "x\nAuthorization: Bearer " + KEY, "x\x00y"])
def test_header_injection_is_not_a_way_in(live: Live, value: str) -> None:
    started = list(live.bed.units.started)
    body = json.dumps({"model": "alpha", "messages": []}).encode()
    status, headers, _ = raw(live, http("POST", "/v1/chat/completions", body, {"X-Api-Key": value}))
    assert status in (400, 401)
    assert "x-injected" not in headers
    assert live.bed.units.started == started
    record("inputs_tried")


def test_sparkd_still_serves_after_all_of_it(live: Live) -> None:
    body = json.dumps({"model": "beta", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, answer = raw(live, http("POST", "/v1/chat/completions", body, AUTH))
    assert status == 200, answer
    assert live.bed.runtime.scheduler.queued() == 0
    assert all(view.in_flight == 0 for view in live.bed.runtime.scheduler.views(0))
