"""Suite-wide rules: in CI a skipped system test is a failure, not a pass; reports come from whole modules."""

from __future__ import annotations

import os
from collections import Counter

import pytest

_skipped_system: list[str] = []
_collected: Counter[str] = Counter()  # tests per module, as this run selected them
_passed: Counter[str] = Counter()
_partial: set[str] = set()  # modules some of whose tests this run left out


def _module(nodeid: str) -> str:
    return nodeid.split("::", maxsplit=1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _collected.update(_module(item.nodeid) for item in items)
    _partial.update(_module(arg) for arg in config.args if "::" in arg)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _partial.update(_module(item.nodeid) for item in items)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and report.nodeid.startswith("tests/system/"):
        _skipped_system.append(report.nodeid)
    if report.when == "call" and report.passed:
        _passed[_module(report.nodeid)] += 1


def complete_modules() -> set[str]:
    """Modules every test of which this run selected, ran and passed."""
    return {m for m, count in _collected.items() if m not in _partial and _passed[m] == count}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.reliability import write_report

    write_report(complete_modules())
    if os.environ.get("CI") and _skipped_system:
        print(f"\nCI: {len(_skipped_system)} system test(s) skipped; a missing part is a failure here:")
        for nodeid in _skipped_system:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
