"""journald through journalctl: a unit's last lines, and a live stream of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sparkd import names


class JournalctlTail:
    """A unit's last log lines, for the cause of a failed start."""

    async def tail(self, unit: str, lines: int) -> str:
        process = await asyncio.create_subprocess_exec(
            *names.journalctl(unit, lines, output="cat"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await process.communicate()
        return out.decode(errors="replace").strip()


class Stream:
    """journalctl's output line by line (`async with Stream(argv) as lines`); it ends with the block."""

    def __init__(self, argv: list[str]) -> None:
        self._argv = argv
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> AsyncIterator[bytes]:
        self._process = await asyncio.create_subprocess_exec(
            *self._argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        return self._lines(self._process)

    async def __aexit__(self, *exc: object) -> None:
        process = self._process
        if process is not None:
            if process.returncode is None:
                process.kill()
            await process.wait()

    @staticmethod
    async def _lines(process: asyncio.subprocess.Process) -> AsyncIterator[bytes]:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            yield line
