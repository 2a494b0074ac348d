from __future__ import annotations

from sparkd.catalogue import Role
from sparkd.describe import status_line
from sparkd.lifecycle import Policy
from sparkd.scheduler import Scheduler


def test_the_status_line_says_what_runs_and_when_it_stops() -> None:
    s = Scheduler({"a": Policy(Role.MAIN, idle_timeout=1200, min_uptime=30, start_timeout=60)})
    assert status_line(s, 0) == "no model running, 0 queued"
    s.on_manual_start("a", 0)
    s.on_ready("a", 10)
    assert status_line(s, 70) == "a ready, 0 in flight, idle stop in 19m, 0 queued"
    s.on_request(1, "a", 80)
    assert status_line(s, 81) == "a ready, 1 in flight, 0 queued"
