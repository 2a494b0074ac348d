"""Which model produced each stored response (`/v1/responses`), for the latest ones.

A stored response is later asked for by its id alone (`GET /v1/responses/{id}`,
`POST .../cancel`); its answer named it, so sparkd remembers the id's model
as the answer passes, in bounded memory.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable

RESPONSE_ID = re.compile(rb'"id"\s*:\s*"(resp[_-][A-Za-z0-9_-]{1,200})"')


class ResponseOwners:
    """Which model produced each stored response, for the last `limit` of them (oldest forgotten first)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._owners: OrderedDict[str, str] = OrderedDict()

    def remember(self, response_id: str, model_id: str) -> None:
        self._owners[response_id] = model_id
        self._owners.move_to_end(response_id)
        while len(self._owners) > self.limit:
            self._owners.popitem(last=False)

    def owner(self, response_id: str) -> str | None:
        return self._owners.get(response_id)

    def watcher(self, model_id: str) -> Callable[[bytes], None]:
        """What the relay shows a /v1/responses answer: the response id in it is remembered."""

        def observe(answer: bytes) -> None:
            response_id = response_id_of(answer)
            if response_id is not None:
                self.remember(response_id, model_id)

        return observe


def response_id_of(answer: bytes) -> str | None:
    """The id of a /v1/responses answer (a JSON body, or the first event of its stream)."""
    found = RESPONSE_ID.search(answer[:4096])
    return found.group(1).decode() if found else None
