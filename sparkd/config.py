"""The daemon's configuration (settings and catalogue), validated once and kept until a file changes.

Socket activation starts sparkd for the first request after a quiet exit, so
that client waits for start-up. Reading the TOML files is quick; importing
pydantic to validate them and building its validators was a third of
start-up. So the daemon keeps what it validated in its state directory
(systemd's StateDirectory=, /var/lib/sparkd), together with a stamp of every
file it came from: the settings file, each catalogue file (size, times of
modification and change, inode), the listing of both catalogue directories,
and the code that validated them. A start whose stamps all match takes the
kept configuration; any difference validates again, with the same errors
as ever, and keeps the new result. The command line always validates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sparkd import __version__, catalogue, duration, schema, settings
from sparkd.catalogue import Catalogue, load_catalogue
from sparkd.settings import DEFAULT_PATH, Settings, load_settings

log = logging.getLogger("sparkd.config")

CACHE_NAME = "config.cache"
# Changes when what the cache holds changes shape; an old cache is then validated again.
FORMAT = 1

Stamp = tuple[str, tuple[int, int, int, int] | None]


@dataclass(frozen=True)
class Config:
    settings: Settings
    catalogue: Catalogue


def load_config(settings_path: Path | None, cache_file: Path | None) -> Config:
    """Settings and catalogue: kept ones if no file changed since, else validated (and kept)."""
    settings_path = settings_path or DEFAULT_PATH
    if cache_file is not None:
        kept = _read(cache_file)
        if kept is not None and kept[0] == _stamps(settings_path, kept[1].settings):
            return kept[1]
    # Stamps are taken before each read: a file that changes during the read
    # leaves a cache whose stamps no longer match, which the next start redoes.
    settings_stamp = _stamp(settings_path)
    loaded_settings = load_settings(settings_path)
    catalogue_stamps = _catalogue_stamps(loaded_settings)
    config = Config(loaded_settings, load_catalogue(loaded_settings.catalogue_dir, loaded_settings.models_d))
    if cache_file is not None:
        _write(cache_file, ((settings_stamp, *catalogue_stamps), config))
        log.info("configuration validated; kept in %s for later starts", cache_file)
    return config


def state_cache() -> Path | None:
    """Where the daemon keeps its configuration: its systemd state directory, if it has one."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / CACHE_NAME if state else None


def _stamps(settings_path: Path, kept_settings: Settings) -> tuple[Stamp, ...]:
    return (_stamp(settings_path), *_catalogue_stamps(kept_settings))


def _catalogue_stamps(loaded: Settings) -> tuple[Stamp, ...]:
    files = [Path(module.__file__ or "") for module in (catalogue, duration, schema, settings)]
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
