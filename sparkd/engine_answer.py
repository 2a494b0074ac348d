"""One engine's answer as the request path reads it: status and headers at once, the body as it arrives."""

from __future__ import annotations

import asyncio
import collections
from typing import Protocol

# Body bytes buffered before the engine's socket is paused: the client reads slower.
HIGH_WATER = 256 * 1024


class EngineGone(Exception):
    """The engine's connection ended before its answer was complete."""


class Connection(Protocol):
    """The connection an answer arrives on (sparkd.upstream's)."""

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


class EngineResponse:
    """One answer from an engine: status and headers at once, the body as it arrives.

    `release()` must be called when done (the proxy does it in `finally`): a
    complete answer leaves its connection in the pool, an incomplete one
    closes it, which tells the engine to stop generating.
    """

    def __init__(self, connection: Connection, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers  # names in lower case
        self._connection = connection
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._complete = False
        self._failure: EngineGone | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while chunk := await self.readany():
            parts.append(chunk)
        return b"".join(parts)

    async def readany(self) -> bytes:
        """The body bytes that have arrived (waiting for some if none has); b"" at the end."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._failure is not None:
                raise self._failure
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        if self._buffered >= HIGH_WATER and not self._complete:
            self._connection.resume_reading()
        self._buffered = 0
        return data

    def release(self) -> None:
        if self._complete:
            return
        self._connection.close()

    # Fed by the connection ---------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= HIGH_WATER:
            self._connection.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: EngineGone) -> None:
        if not self._complete:
            self._failure = error
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
