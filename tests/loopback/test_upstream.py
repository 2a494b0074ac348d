"""The engine client on loopback: kept-alive connections, whole and streamed bodies, every kind of hang-up.

Each test runs a small raw-socket engine whose bytes are written by hand, so
the client meets exactly the HTTP the test names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from sparkd import upstream
from sparkd.engine_answer import EngineGone
from sparkd.upstream import EnginePool
from tests.waiting import eventually

LOOP: dict[str, Callable[[Coroutine[Any, Any, RawEngine]], RawEngine]] = {"run": asyncio.run}
CLOCK = [0.0]  # the pool's clock: a test moves it to age idle connections
Reply = Callable[["RawEngine", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawEngine:
    """An engine on 127.0.0.1 that answers each request with `reply`; it counts connections."""

    reply: Reply
    connections: int = 0
    closed: list[bool] = field(default_factory=list)  # one per connection, True once the client closed it
    port: int = 0

    async def serve(self, client: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        index = len(self.closed)
        self.closed.append(False)
        try:
            while await read_request(client):
                await self.reply(self, client, writer)
                if writer.is_closing():
                    return
            self.closed[index] = True
        except ConnectionError:
            self.closed[index] = True
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request (head and Content-Length body), or b"" when the client hung up."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head + await reader.readexactly(length)


@pytest.fixture(params=["asyncio", "uvloop"], autouse=True)
def event_loop_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs on asyncio's own loop and on uvloop, which sparkd serves with."""
    monkeypatch.setitem(LOOP, "run", asyncio.run if request.param == "asyncio" else uvloop.run)


def run(reply: Reply, scenario: Callable[[EnginePool, RawEngine], Awaitable[None]]) -> RawEngine:
    async def main() -> RawEngine:
        engine = RawEngine(reply)
        server = await asyncio.start_server(engine.serve, "127.0.0.1", 0)
        engine.port = server.sockets[0].getsockname()[1]
        CLOCK[0] = 0.0
        pool = EnginePool(clock=lambda: CLOCK[0])
        try:
            await asyncio.wait_for(scenario(pool, engine), 20)
        finally:
            pool.close()
            server.close()
        return engine

    return LOOP["run"](main())


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def answer(body: bytes, *extra: str) -> Reply:
    async def reply(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}", *extra]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    return reply


def test_a_whole_answer_arrives_with_status_and_lower_case_headers() -> None:
    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/chat/completions", {"X-Request-Id": "r1"}, b"{}")
        assert (response.status, response.content_type) == (200, "application/json")
        assert await response.read() == b'{"ok": true}'
        response.release()

    run(answer(b'{"ok": true}'), scenario)


def test_one_connection_serves_request_after_request() -> None:
    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        for _ in range(5):
            response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
            assert await response.read() == b"{}"
            response.release()

    assert run(answer(b"{}"), scenario).connections == 1


def test_a_connection_the_engine_closed_between_requests_is_replaced_without_the_client_noticing() -> None:
    async def close_after_answer(engine: RawEngine, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        # The answer claims keep-alive, then the engine closes anyway (as an idle timeout would).
        await answer(b"{}")(engine, r, w)
        w.close()

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        for _ in range(3):
            response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
            assert await response.read() == b"{}"
            response.release()
            await asyncio.sleep(0.05)  # the close reaches the client, or not: both must work

    assert run(close_after_answer, scenario).connections == 3


def test_a_connection_idle_longer_than_engines_keep_it_is_not_reused() -> None:
    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        for _ in range(2):
            response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
            await response.read()
            response.release()
            CLOCK[0] += upstream.KEEP_IDLE + 1

    assert run(answer(b"{}"), scenario).connections == 2


def test_connections_idle_too_long_are_swept_and_the_engine_sees_them_close() -> None:
    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        answers = [pool.post(engine.port, "/v1/completions", {}, b"{}") for _ in range(3)]
        for response in await asyncio.gather(*answers):
            await response.read()
        assert pool.idle_connections() == 3
        pool.sweep()
        assert pool.idle_connections() == 3  # not idle long enough yet
        CLOCK[0] += upstream.KEEP_IDLE + 1
        pool.sweep()
        assert pool.idle_connections() == 0
        await eventually(lambda: engine.closed == [True, True, True], "the engine to see every close")

    run(answer(b"{}"), scenario)


def test_a_burst_leaves_no_more_idle_connections_than_the_pool_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "MAX_IDLE", 4)

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        answers = [pool.post(engine.port, "/v1/completions", {}, b"{}") for _ in range(10)]
        for response in await asyncio.gather(*answers):
            await response.read()
        assert pool.idle_connections() == 4
        await eventually(lambda: engine.closed.count(True) == 6, "the burst's other connections to close")

    run(answer(b"{}"), scenario)


def test_a_pooled_connection_the_engine_closes_leaves_the_pool_at_once() -> None:
    async def close_soon(engine: RawEngine, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await answer(b"{}")(engine, r, w)
        await asyncio.sleep(0.05)
        w.close()

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
        await response.read()
        assert pool.idle_connections() == 1
        await eventually(lambda: pool.idle_connections() == 0, "the closed connection to leave the pool")

    run(close_soon, scenario)


def test_a_chunked_stream_arrives_piece_by_piece() -> None:
    async def stream(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for i in range(3):
            event = f"data: {i}\n\n".encode()
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/chat/completions", {}, b"{}")
        assert response.content_type == "text/event-stream"
        pieces = []
        while piece := await response.readany():
            pieces.append(piece)
        assert b"".join(pieces) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert len(pieces) == 3  # as they came, not held back until the end
        response.release()

    run(stream, scenario)


def test_an_engine_that_dies_mid_answer_is_an_engine_gone_not_a_short_answer() -> None:
    async def die(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
        with pytest.raises(EngineGone):
            await response.read()

    run(die, scenario)


def test_an_engine_that_hangs_up_before_answering_is_an_engine_gone() -> None:
    async def hang_up(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        with pytest.raises(EngineGone):
            await pool.post(engine.port, "/v1/completions", {}, b"{}")

    run(hang_up, scenario)


def test_an_answer_without_a_length_ends_with_its_connection() -> None:
    async def until_close(
        engine: RawEngine, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
        assert await response.read() == b"all of it"

    run(until_close, scenario)


def test_an_informational_answer_is_skipped_for_the_real_one() -> None:
    async def continue_first(engine: RawEngine, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await answer(b"{}")(engine, r, w)

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
        assert response.status == 200 and await response.read() == b"{}"

    run(continue_first, scenario)


def test_garbage_from_the_engine_is_an_engine_gone() -> None:
    async def garbage(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        with pytest.raises(EngineGone):
            await pool.post(engine.port, "/v1/completions", {}, b"{}")

    run(garbage, scenario)


def test_no_engine_listening_is_a_refused_connection() -> None:
    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        with pytest.raises(ConnectionRefusedError):
            await pool.post(1, "/v1/completions", {}, b"{}")

    run(answer(b"{}"), scenario)


def test_releasing_an_unfinished_answer_hangs_up_so_the_engine_stops_generating() -> None:
    async def endless(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while True:
            writer.write(b"8\r\ndata: x\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/chat/completions", {}, b"{}")
        await response.readany()
        response.release()
        await eventually(lambda: engine.closed[0], "the engine to see the connection close")

    run(endless, scenario)


def test_a_client_leaving_while_the_engine_thinks_closes_the_engine_connection() -> None:
    thinking: list[bool] = []

    async def think(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        thinking.append(True)
        await asyncio.sleep(30)

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        waiting = asyncio.ensure_future(pool.post(engine.port, "/v1/completions", {}, b"{}"))
        await eventually(lambda: bool(thinking), "the engine to read the request")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pool._take(engine.port) is None  # nothing half-used went back to the pool

    run(think, scenario)


def test_a_slow_reader_pauses_the_engine_instead_of_buffering_without_bound() -> None:
    size = 8 * 1024 * 1024

    async def flood(engine: RawEngine, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        block = b"x" * 65536
        for _block in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    async def scenario(pool: EnginePool, engine: RawEngine) -> None:
        response = await pool.post(engine.port, "/v1/completions", {}, b"{}")
        received, most_buffered = 0, 0
        while piece := await response.readany():
            received += len(piece)
            most_buffered = max(most_buffered, len(piece))
            await asyncio.sleep(0.001)
        assert received == size
        # Paused at the mark (256 KiB): at most one read past it is ever held.
        assert most_buffered <= 512 * 1024

    run(flood, scenario)


def test_a_header_value_cannot_split_the_request() -> None:
    request = upstream._request_bytes(
        "POST", 8000, "/v1/completions", {"User-Agent": "x\r\nEvil: 1"}, b"{}", 2
    )
    assert b"Evil" not in request
    assert request.endswith(b"\r\n\r\n{}")
