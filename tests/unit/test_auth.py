from __future__ import annotations

from pathlib import Path

import pytest

from sparkd.auth import (
    KeyFileError,
    KeyRing,
    create_key,
    key_file,
    parse_keys,
    presented_key,
    read_keys,
    revoke_key,
)

KEY = "k" * 32


def test_keys_are_name_colon_key_lines_with_comments() -> None:
    assert parse_keys(f"# mine\nlaptop:{KEY}\n\nci : {KEY}2 \n") == {"laptop": KEY, "ci": KEY + "2"}


@pytest.mark.parametrize("line", ["nocolon", f":{KEY}", "short:abc"])
def test_a_bad_line_is_named_by_number(line: str) -> None:
    with pytest.raises(KeyFileError, match=":2:"):
        parse_keys(f"ok:{KEY}\n{line}\n", "keys")


def test_the_ring_names_the_key_presented(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"laptop:{KEY}\n")
    ring = KeyRing(path)
    ring.load()
    assert ring.who(KEY) == "laptop"
    assert ring.who(KEY + "x") is None
    assert ring.who(None) is None


def test_a_reload_picks_up_new_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"old:{KEY}\n")
    ring = KeyRing(path)
    ring.load()
    path.write_text(f"new:{KEY}9\n")
    ring.load()
    assert (ring.who(KEY), ring.who(KEY + "9")) == (None, "new")


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "key"),
    [
        (f"Bearer {KEY}", None, KEY),
        (f"bearer  {KEY} ", None, KEY),
        (None, KEY, KEY),
        ("Basic abc", KEY, None),
        (None, None, None),
    ],
)
def test_the_presented_key(authorization: str | None, x_api_key: str | None, key: str | None) -> None:
    assert presented_key(authorization, x_api_key) == key


def test_the_credential_is_used_when_the_file_is_not_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "api-keys").write_text(f"c:{KEY}\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert key_file(tmp_path / "absent") == tmp_path / "api-keys"
    readable = tmp_path / "readable"
    readable.write_text("")
    assert key_file(readable) == readable


def test_keys_are_created_listed_and_revoked_in_a_root_only_file(tmp_path: Path) -> None:
    path = tmp_path / "api-keys"
    key = create_key(path, "laptop")
    assert key.startswith("sk-sparkd-") and len(key) > 40
    create_key(path, "ci")
    assert list(read_keys(path)) == ["laptop", "ci"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert revoke_key(path, "laptop")
    assert not revoke_key(path, "laptop")
    assert list(read_keys(path)) == ["ci"]
    with pytest.raises(KeyFileError):
        create_key(path, "has space")
