"""Dashboard sessions: signed, expiring, bound to a key's name; anything else is no session."""

from __future__ import annotations

import stat
from pathlib import Path

from sparkd.sessions import Sessions, load_secret

SESSIONS = Sessions(b"s" * 32)


def test_a_session_names_its_key_until_it_expires() -> None:
    token = SESSIONS.issue("laptop", now=1000.0, lifetime=60)
    assert SESSIONS.verify(token, now=1059.0) == "laptop"
    assert SESSIONS.verify(token, now=1061.0) is None


def test_a_forged_or_altered_token_is_no_session() -> None:
    token = SESSIONS.issue("laptop", now=1000.0)
    name, expiry, signature = token.split(".")
    assert SESSIONS.verify(f"{name}.{int(expiry) + 3600}.{signature}", now=1000.0) is None
    assert SESSIONS.verify(Sessions(b"t" * 32).issue("laptop", now=1000.0), now=1000.0) is None
    for junk in ("", ".", "..", "a.b.c", "x" * 500, "bGFwdG9w.notanumber.sig"):
        assert SESSIONS.verify(junk, now=1000.0) is None


def test_the_secret_is_made_once_and_readable_by_root_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ui-session.key"
    first = load_secret(path)
    assert load_secret(path) == first and len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
