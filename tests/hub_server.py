"""A local stand-in for the Hugging Face hub at the network edge: the routes `sparkd pull` uses.

    python -m tests.hub_server PORT REPO=DIRECTORY [--token T] [--gated REPO] [--rate BYTES_PER_S]

Serves each repository from a directory, at one commit: `GET
/api/models/<repo>/revision/<rev>` (with `?blobs=true`: sizes, blob ids and
LFS hashes, as the hub answers), and `HEAD`/`GET /<repo>/resolve/<rev>/<path>`
with the hub's headers (X-Repo-Commit, ETag, X-Linked-Size) and `Range`.
Files from 1 MB up are LFS files (ETag = sha256), as on the hub. A gated
repository wants the token; `rate` slows downloads so a test can interrupt
one. Every resolve request is logged with its Range header, so a test can
see a pull resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

LFS_FROM = 1024 * 1024


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    git_oid: str
    sha256: str | None  # set for LFS files

    @property
    def etag(self) -> str:
        return self.sha256 or self.git_oid


@dataclass
class HubRepo:
    id: str
    directory: Path
    files: dict[str, HubFile] = field(default_factory=dict)
    commit: str = ""

    @classmethod
    def of(cls, repo_id: str, directory: Path) -> HubRepo:
        repo = cls(repo_id, directory)
        listing = hashlib.sha1()
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            size = path.stat().st_size
            git, sha = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
            with path.open("rb") as source:  # weights are large: hashed as they are read
                while chunk := source.read(1 << 20):
                    git.update(chunk)
                    sha.update(chunk)
            name = path.relative_to(directory).as_posix()
            git_oid = git.hexdigest()
            repo.files[name] = HubFile(name, size, git_oid, sha.hexdigest() if size >= LFS_FROM else None)
            listing.update(f"{name} {git_oid}\n".encode())
        repo.commit = listing.hexdigest()
        return repo


@dataclass
class Hub:
    repos: dict[str, HubRepo]
    token: str | None = None
    gated: frozenset[str] = frozenset()
    rate: float | None = None  # bytes per second for downloads; None: as fast as it goes
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/models/{org}/{name}/revision/{revision}", self.model_info)
        app.router.add_get("/api/models/{org}/{name}", self.model_info)
        app.router.add_route("*", "/{org}/{name}/resolve/{revision}/{path:.+}", self.resolve)
        return app

    def _repo(self, request: web.Request) -> HubRepo:
        repo_id = f"{request.match_info['org']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        if repo is None:
            raise _error(404, "RepoNotFound", f"Repository Not Found for url: {request.url}.")
        if repo_id in self.gated and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise _error(401, "GatedRepo", f"Access to model {repo_id} is restricted.")
        revision = request.match_info.get("revision", "main")
        if revision not in ("main", repo.commit):
            raise _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return repo

    async def model_info(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        blobs = request.query.get("blobs") == "true"
        siblings = []
        for f in repo.files.values():
            sibling: dict[str, object] = {"rfilename": f.path}
            if blobs:
                sibling.update(size=f.size, blobId=f.git_oid)
                if f.sha256:
                    sibling["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 134}
            siblings.append(sibling)
        return web.json_response(
            {
                "_id": repo.commit[:24],
                "id": repo.id,
                "modelId": repo.id,
                "sha": repo.commit,
                "private": False,
                "gated": "manual" if repo.id in self.gated else False,
                "disabled": False,
                "tags": [],
                "siblings": siblings,
            }
        )

    async def resolve(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        self.requests.append((request.method, request.path, request.headers.get("Range")))
        file = repo.files.get(request.match_info["path"])
        if file is None:
            raise _error(404, "EntryNotFound", "Entry not found")
        headers = {
            "X-Repo-Commit": repo.commit,
            "ETag": f'"{file.etag}"',
            "Accept-Ranges": "bytes",
        }
        if file.sha256:
            headers.update({"X-Linked-Etag": f'"{file.sha256}"', "X-Linked-Size": str(file.size)})
        start = 0
        if "Range" in request.headers:
            start = int(request.headers["Range"].removeprefix("bytes=").split("-")[0])
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(file.size)})
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{file.size - 1}/{file.size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = file.size - start
        await response.prepare(request)
        with (repo.directory / file.path).open("rb") as source:
            source.seek(start)
            step = 64 * 1024
            while chunk := source.read(step):
                await response.write(chunk)
                if self.rate:
                    await asyncio.sleep(len(chunk) / self.rate)
        await response.write_eof()
        return response


@contextlib.contextmanager
def serving(hub: Hub, port: int = 0) -> Iterator[str]:
    """The hub on a loopback port, from a thread of its own (pulls block); yields its address."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(hub.app())
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    bound = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _error(status: int, code: str, message: str) -> web.HTTPException:
    kind = {401: web.HTTPUnauthorized, 404: web.HTTPNotFound}[status]
    return kind(headers={"X-Error-Code": code, "X-Error-Message": message}, text=message)


def main(argv: list[str]) -> None:
    port = int(argv[0])
    repos: dict[str, HubRepo] = {}
    token: str | None = None
    gated: set[str] = set()
    rate: float | None = None
    args = iter(argv[1:])
    for arg in args:
        if arg == "--token":
            token = next(args)
        elif arg == "--gated":
            gated.add(next(args))
        elif arg == "--rate":
            rate = float(next(args))
        else:
            repo_id, _, directory = arg.partition("=")
            repos[repo_id] = HubRepo.of(repo_id, Path(directory))
    hub = Hub(repos, token, frozenset(gated), rate)
    web.run_app(hub.app(), host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
