"""The daemon's kept configuration: used while no file changed, validated again when one did."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkd import config
from sparkd.config import ConfigError, load_config

MODEL = """
[models.{id}]
image = "localhost/{id}:latest"
weights = "org/{id}"
context_length = {context}
"""


class Files:
    """A settings file, a shipped catalogue and a drop-in directory, as an operator edits them."""

    def __init__(self, root: Path) -> None:
        self.shipped = root / "shipped"
        self.dropins = root / "models.d"
        self.settings = root / "sparkd.toml"
        self.cache = root / "state" / config.CACHE_NAME
        self.shipped.mkdir()
        self.cache.parent.mkdir()
        self.write_settings()
        self.write(self.shipped / "a.toml", MODEL.format(id="alpha", context=4096))

    def write_settings(self, extra: str = "") -> None:
        self.write(self.settings, f'catalogue_dir = "{self.shipped}"\nmodels_d = "{self.dropins}"\n{extra}')

    def write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def load(self) -> config.Config:
        return load_config(self.settings, self.cache)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


@pytest.fixture
def validations(caplog: pytest.LogCaptureFixture) -> Callable[[], int]:
    """How many loads so far validated the files (in a child) rather than taking the kept result."""
    caplog.set_level(logging.INFO, logger="sparkd.config")
    return lambda: sum("configuration validated" in r.getMessage() for r in caplog.records)


def context_of(loaded: config.Config, model_id: str) -> int:
    model = loaded.catalogue.resolve(model_id)
    assert model is not None
    return model.context_length


def test_a_second_start_takes_the_kept_configuration(files: Files, validations: Callable[[], int]) -> None:
    first = files.load()
    second = files.load()
    assert validations() == 1
    assert second == first


def test_an_edited_model_file_is_validated_again(files: Files, validations: Callable[[], int]) -> None:
    files.load()
    files.write(files.shipped / "a.toml", MODEL.format(id="alpha", context=8192))
    assert context_of(files.load(), "alpha") == 8192
    assert validations() == 2


def test_an_edit_that_keeps_size_and_modification_time_is_still_seen(files: Files) -> None:
    files.load()
    path = files.shipped / "a.toml"
    before = path.stat()
    path.write_text(MODEL.format(id="alpha", context=2048))  # 4096 -> 2048: same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert context_of(files.load(), "alpha") == 2048


def test_an_added_and_a_removed_drop_in_are_seen(files: Files) -> None:
    files.load()
    dropin = files.dropins / "mine.toml"
    files.write(dropin, MODEL.format(id="mine", context=1024))
    assert files.load().catalogue.resolve("mine") is not None
    dropin.unlink()
    assert files.load().catalogue.resolve("mine") is None


def test_edited_settings_are_seen(files: Files) -> None:
    assert files.load().settings.queue_cap == 100
    files.write_settings("queue_cap = 7\n")
    assert files.load().settings.queue_cap == 7


def test_a_broken_file_fails_as_it_would_without_the_cache(files: Files) -> None:
    files.load()
    files.write(files.dropins / "typo.toml", "[models.alpha]\ncontext_lenght = 1\n")
    with pytest.raises(ConfigError, match=r"typo\.toml: model 'alpha': field 'context_lenght'"):
        files.load()


def test_without_a_cache_the_same_errors_come_from_validating_here(files: Files) -> None:
    files.write_settings("queue_cap = 0\n")
    with pytest.raises(ConfigError, match="field 'queue_cap'"):
        load_config(files.settings, None)


def test_a_bug_in_validation_fails_the_start_with_its_traceback(
    files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(settings_path: Path) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(config, "_validate", broken)
    with pytest.raises(RuntimeError, match="ZeroDivisionError: a bug"):
        files.load()


def test_an_unreadable_cache_is_only_a_slower_start(files: Files, validations: Callable[[], int]) -> None:
    files.cache.write_bytes(b"not a pickle")
    assert context_of(files.load(), "alpha") == 4096
    assert context_of(files.load(), "alpha") == 4096
    assert validations() == 1  # the first load replaced the broken cache


def test_a_cache_that_cannot_be_written_is_only_a_slower_start(files: Files, tmp_path: Path) -> None:
    loaded = load_config(files.settings, tmp_path / "absent" / config.CACHE_NAME)
    assert context_of(loaded, "alpha") == 4096


def test_no_cache_without_a_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert config.state_cache() is None
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/sparkd")
    assert config.state_cache() == Path("/var/lib/sparkd") / config.CACHE_NAME


def test_the_daemon_never_holds_pydantic_whether_it_validated_or_not(files: Files) -> None:
    program = (
        "import sys\n"
        "from pathlib import Path\n"
        "import sparkd.daemon\n"
        "from sparkd.config import load_config\n"
        f"load_config(Path({str(files.settings)!r}), Path({str(files.cache)!r}))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'annotated_types'))))\n"
    )
    for start in ("validates", "takes the kept configuration"):
        result = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.strip() == "[]", start
    assert files.cache.exists()
