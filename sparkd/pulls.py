"""The daemon's view of weights: is a model's download still to do, and how far is one under way.

Downloads run as units of their own (`sparkd-pull@<id>.service`, which runs
`sparkd pull`); the daemon only reads what they leave: the weights records
(sparkd.weights) and the progress file each pull keeps up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sparkd.catalogue import Catalogue
from sparkd.progress import Progress
from sparkd.quadlet import HostFacts


class Pulls(Protocol):
    def missing(self, model_id: str) -> bool: ...
    def progress(self, model_id: str) -> Progress | None: ...
    def pulled_bytes(self, model_id: str) -> int | None: ...


class NoPulls:
    """Every model's weights are there (the loopback tests' engines need none)."""

    def missing(self, model_id: str) -> bool:
        return False

    def progress(self, model_id: str) -> Progress | None:
        return None

    def pulled_bytes(self, model_id: str) -> int | None:
        return None


@dataclass
class DiskPulls:
    catalogue: Catalogue
    host: HostFacts
    directory: Path  # where pulls write their progress (/run/sparkd/pulls)

    def missing(self, model_id: str) -> bool:
        from sparkd.weights import needs_pull

        return needs_pull(self.catalogue.models[model_id], self.host)

    def progress(self, model_id: str) -> Progress | None:
        try:
            return Progress.from_json((self.directory / f"{model_id}.json").read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def pulled_bytes(self, model_id: str) -> int | None:
        from sparkd.weights import pulled

        record = pulled(self.catalogue.models[model_id], self.host)
        return record.bytes if record is not None else None
