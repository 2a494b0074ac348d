"""`sparkd check` on the link between two Sparks: each fact judged without the machine it describes."""

from __future__ import annotations

import dataclasses

from sparkd.link_check import LinkFacts, judge_link
from sparkd.preflight_items import Verdict

GOOD = LinkFacts(
    two_spark_models=["gpt-oss-120b"],
    configured=True,
    interface="enp1s0f0np0",
    interface_state="up",
    mtu=9000,
    addresses=["192.168.100.10"],
    address="192.168.100.10",
    peer_address="192.168.100.11",
    route_dev="enp1s0f0np0",
    rdma_devices=["rocep1s0f0"],
    peer="spark-b",
    peer_url="http://spark-b.lan:8009",
    peer_halves=["gpt-oss-120b"],
)


def verdicts(facts: LinkFacts) -> dict[str, Verdict]:
    return {item.name: item.verdict for item in judge_link(facts)}


def details(facts: LinkFacts) -> str:
    return " | ".join(f"{item.detail} ({item.fix})" for item in judge_link(facts))


def test_a_cabled_and_addressed_link_passes_every_check() -> None:
    assert set(verdicts(GOOD).values()) == {Verdict.OK}
    assert list(verdicts(GOOD)) == [
        "link interface enp1s0f0np0",
        "route to 192.168.100.11",
        "rdma",
        "peer spark-b",
        "worker half of gpt-oss-120b",
    ]


def test_nothing_to_check_when_no_model_spans_two_sparks() -> None:
    assert judge_link(LinkFacts()) == []


def test_a_two_spark_model_without_a_link_fails_and_says_where_to_set_it() -> None:
    facts = LinkFacts(two_spark_models=["gpt-oss-120b"])
    assert verdicts(facts) == {"link": Verdict.FAIL}
    assert "[link]" in details(facts) and "docs/two-sparks.md" in details(facts)


def test_a_route_over_another_port_fails_loudly() -> None:
    facts = dataclasses.replace(GOOD, route_dev="enP7s7")
    assert verdicts(facts)["route to 192.168.100.11"] is Verdict.FAIL
    assert "over enP7s7, not enp1s0f0np0" in details(facts)
    no_route = dataclasses.replace(GOOD, route_dev=None)
    assert "nowhere (no route)" in details(no_route)


def test_a_missing_down_or_unaddressed_interface_fails() -> None:
    missing = dataclasses.replace(GOOD, interface_state=None)
    down = dataclasses.replace(GOOD, interface_state="down")
    unaddressed = dataclasses.replace(GOOD, addresses=["10.0.0.5"])
    for facts, said in ((missing, "no such interface"), (down, "it is down"), (unaddressed, "is not one of")):
        assert verdicts(facts)["link interface enp1s0f0np0"] is Verdict.FAIL
        assert said in details(facts)


def test_a_small_mtu_and_no_rdma_are_warnings_with_their_fixes() -> None:
    facts = dataclasses.replace(GOOD, mtu=1500, rdma_devices=[])
    assert verdicts(facts)["link MTU enp1s0f0np0"] is Verdict.WARN
    assert verdicts(facts)["rdma"] is Verdict.WARN
    assert "ip link set enp1s0f0np0 mtu 9000" in details(facts)


def test_a_peer_that_does_not_answer_fails() -> None:
    facts = dataclasses.replace(
        GOOD, peer_problem="http://spark-b.lan:8009/healthz does not answer (refused)"
    )
    assert verdicts(facts)["peer spark-b"] is Verdict.FAIL


def test_a_split_model_the_peer_runs_no_worker_half_for_fails_and_says_what_to_enable() -> None:
    facts = dataclasses.replace(GOOD, peer_halves=[])
    assert verdicts(facts)["worker half of gpt-oss-120b"] is Verdict.FAIL
    assert "enable gpt-oss-120b with nodes = 2" in details(facts)
    unknown = dataclasses.replace(GOOD, peer_halves=None)  # the peer could not be asked
    assert "worker half of gpt-oss-120b" not in verdicts(unknown)


def test_a_peer_status_that_cannot_be_read_is_a_warning_naming_the_key() -> None:
    problem = "http://spark-b.lan:8009/sparkd/status answered 401"
    facts = dataclasses.replace(GOOD, peer_halves=None, peer_status_problem=problem)
    assert verdicts(facts)["worker halves"] is Verdict.WARN
    assert "answered 401" in details(facts) and "secret" in details(facts)
