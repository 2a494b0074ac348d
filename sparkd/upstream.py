"""HTTP/1.1 to the engines on loopback: kept-alive connections and a lean response reader.

Every proxied request goes through here, so this is the request path's
client. aiohttp's client does what a general client must (cookies,
redirects, proxies, TLS, tracing hooks, URL handling); a POST to an engine
on 127.0.0.1 needs none of it, and profiling put that generality at about a
third of sparkd's CPU per request. This client writes the request as one
buffer, parses the answer with httptools (llhttp, the parser Node.js uses)
and hands body bytes on as they arrive, pausing the engine's socket when
the client reads slower than the engine writes.

aiohttp's client stays for the rare calls (health probes, /tokenize).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Mapping
from typing import IO, cast

import httptools

from sparkd.engine_answer import EngineGone, EngineResponse

CONNECT_TIMEOUT = 10.0  # seconds to open a connection to an engine on loopback
# Engines close idle keep-alive connections (uvicorn, under vLLM, after 5 s);
# a connection idle for longer than this is not reused, so a request is never
# written into one the engine is closing.
KEEP_IDLE = 4.0
# Idle connections kept per engine, like nginx's `keepalive` for an upstream: enough for the
# next burst to find them; the rest of a burst's connections close as they come back, and
# their buffers with them.
MAX_IDLE = 32
UPLOAD_PIECE = 64 * 1024  # bytes of a file body written at a time, as the engine takes them


class _Connection(asyncio.Protocol):
    """One keep-alive connection to one engine; one request at a time."""

    def __init__(self, pool: EnginePool, port: int) -> None:
        self.pool = pool
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.idle_since = pool.clock()
        self.answered_bytes = 0  # of the current answer: a retry is safe only at 0
        self._parser = httptools.HttpResponseParser(self)
        self._header_names: list[bytes] = []
        self._header_values: list[bytes] = []
        self._head: asyncio.Future[EngineResponse] | None = None
        self._response: EngineResponse | None = None
        self._lost = False
        self._writable = asyncio.Event()  # cleared while the engine's socket is full
        self._writable.set()

    # asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one in all but its class

    def data_received(self, data: bytes) -> None:
        self.answered_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._end(EngineGone(f"the engine's answer is not valid HTTP: {error}"))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        response = self._response
        if response is not None and exc is None and _ends_at_close(response.headers):
            self.on_message_complete()  # an answer without a length ends when its connection does
        self._end(EngineGone("the engine closed the connection" + (f": {exc}" if exc else "")))

    # httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._header_names.clear()
        self._header_values.clear()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_names.append(name)
        self._header_values.append(value)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # 100 Continue and the like: the real answer follows
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in zip(self._header_names, self._header_values, strict=True)
        }
        self._response = EngineResponse(self, status, headers)
        if self._head is not None and not self._head.done():
            self._head.set_result(self._response)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        response, self._response = self._response, None
        if response is None:
            return  # the end of an informational (1xx) answer
        response._finish()
        self._head = None
        if self._parser.should_keep_alive() and not self._lost:
            self.resume_reading()  # paused for a slow reader of this answer, if it was
            self.pool._give_back(self)
        else:
            self.close()

    # Used by the pool and the response ---------------------------------------

    def send(self, request: bytes) -> asyncio.Future[EngineResponse]:
        assert self.transport is not None
        self.answered_bytes = 0
        self._head = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._head

    async def write_body(self, body: IO[bytes]) -> None:
        """A file body, a piece at a time, as fast as the engine reads it: never whole in memory."""
        body.seek(0)
        while piece := body.read(UPLOAD_PIECE):
            await self._writable.wait()
            if self._lost or self.transport is None:
                return  # the engine went away: its answer (or EngineGone) says so
            self.transport.write(piece)

    def usable(self, now: float) -> bool:
        return not self._lost and self.transport is not None and now - self.idle_since < KEEP_IDLE

    def pause_reading(self) -> None:
        if self.transport is not None and not self._lost:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._lost:
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._end(EngineGone("closed by sparkd"))

    def _end(self, error: EngineGone) -> None:
        self.pool._forget(self)  # a closed connection leaves the pool at once, not at its next use
        self._lost = True
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        if self._response is not None:
            self._response._fail(error)
            self._response = None


class EnginePool:
    """Kept-alive connections to engines, by port; the most recently used is reused first."""

    def __init__(
        self, connect_timeout: float = CONNECT_TIMEOUT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.connect_timeout = connect_timeout
        self.clock = clock
        self._idle: dict[int, list[_Connection]] = {}

    async def post(self, port: int, path: str, headers: Mapping[str, str], body: bytes) -> EngineResponse:
        return await self.request("POST", port, path, headers, body)

    async def request(
        self, method: str, port: int, path: str, headers: Mapping[str, str], body: bytes | IO[bytes]
    ) -> EngineResponse:
        """Send a request and wait for the answer's status and headers.

        Raises OSError (or TimeoutError) when the engine cannot be reached and
        EngineGone when it hangs up before answering. A kept-alive connection
        that turns out closed before a single byte came back is retried once on
        a new one: the engine closed it between requests, never saw this one.
        """
        if isinstance(body, bytes):
            request, upload = _request_bytes(method, port, path, headers, body, len(body)), None
        else:  # a file: the head now, the body a piece at a time
            size = body.seek(0, io.SEEK_END)
            request, upload = _request_bytes(method, port, path, headers, b"", size), body
        connection = self._take(port)
        if connection is not None:
            try:
                return await _exchange(connection, request, upload)
            except EngineGone:
                if connection.answered_bytes:
                    raise
        return await _exchange(await self._connect(port), request, upload)

    def close(self) -> None:
        for connections in list(self._idle.values()):
            for connection in list(connections):
                connection.close()
        self._idle.clear()

    def sweep(self) -> None:
        """Close the connections idle too long to be reused (sparkd's housekeeping calls this)."""
        now = self.clock()
        for connections in list(self._idle.values()):
            for connection in [c for c in connections if not c.usable(now)]:
                connection.close()

    def idle_connections(self) -> int:
        return sum(len(connections) for connections in self._idle.values())

    def _take(self, port: int) -> _Connection | None:
        idle = self._idle.get(port)
        now = self.clock()
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        return None

    def _forget(self, connection: _Connection) -> None:
        idle = self._idle.get(connection.port)
        if idle and connection in idle:
            idle.remove(connection)

    def _give_back(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.port, [])
        if len(idle) >= MAX_IDLE:
            connection.close()
            return
        connection.idle_since = self.clock()
        idle.append(connection)

    async def _connect(self, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: _Connection(self, port), "127.0.0.1", port),
            self.connect_timeout,
        )
        return connection


async def _exchange(connection: _Connection, request: bytes, upload: IO[bytes] | None) -> EngineResponse:
    try:
        head = connection.send(request)
        if upload is not None:
            await connection.write_body(upload)
        return await head
    except asyncio.CancelledError:
        connection.close()  # the client left while the engine was thinking: it stops too
        raise


def _ends_at_close(headers: dict[str, str]) -> bool:
    return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "")


def _request_bytes(
    method: str, port: int, path: str, headers: Mapping[str, str], body: bytes, length: int
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {length}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            continue  # never let a header split the request (aiohttp's server refuses these anyway)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body
