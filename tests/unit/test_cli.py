from __future__ import annotations

import argparse

import pytest

from sparkd.cli import _parser, main

COMMANDS = [
    ["serve"],
    ["status"],
    ["models"],
    ["start"],
    ["stop"],
    ["keep-warm"],
    ["logs"],
    ["check"],
    ["render"],
    ["export"],
    ["key"],
    ["key", "create"],
    ["key", "list"],
    ["key", "revoke"],
    ["images"],
    ["images", "build"],
    ["images", "list"],
    ["images", "prune"],
    ["pull"],
    ["rm"],
    ["demo"],
    ["demo", "install"],
    ["secret"],
    ["secret", "set"],
    ["secret", "list"],
    ["secret", "rm"],
]


def test_every_command_but_serve_has_a_handler() -> None:
    # `serve` goes to the daemon before any settings are read: it answers a broken file itself.
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    runs = {name: verb.get_default("run") for name, verb in subparsers.choices.items()}
    assert {c[0] for c in COMMANDS} == set(runs)
    assert [name for name, run in runs.items() if run is None] == ["serve"]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: sparkd" in capsys.readouterr().out


def test_a_bad_catalogue_is_exit_code_2(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    (tmp_path / "models.d").mkdir()
    (tmp_path / "models.d" / "bad.toml").write_text("[models.demo]\nno_such_field = 1\n")
    (tmp_path / "sparkd.toml").write_text(f'models_d = "{tmp_path / "models.d"}"\n')
    assert main(["--config", str(tmp_path / "sparkd.toml"), "models"]) == 2
    assert "no_such_field" in capsys.readouterr().err


def test_models_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "/dev/null", "models", "--role", "exclusive"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 4


def test_status_without_a_daemon_is_exit_code_3(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    (tmp_path / "sparkd.toml").write_text('listen = "127.0.0.1:9"\n')
    assert main(["--config", str(tmp_path / "sparkd.toml"), "status"]) == 3
