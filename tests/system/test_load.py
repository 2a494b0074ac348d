"""Load on sparkd as installed: a 1000-request cold burst, and a soak over two mains and the utility.

The soak runs for SPARKD_SOAK_SECONDS (45 in a normal run; the full form is
`SPARKD_SOAK_SECONDS=600 scripts/test`) while an independent checker samples
unit states; no moment may show two main tenants and no request may starve.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import aiohttp
from testbed import PrivateSystemd

from tests.reliability import note, record
from tests.system.conftest import wait_for
from tests.system.sparkd_bed import KEY, URL, TenancyChecker, chat, install

SOAK_SECONDS = float(os.environ.get("SPARKD_SOAK_SECONDS", "45"))
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


SPARKD_SETTINGS = "quiet_exit = 0\nqueue_cap = 2000\n"  # for the bursts


async def burst(model: str, count: int, timeout: float = 120) -> list[tuple[int, str | None]]:
    """`count` requests at once; (status, Retry-After) each. A request that hangs fails the run."""
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> tuple[int, str | None]:
            async with session.post(
                f"{URL}/v1/chat/completions",
                json={**CHAT, "model": model},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                await response.read()
                return response.status, response.headers.get("Retry-After")

        return await asyncio.gather(*(one() for _ in range(count)))


def starts_of(bed: PrivateSystemd, model: str) -> int:
    journal = bed.run("journalctl", "-u", "sparkd.service", "-o", "cat", "--no-pager").stdout
    return journal.count(f"starting {model}\n")


def rss_kib(bed: PrivateSystemd) -> int:
    pid = bed.unit_property("sparkd.service", "MainPID")
    status = bed.run("cat", f"/proc/{pid}/status").stdout
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_a_thousand_requests_on_a_cold_model_make_one_start_and_all_succeed(sparkd: PrivateSystemd) -> None:
    bed = sparkd
    bed.run("systemctl", "stop", "sparkd-fake-b.service", check=False)
    assert chat("fake-a")[0] == 200  # sparkd up; fake-b is cold
    before = starts_of(bed, "fake-b")
    results = asyncio.run(burst("fake-b", 1000))
    assert [status for status, _ in results] == [200] * 1000
    assert starts_of(bed, "fake-b") - before == 1
    record("requests_sent", 1000)
    record("requests_ok", 1000)
    record("cold_starts", 1)


def test_with_the_default_cap_the_excess_is_refused_at_once(sparkd: PrivateSystemd) -> None:
    bed = sparkd
    install(bed, settings="quiet_exit = 0\n")  # queue_cap 100
    bed.run("systemctl", "stop", "sparkd-fake-a.service", check=False)
    wait_for(lambda: bed.unit_state("sparkd-fake-a.service") != "active", 30, "fake-a to stop")
    started = time.monotonic()
    results = asyncio.run(burst("fake-a", 1000, timeout=60))
    took = time.monotonic() - started
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(ok) + len(refused) == 1000, {status for status, _ in results}
    assert 100 <= len(ok) <= 101  # the queue holds 100; one more may be granted as it opens
    assert all(retry is not None and int(retry) >= 1 for _, retry in refused)
    assert took < 60
    record("requests_sent", 1000)
    record("requests_ok", len(ok))
    record("requests_refused", len(refused))
    install(bed, settings="quiet_exit = 0\nqueue_cap = 2000\n")


def test_a_soak_over_two_mains_and_the_utility_never_has_two_tenants(sparkd: PrivateSystemd) -> None:
    bed = sparkd
    assert chat("fake-a")[0] == 200
    rss_before = rss_kib(bed)
    outcomes: list[tuple[str, int, float]] = []

    async def worker(seed: int, deadline: float) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            while time.monotonic() < deadline:
                model = rng.choice(["fake-a", "fake-a", "fake-b", "fake-util"])
                started = time.monotonic()
                async with session.post(
                    f"{URL}/v1/chat/completions",
                    json={**CHAT, "model": model},
                    timeout=aiohttp.ClientTimeout(total=180),
                ) as response:
                    await response.read()
                    outcomes.append((model, response.status, time.monotonic() - started))
                await asyncio.sleep(rng.uniform(0, 0.3))

    async def soak() -> None:
        deadline = time.monotonic() + SOAK_SECONDS
        await asyncio.gather(*(worker(seed, deadline) for seed in range(8)))

    with TenancyChecker(bed) as checker:
        asyncio.run(soak())
    rss_after = rss_kib(bed)

    assert checker.violations == []
    assert outcomes, "no request was made"
    assert {status for _, status, _ in outcomes} == {200}
    longest = max(waited for _, _, waited in outcomes)
    assert longest < 120, "a request starved"
    assert {model for model, _, _ in outcomes} == {"fake-a", "fake-b", "fake-util"}
    assert rss_after - rss_before < 30 * 1024
    record("requests_sent", len(outcomes))
    record("requests_ok", len(outcomes))
    record("state_samples", checker.samples)
    record("two_tenant_moments", len(checker.violations))
    record("requests_lost_or_hung", 0)
    record("sparkd_rss_growth_kib", max(0, rss_after - rss_before))
    note(
        "Load and soak",
        f"Soak: {SOAK_SECONDS:.0f} s, 8 clients mixing fake-a, fake-b and the utility; "
        f"{len(outcomes)} requests, the longest waited {longest:.1f} s; sparkd's RSS "
        f"{rss_before / 1024:.0f} MiB before, {rss_after / 1024:.0f} MiB after.",
    )
