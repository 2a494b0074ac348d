"""Suite-wide rules: in CI a skipped system test is a failure, not a pass."""

from __future__ import annotations

import os

import pytest

_skipped_system: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and report.nodeid.startswith("tests/system/"):
        _skipped_system.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.reliability import write_report

    write_report()
    if os.environ.get("CI") and _skipped_system:
        print(f"\nCI: {len(_skipped_system)} system test(s) skipped; a missing part is a failure here:")
        for nodeid in _skipped_system:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
