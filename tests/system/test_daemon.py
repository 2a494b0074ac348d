"""sparkd as installed: socket-activated by systemd, starting, swapping and idling real podman units.

Lifecycle tests use a fake engine (tests/fake_engine.py) in real containers
under real Quadlet units; the chat path uses the real vLLM demo model.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import openai
import pytest
from testbed import BED_CONFIG, PrivateSystemd, install_sparkd

from tests.system.conftest import wait_for
from tests.system.sparkd_bed import (
    FAKE_MODELS,
    KEY,
    MAINS,
    PORT,
    URL,
    TenancyChecker,
    active_mains,
    chat,
    request,
    streamed_chat,
)


@pytest.fixture
def tenancy_checker(sparkd: PrivateSystemd) -> Iterator[list[set[str]]]:
    with TenancyChecker(sparkd) as checker:
        yield checker.violations


def test_the_socket_starts_sparkd_on_the_first_connection(sparkd: PrivateSystemd) -> None:
    assert sparkd.unit_state("sparkd.socket") == "active"
    sparkd.run("systemctl", "stop", "sparkd.service")  # whatever earlier tests left running
    assert sparkd.unit_state("sparkd.service") == "inactive"
    status, _, _ = request("/healthz", key=None)
    assert status == 200
    assert sparkd.unit_state("sparkd.service") == "active"
    assert sparkd.unit_property("sparkd.service", "Type") == "notify"


def test_a_changed_configuration_is_validated_once_and_pydantic_never_stays(sparkd: PrivateSystemd) -> None:
    def restart_and_say_whether_it_validated() -> bool:
        sparkd.run("systemctl", "restart", "sparkd.service")
        assert request("/healthz", key=None)[0] == 200
        # pydantic and its validators ran in a forked child, or not at all.
        maps = sparkd.run("cat", f"/proc/{sparkd.unit_property('sparkd.service', 'MainPID')}/maps").stdout
        assert "pydantic" not in maps
        invocation = sparkd.unit_property("sparkd.service", "InvocationID")
        journal = sparkd.run("journalctl", f"_SYSTEMD_INVOCATION_ID={invocation}", "-o", "cat").stdout
        return "configuration validated" in journal

    added = f"{BED_CONFIG}/models.d/added.toml"
    sparkd.write_file(added, "# a new drop-in, with no models yet\n")
    try:
        assert restart_and_say_whether_it_validated()
        assert not restart_and_say_whether_it_validated()
    finally:
        sparkd.run("rm", "-f", added)


def test_without_a_key_nothing_wakes(sparkd: PrivateSystemd) -> None:
    status, _, _ = chat("fake-a")
    assert status == 200  # with the key it works...
    sparkd.run("systemctl", "stop", "sparkd-fake-a.service")
    status, _, payload = request("/v1/chat/completions", {"model": "fake-a", "messages": []}, key=None)
    assert status == 401, payload
    # Auth comes before the scheduler, whose events are applied before any
    # answer is sent: had the request woken fake-a, its status says so now.
    _, _, status_page = request("/sparkd/status")
    fake_a = next(m for m in status_page["models"] if m["id"] == "fake-a")  # type: ignore[attr-defined]
    assert (fake_a["phase"], fake_a["queued"]) == ("stopped", 0)
    assert sparkd.unit_state("sparkd-fake-a.service") == "inactive"


def test_the_demo_model_answers_the_openai_sdk_through_sparkd(sparkd: PrivateSystemd) -> None:
    client = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=300)
    reply = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0
    )
    assert reply.choices[0].message.content
    stream = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Count to five."}], max_tokens=24, stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 2
    models = {m.id for m in client.models.list()}
    assert {"demo", "fake-a", "gpt-oss-20b"} <= models


def test_a_budget_beyond_the_context_is_fitted_with_the_engines_own_count(sparkd: PrivateSystemd) -> None:
    """Sent straight to vLLM this is a 400 (2048-token context); through sparkd it is answered."""
    prompt = "hello " * 1900
    status, headers, payload = request(
        "/v1/chat/completions",
        {
            "model": "demo",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 100000,
        },
    )
    assert status == 200, payload
    assert "max_tokens_capped" in headers["X-Sparkd-Rewrites"]
    usage = payload["usage"]
    assert isinstance(usage, dict)
    assert usage["prompt_tokens"] + usage["completion_tokens"] <= 2048


def test_tools_sent_to_a_model_without_tool_support_are_stripped(sparkd: PrivateSystemd) -> None:
    """vLLM without a tool parser answers 400 to tools; sparkd strips them for the demo model."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    status, headers, payload = request(
        "/v1/chat/completions",
        {
            "model": "demo",
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": tools,
            "tool_choice": "auto",
            "max_tokens": 16,
        },
    )
    assert status == 200, payload
    assert "tools_stripped" in headers["X-Sparkd-Rewrites"]


def test_a_swap_never_has_two_tenants(sparkd: PrivateSystemd, tenancy_checker: list[set[str]]) -> None:
    for model in ("fake-a", "fake-b", "fake-a"):
        status, _, payload = chat(model)
        assert (status, payload.get("model")) == (200, model), payload
        others = active_mains(sparkd) - {model}
        assert not others
    assert tenancy_checker == []


def test_the_utility_makes_way_for_an_exclusive_model_and_comes_back(sparkd: PrivateSystemd) -> None:
    wait_for(lambda: sparkd.unit_state("sparkd-fake-util.service") == "active", 60, "the warm utility")
    status, _, _ = chat("fake-util")
    assert status == 200
    status, _, _ = chat("fake-excl")
    assert status == 200
    assert sparkd.unit_state("sparkd-fake-util.service") == "inactive"
    util_left = int(sparkd.unit_property("sparkd-fake-util.service", "InactiveEnterTimestampMonotonic"))
    excl_began = int(sparkd.unit_property("sparkd-fake-excl.service", "InactiveExitTimestampMonotonic"))
    assert util_left <= excl_began, "the exclusive model started before the utility was gone"
    status, _, payload = chat("fake-util")
    assert (status, payload["error"]["code"]) == (503, "utility_paused")  # type: ignore[index]
    sparkd.run("systemctl", "stop", "sparkd-fake-excl.service")
    wait_for(
        lambda: sparkd.unit_state("sparkd-fake-util.service") == "active", 60, "the utility to come back"
    )


def test_an_idle_model_is_stopped_by_its_systemd_timer(sparkd: PrivateSystemd) -> None:
    status, _, _ = chat("fake-idle")
    assert status == 200
    wait_for(
        lambda: (
            "sparkd-idle-fake-idle.timer"
            in sparkd.run("systemctl", "list-timers", "--all", "--no-legend").stdout
        ),
        10,
        "the idle timer to be listed",
    )
    wait_for(lambda: sparkd.unit_state("sparkd-fake-idle.service") == "inactive", 30, "the idle stop")
    assert sparkd.unit_property("sparkd-fake-idle.service", "Result") == "success"


def test_an_idle_model_is_stopped_by_its_timer_even_with_sparkd_stopped(sparkd: PrivateSystemd) -> None:
    status, _, _ = chat("fake-idle")
    assert status == 200
    wait_for(
        lambda: "sparkd-idle-fake-idle.timer" in sparkd.run("systemctl", "list-timers", "--no-legend").stdout,
        10,
        "the idle timer to be armed",
    )
    sparkd.run("systemctl", "stop", "sparkd.service")  # the socket stays; nothing else wakes sparkd
    try:
        wait_for(lambda: sparkd.unit_state("sparkd-fake-idle.service") == "inactive", 30, "the idle stop")
        assert sparkd.unit_state("sparkd.service") == "inactive"
    finally:
        wait_for(lambda: request("/v1/models")[0] == 200, 30, "the socket to bring sparkd back")


def test_an_engine_that_fails_to_start_gets_a_fast_503_naming_the_cause(sparkd: PrivateSystemd) -> None:
    started = time.monotonic()
    status, headers, payload = chat("fake-broken")
    assert status == 503
    error = payload["error"]
    assert isinstance(error, dict)
    assert error["code"] == "model_start_failed"
    assert "failing at start on purpose" in str(error["message"])
    assert int(headers["Retry-After"]) >= 1
    assert time.monotonic() - started < 30


def test_sparkd_killed_with_a_model_running_comes_back_and_adopts_it(sparkd: PrivateSystemd) -> None:
    status, _, _ = chat("fake-a")
    assert status == 200
    engine = sparkd.unit_property("sparkd-fake-a.service", "InvocationID")
    sparkd.run("systemctl", "kill", "-s", "KILL", "sparkd.service")
    wait_for(
        lambda: sparkd.unit_state("sparkd.service") in ("active", "inactive", "failed", "activating"),
        10,
        "sparkd to be killed",
    )
    status, _, payload = chat("fake-a")
    assert (status, payload.get("model")) == (200, "fake-a")
    assert sparkd.unit_property("sparkd-fake-a.service", "InvocationID") == engine, "the engine was restarted"
    assert active_mains(sparkd) == {"fake-a"}


def test_a_reload_takes_new_keys_without_a_restart(sparkd: PrivateSystemd) -> None:
    main_pid = sparkd.unit_property("sparkd.service", "MainPID")
    new_key = "bed-" + secrets.token_hex(16)
    sparkd.write_file(f"{BED_CONFIG}/api-keys", f"bed:{KEY}\nnew:{new_key}\n")
    sparkd.run("systemctl", "reload", "sparkd.service")
    wait_for(lambda: request("/v1/models", key=new_key)[0] == 200, 10, "the new key to work")
    assert sparkd.unit_property("sparkd.service", "MainPID") == main_pid


@pytest.mark.parametrize(
    ("path", "broken", "named"),
    [
        (f"{BED_CONFIG}/api-keys", "a line that is no key\n", "api-keys:1"),
        # Validated in a forked child (the kept configuration no longer matches).
        (f"{BED_CONFIG}/models.d/typo.toml", "[models.fake-a]\ncontext_lenght = 1\n", "context_lenght"),
    ],
)
def test_a_broken_configuration_is_answered_with_a_503_that_says_where_to_look(
    sparkd: PrivateSystemd, path: str, broken: str, named: str
) -> None:
    before = sparkd.run("cat", path, check=False).stdout
    sparkd.write_file(path, broken)
    try:
        sparkd.run("systemctl", "restart", "sparkd.service")
        status, _, payload = request("/v1/models", timeout=20)
        error = payload["error"]
        assert isinstance(error, dict)
        assert (status, error["code"]) == (503, "configuration_error")
        assert "journalctl -u sparkd" in error["message"]
        # The details are for the machine's administrators: the status line and the journal.
        assert named in sparkd.unit_property("sparkd.service", "StatusText")
        assert sparkd.unit_state("sparkd.service") == "active"  # no restart loop
    finally:
        if before:
            sparkd.write_file(path, before)
        else:
            sparkd.run("rm", "-f", path)
        sparkd.run("systemctl", "restart", "sparkd.service")
        wait_for(lambda: request("/v1/models")[0] == 200, 30, "sparkd to serve again")


def test_each_request_is_one_structured_journal_entry(sparkd: PrivateSystemd) -> None:
    chat("fake-a")  # warm
    _, headers, _ = chat("fake-a")
    request_id = headers["X-Request-Id"]

    def entries(of: str = request_id) -> list[str]:
        return sparkd.run(
            "journalctl", "-u", "sparkd.service", f"REQUEST_ID={of}", "-o", "json", "--no-pager"
        ).stdout.splitlines()

    # Entries reach the journal in batches, a moment after the answer, in order:
    # once a later request's entry is there, any second entry of this one would be too.
    wait_for(lambda: len(entries()) > 0, 5, "the request's journal entry")
    _, later, _ = chat("fake-a")
    wait_for(lambda: len(entries(later["X-Request-Id"])) > 0, 5, "the later request's journal entry")
    assert len(entries()) == 1
    entry = json.loads(entries()[0])
    assert (entry["MODEL"], entry["STATUS"], entry["COLD_START"]) == ("fake-a", "200", "no")
    assert float(entry["DURATION_MS"]) > 0
    assert "fake-a" in sparkd.unit_property("sparkd.service", "StatusText")


def test_a_streaming_sdk_client_sees_loading_progress_during_a_real_cold_start(
    sparkd: PrivateSystemd,
) -> None:
    sparkd.run("systemctl", "stop", "sparkd-demo.service")
    reasoning, content = streamed_chat("demo")
    assert "starting demo" in reasoning
    assert content.strip()


def test_a_quiet_sparkd_exits_and_the_socket_brings_it_back(sparkd: PrivateSystemd) -> None:
    install_sparkd(sparkd, f"127.0.0.1:{PORT}", KEY, settings='quiet_exit = "2s"\n', models=FAKE_MODELS)
    for model in MAINS:
        sparkd.run("systemctl", "stop", f"sparkd-{model}.service")
    assert request("/healthz", key=None)[0] == 200
    wait_for(lambda: sparkd.unit_state("sparkd.service") == "inactive", 30, "sparkd to exit when quiet")
    assert sparkd.unit_property("sparkd.service", "Result") == "success"
    assert sparkd.unit_state("sparkd.socket") == "active"
    status, _, payload = chat("fake-a")
    assert (status, payload.get("model")) == (200, "fake-a")
    assert sparkd.unit_state("sparkd.service") == "active"
