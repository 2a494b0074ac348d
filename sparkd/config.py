"""The daemon's configuration (settings and catalogue), validated once and kept until a file changes.

Socket activation starts sparkd for the first request after a quiet exit, so
that client waits for start-up. Reading the TOML files is quick; importing
pydantic to validate them and building its validators was a third of
start-up, and 11 MB that stayed resident. So the daemon keeps what it
validated in its state directory (systemd's StateDirectory=, /var/lib/sparkd),
together with a stamp of every file it came from: the settings file, each
catalogue file (size, times of modification and change, inode), the listing
of both catalogue directories, and the code that validated them. A start
whose stamps all match takes the kept configuration. Any difference
validates again, in a forked child that writes the new cache and hands the
result back, so pydantic never enters the daemon's own memory; a broken
file fails with the same message as ever. The command line always validates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from sparkd import __version__, catalogue, duration, model, schema, settings
from sparkd.catalogue import Catalogue, CatalogueError, load_catalogue
from sparkd.settings import DEFAULT_PATH, Settings, SettingsError, load_settings

log = logging.getLogger("sparkd.config")

CACHE_NAME = "config.cache"
# Changes when what the cache holds changes shape; an old cache is then validated again.
FORMAT = 1

Stamp = tuple[str, tuple[int, int, int, int] | None]


@dataclass(frozen=True)
class Config:
    """What the daemon serves by: its settings and its catalogue."""

    settings: Settings
    catalogue: Catalogue


class ConfigError(Exception):
    """The settings or the catalogue cannot be used; the message names the file and the field."""


def load_config(settings_path: Path | None, cache_file: Path | None) -> Config:
    """Settings and catalogue: the kept ones if no file changed since, else validated (and kept)."""
    settings_path = settings_path or DEFAULT_PATH
    if cache_file is None:
        return _validate(settings_path)[1]
    kept = _read(cache_file)
    if kept is not None and kept[0] == _stamps(settings_path, kept[1].settings):
        return kept[1]
    config = _validate_in_child(settings_path, cache_file)
    log.info("configuration validated; kept in %s for later starts", cache_file)
    return config


def state_cache() -> Path | None:
    """Where the daemon keeps its configuration: its systemd state directory, if it has one."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / CACHE_NAME if state else None


def _validate(settings_path: Path) -> tuple[tuple[Stamp, ...], Config]:
    # Stamps are taken before each read: a file that changes during the read
    # leaves a cache whose stamps no longer match, which the next start redoes.
    try:
        settings_stamp = _stamp(settings_path)
        loaded = load_settings(settings_path)
        catalogue_stamps = _catalogue_stamps(loaded)
        config = Config(loaded, load_catalogue(loaded.catalogue_dir, loaded.models_d))
    except (SettingsError, CatalogueError) as error:
        raise ConfigError(str(error)) from None
    return (settings_stamp, *catalogue_stamps), config


def _validate_in_child(settings_path: Path, cache_file: Path) -> Config:
    """Validate in a forked child, which writes the cache and sends the result (or the error) back."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:  # the child never returns into the daemon's code
            os.close(reader)
            with os.fdopen(writer, "wb") as pipe:
                pickle.dump(_validated_and_kept(settings_path, cache_file), pipe, pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data) if data else ("crashed", "the validating child sent nothing")
    if kind == "config" and isinstance(value, Config):
        return value
    if kind == "invalid":
        raise ConfigError(str(value))
    raise RuntimeError(f"validating the configuration failed:\n{value}")


def _validated_and_kept(settings_path: Path, cache_file: Path) -> tuple[str, object]:
    try:
        stamps, config = _validate(settings_path)
    except ConfigError as error:
        return ("invalid", str(error))
    except BaseException:  # a bug: the daemon shows it, and fails
        return ("crashed", traceback.format_exc())
    _write(cache_file, (stamps, config))
    return ("config", config)


def _stamps(settings_path: Path, kept_settings: Settings) -> tuple[Stamp, ...]:
    return (_stamp(settings_path), *_catalogue_stamps(kept_settings))


def _catalogue_stamps(loaded: Settings) -> tuple[Stamp, ...]:
    files = [Path(module.__file__ or "") for module in (catalogue, model, duration, schema, settings)]
    for directory in (loaded.catalogue_dir, loaded.models_d):
        files += [directory, *sorted(directory.glob("*.toml"))]
    return tuple(_stamp(path) for path in files)


def _stamp(path: Path) -> Stamp:
    try:
        status = os.stat(path)
    except OSError:
        return (str(path), None)
    return (str(path), (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino))


def _key() -> tuple[object, ...]:
    return (FORMAT, __version__, sys.version)


def _read(cache_file: Path) -> tuple[tuple[Stamp, ...], Config] | None:
    # A pickle is safe to load here: only root may write the state directory.
    try:
        with open(cache_file, "rb") as handle:
            key, stamps, config = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception as error:  # any unreadable cache is only a slower start
        log.info("ignoring the kept configuration in %s: %s", cache_file, error)
        return None
    if key != _key() or not isinstance(config, Config):
        return None
    return stamps, config


def _write(cache_file: Path, kept: tuple[tuple[Stamp, ...], Config]) -> None:
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{cache_file.name}.", dir=cache_file.parent)
    except OSError as error:
        log.warning("cannot keep the validated configuration in %s: %s", cache_file, error)
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump((_key(), *kept), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, cache_file)
    except OSError as error:
        log.warning("cannot keep the validated configuration in %s: %s", cache_file, error)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
