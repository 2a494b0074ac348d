"""A model split across two Sparks, on loopback: two sparkds, each with fake units, each the other's
peer. `here` serves alpha with its head half; `there` runs alpha's worker half for it, as a request
for its own GPU: it waits behind a busy tenant, holds while leased, and its end stops the head."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkd import names, secrets
from sparkd.progress import Progress
from sparkd.pulls import Pulls
from sparkd.settings import Link, Peer
from sparkd.systemd import UnitChanged
from tests.loopback.harness import KEY, Bed, FakeUnits, error_code, gateway, post, run
from tests.waiting import eventually

CHAT = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
SPLIT = {"alpha": 'nodes = 2\nworker_command = ["join", "{peer_address}"]'}
HEAD, WORKER = "sparkd-alpha.service", "sparkd-worker-alpha.service"
Scenario = Callable[[Bed, Bed], Awaitable[None]]


@dataclass
class WeightsFetchedByPull:
    """Weights missing on a Spark until its pull unit for the model has run."""

    units: FakeUnits | None = None

    def missing(self, model_id: str) -> bool:
        return self.units is None or names.pull_unit(model_id) not in self.units.started

    def progress(self, model_id: str) -> Progress | None:
        return None

    def pulled_bytes(self, model_id: str) -> int | None:
        return None


def two_sparks(
    tmp_path: Path, scenario: Scenario, peer_url: str | None = None, pulls_there: Pulls | None = None
) -> None:
    async def main() -> None:
        back = Peer("spark-a", "http://127.0.0.1:9")  # there never asks here for anything
        link_there = Link("spark-a", "127.0.0.1", "127.0.0.1", "lo")
        slow_beta: dict[str, dict[str, object]] = {"beta": {"chunks": 40, "interval": 0.025}}  # about 1 s
        async with gateway(
            tmp_path / "there",
            more=SPLIT,
            peers=(back,),
            link=link_there,
            engine_options=slow_beta,
            pulls=pulls_there,
        ) as there:
            secrets.store(tmp_path / "here" / "secrets", "PEER_KEY", KEY)
            peer = Peer("spark-b", peer_url or there.url)
            link_here = Link("spark-b", "127.0.0.1", "127.0.0.1", "lo")
            async with gateway(
                tmp_path / "here", more=SPLIT, peers=(peer,), link=link_here, check_settled=False
            ) as here:
                await asyncio.wait_for(scenario(here, there), timeout=30)

    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    asyncio.run(main())


async def status_of(bed: Bed) -> dict[str, Any]:
    async with bed.session.get(bed.url + "/sparkd/status", headers=bed.headers()) as response:
        document: dict[str, Any] = await response.json()
        return document


def fail(bed: Bed, unit: str) -> None:
    """systemd says the unit failed (its process died)."""
    assert bed.units.on_event is not None
    bed.units.on_event(UnitChanged(unit, "failed", "failed", "signal", 9))


def test_a_request_starts_the_head_here_and_the_worker_half_there(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        status, _, payload = await post(here, "/v1/chat/completions", CHAT)
        assert status == 200, payload
        assert here.units.started == [HEAD] and WORKER not in here.units.started
        assert there.units.started == [WORKER]
        half = (await status_of(there))["worker_halves"][0]
        assert (half["model"], half["unit"], half["phase"], half["leased"]) == (
            "alpha",
            WORKER,
            "ready",
            True,
        )
        alpha = next(m for m in (await status_of(here))["models"] if m["id"] == "alpha")
        assert (alpha["nodes"], alpha["phase"]) == (2, "ready")
        # Stopping the head ends the lease; the worker half stops with it.
        here.runtime.manual_stop("alpha")
        await eventually(lambda: WORKER in there.units.stopped, "the worker half stopped")

    two_sparks(tmp_path, scenario)


def test_a_busy_peer_makes_the_split_model_wait_and_never_loses_its_own_answer(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        streamed = {**CHAT, "model": "beta", "stream": True}  # there's own model, answering for a second
        slow = asyncio.create_task(post(there, "/v1/chat/completions", streamed))
        await eventually(lambda: there.runtime.scheduler.view("beta", 0).in_flight == 1, "beta answering")
        status, _, payload = await post(here, "/v1/chat/completions", CHAT)
        assert status == 200, payload
        assert slow.done() and (await slow)[0] == 200  # beta's answer came first, whole
        assert there.units.started == ["sparkd-beta.service", WORKER]
        assert there.units.stopped[0] == "sparkd-beta.service"  # swapped out, once idle

    two_sparks(tmp_path, scenario)


def test_a_lease_the_head_gives_up_while_queued_is_forgotten_there(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        streamed = {**CHAT, "model": "beta", "stream": True}  # there's own model, busy for a second
        slow = asyncio.create_task(post(there, "/v1/chat/completions", streamed))
        await eventually(lambda: there.runtime.scheduler.view("beta", 0).in_flight == 1, "beta answering")
        url = there.url + "/sparkd/peer/workers/alpha"
        async with there.session.post(url, headers=there.headers()) as response:
            assert (await response.content.readline()) == b"queued\n"
        await eventually(lambda: there.runtime.scheduler.queued("worker-alpha") == 0, "the lease forgotten")
        assert (await slow)[0] == 200
        assert WORKER not in there.units.started

    two_sparks(tmp_path, scenario)


def test_someone_waiting_there_gets_the_gpu_back_once_the_split_model_is_idle(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        assert (await post(here, "/v1/chat/completions", CHAT))[0] == 200
        status, _, payload = await post(there, "/v1/chat/completions", {**CHAT, "model": "beta"})
        assert status == 200, payload
        assert HEAD in here.units.stopped and WORKER in there.units.stopped
        assert there.units.started == [WORKER, "sparkd-beta.service"]

    two_sparks(tmp_path, scenario)


def test_the_worker_halfs_death_stops_the_head(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        assert (await post(here, "/v1/chat/completions", CHAT))[0] == 200
        fail(there, WORKER)
        await eventually(lambda: HEAD in here.units.stopped, "the head stopped")
        view = here.runtime.scheduler.view("alpha", here.runtime.clock())
        assert view.last_failure is not None and "worker half on the peer" in view.last_failure
        # The next request brings both halves back.
        assert (await post(here, "/v1/chat/completions", CHAT))[0] == 200
        assert there.units.started == [WORKER, WORKER]

    two_sparks(tmp_path, scenario)


def test_weights_missing_there_are_pulled_for_the_worker_half_first(tmp_path: Path) -> None:
    pulls = WeightsFetchedByPull()

    async def scenario(here: Bed, there: Bed) -> None:
        pulls.units = there.units
        status, _, payload = await post(here, "/v1/chat/completions", CHAT)
        assert status == 200, payload
        assert there.units.started == ["sparkd-pull@alpha.service", WORKER]  # one pull, the model's

    two_sparks(tmp_path, scenario, pulls_there=pulls)


def test_a_peer_out_of_reach_fails_the_start_with_why(tmp_path: Path) -> None:
    async def scenario(here: Bed, there: Bed) -> None:
        status, headers, payload = await post(here, "/v1/chat/completions", CHAT)
        assert (status, error_code(payload)) == (503, "model_start_failed")
        assert "worker half on the peer: spark-b is out of reach" in str(payload)
        assert "Retry-After" in headers
        assert HEAD in here.units.stopped

    two_sparks(tmp_path, scenario, peer_url="http://127.0.0.1:9")


def test_without_a_link_a_split_model_is_refused_and_told_why(tmp_path: Path) -> None:
    async def scenario(bed: Bed) -> None:
        status, _, payload = await post(bed, "/v1/chat/completions", CHAT)
        assert (status, error_code(payload)) == (503, "model_start_failed")
        assert "spans two Sparks (nodes = 2) and this Spark has no [link]" in str(payload)
        assert bed.units.started == []  # nothing was tried

    run(tmp_path, scenario, more=SPLIT)
