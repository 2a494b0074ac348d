"""The rendered demo unit runs the real vLLM engine under systemd and podman, and stops cleanly."""

from __future__ import annotations

import time
import urllib.request

import openai
import pytest
from testbed import PrivateSystemd

from tests.system.conftest import SPARKD, wait_for

DEMO_URL = "http://127.0.0.1:18000"
UNIT = "sparkd-demo.service"


def healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{DEMO_URL}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def unit_property(bed: PrivateSystemd, name: str) -> str:
    return bed.run("systemctl", "show", UNIT, "-p", name, "--value").stdout.strip()


CONFIG = "/run/sparkd-demo-unit"  # inside the bed: settings whose drop-in turns the demo on


@pytest.fixture(scope="module")
def demo_unit(bed: PrivateSystemd) -> PrivateSystemd:
    # The demo ships off; `sparkd demo install` turns it on with a drop-in, as this one does.
    bed.write_file(f"{CONFIG}/models.d/demo.toml", '[models.demo]\nstatus = "validated"\n')
    bed.write_file(f"{CONFIG}/sparkd.toml", f'models_d = "{CONFIG}/models.d"\n')
    rendered = bed.run(SPARKD, "--config", f"{CONFIG}/sparkd.toml", "render", "--gpu", "no")
    assert "systemd reloaded" in rendered.stdout
    assert unit_property(bed, "LoadState") == "loaded"
    bed.run("systemctl", "start", UNIT)
    wait_for(healthy, timeout=300, what="the demo engine's /health")
    return bed


def test_sparkd_render_wrote_units_that_systemd_loaded(demo_unit: PrivateSystemd) -> None:
    listed = demo_unit.run("systemctl", "list-unit-files", "sparkd-*", "--no-legend").stdout
    assert "sparkd-demo.service" in listed
    assert "sparkd-gpt-oss-20b.service" in listed


def test_vllm_answers_a_chat_completion(demo_unit: PrivateSystemd) -> None:
    client = openai.OpenAI(base_url=f"{DEMO_URL}/v1", api_key="unused", max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0
    )
    assert reply.model == "demo"
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_vllm_streams_a_chat_completion(demo_unit: PrivateSystemd) -> None:
    client = openai.OpenAI(base_url=f"{DEMO_URL}/v1", api_key="unused", max_retries=0, timeout=120)
    stream = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=24,
        temperature=0,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 2
    assert "".join(pieces).strip()


def test_the_engines_output_is_in_the_units_journal(demo_unit: PrivateSystemd) -> None:
    journal = demo_unit.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat").stdout
    assert "Application startup complete" in journal


def test_systemctl_stop_ends_it_cleanly(demo_unit: PrivateSystemd) -> None:
    started = time.monotonic()
    demo_unit.run("systemctl", "stop", UNIT)
    took = time.monotonic() - started
    assert unit_property(demo_unit, "ActiveState") == "inactive"
    assert unit_property(demo_unit, "Result") == "success"
    assert took < 30, "the stop took as long as the stop timeout: the engine was killed, not stopped"
    journal = demo_unit.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat").stdout
    assert "SIGKILL" not in journal
    assert not healthy()
