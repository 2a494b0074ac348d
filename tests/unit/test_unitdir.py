from __future__ import annotations

from pathlib import Path

from sparkd.unitdir import write_unit_set


def test_writes_new_files_and_reports_them(tmp_path: Path) -> None:
    result = write_unit_set(tmp_path, {"sparkd-a.container": "A\n"})
    assert result.written == ["sparkd-a.container"]
    assert (tmp_path / "sparkd-a.container").read_text() == "A\n"


def test_leaves_identical_files_alone(tmp_path: Path) -> None:
    write_unit_set(tmp_path, {"sparkd-a.container": "A\n"})
    result = write_unit_set(tmp_path, {"sparkd-a.container": "A\n"})
    assert (result.written, result.unchanged, result.changed) == ([], ["sparkd-a.container"], False)


def test_removes_only_stale_files_that_sparkd_owns(tmp_path: Path) -> None:
    (tmp_path / "sparkd-gone.container").write_text("old")
    (tmp_path / "someone-elses.container").write_text("theirs")
    result = write_unit_set(tmp_path, {"sparkd-a.container": "A\n"})
    assert result.removed == ["sparkd-gone.container"]
    assert (tmp_path / "someone-elses.container").read_text() == "theirs"


def test_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_unit_set(tmp_path, {"sparkd-a.container": "A\n", "sparkd-b.container": "B\n"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sparkd-a.container", "sparkd-b.container"]
