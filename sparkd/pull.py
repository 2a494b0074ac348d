"""`sparkd pull`: a model's weights from the hub into the cache its engine reads, resumable.

huggingface_hub answers what to fetch (the repository's files at a commit,
with sizes and content hashes, and the hub's errors: gated, not found, no
such revision). The bytes come over plain HTTP with `Range`, into
`blobs/<hash>.incomplete`, so an interrupted pull goes on from the byte it
reached; each finished blob is renamed and linked from
`snapshots/<commit>/`, and `refs/<revision>` written last: the layout vLLM
and SGLang read. Progress is counted from those files, so the same numbers
reach the terminal, `sparkd status` and a client waiting for the model.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sparkd.weights import repo_folder

CHUNK = 256 * 1024  # small enough that a stop is heard within a moment on a slow link
PARALLEL_FILES = 4
# The engines read safetensors; the other weight formats a repository may carry are not fetched
# when safetensors are there (vLLM's own choice), nor are the originals some repositories add.
OTHER_FORMATS = ("*.bin", "*.pt", "*.pth", "*.gguf", "*.onnx", "*.msgpack", "*.h5", "*.ckpt")
NEVER = ("original/*", ".gitattributes")
DISK_MARGIN = 1024**3  # left free after a pull


class PullError(Exception):
    """A pull that cannot go on, in words for the person who asked."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    blob: str  # the content hash the hub serves as its ETag: the blob's name in the cache


@dataclass(frozen=True)
class Plan:
    repo: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...]
    cache: Path  # the cache directory (holding models--org--name)

    @property
    def folder(self) -> Path:
        return self.cache / repo_folder(self.repo)

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)

    def blob(self, file: RemoteFile) -> Path:
        return self.folder / "blobs" / file.blob

    def done_bytes(self) -> int:
        """Bytes already here: finished blobs, and what partial ones hold."""
        done = 0
        for file in self.files:
            blob = self.blob(file)
            if blob.is_file():
                done += file.size
            else:
                partial = blob.with_name(blob.name + ".incomplete")
                done += partial.stat().st_size if partial.is_file() else 0
        return done


def chosen(paths: Iterable[str]) -> list[str]:
    """The repository files an engine needs: everything but other weight formats and originals."""
    names = list(paths)
    skip = NEVER + (OTHER_FORMATS if any(p.endswith(".safetensors") for p in names) else ())
    return [p for p in names if not any(fnmatch.fnmatch(p, pattern) for pattern in skip)]


def shortfall(plan: Plan, free: int) -> int:
    """Bytes missing on the disk for the rest of the pull (0: it fits, with a margin)."""
    return max(0, plan.total - plan.done_bytes() + DISK_MARGIN - free)


def plan_pull(repo: str, revision: str, cache: Path, token: str | None, endpoint: str) -> Plan:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        info = HfApi(endpoint=endpoint, token=token or False).model_info(
            repo, revision=revision, files_metadata=True
        )
    except GatedRepoError:
        hint = (
            "the stored HF_TOKEN is not allowed"
            if token
            else "store a token: sudo sparkd secret set HF_TOKEN"
        )
        raise PullError(f"{repo} is gated: accept its terms on the hub, then {hint}") from None
    except RevisionNotFoundError:
        raise PullError(f"{repo} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise PullError(f"no repository {repo} on {endpoint} (a private one needs HF_TOKEN)") from None
    except HfHubHTTPError as error:
        raise PullError(f"{endpoint} answered {error}") from None
    except Exception as error:
        if not _transport_failure(error):
            raise
        raise PullError(f"cannot reach {endpoint}: {error}") from None
    if info.sha is None:
        raise PullError(f"{endpoint} named no commit for {repo}@{revision}")
    by_path = {s.rfilename: s for s in info.siblings or []}
    files = []
    for path in chosen(by_path):
        sibling = by_path[path]
        blob = sibling.lfs.sha256 if sibling.lfs else sibling.blob_id
        size = sibling.lfs.size if sibling.lfs else sibling.size
        if blob is None or size is None:
            raise PullError(f"{endpoint} gave no size or hash for {repo}/{path}")
        files.append(RemoteFile(path, size, blob))
    return Plan(repo, revision, info.sha, tuple(files), cache)


def _transport_failure(error: Exception) -> bool:
    """A connection that failed: an OSError, or the HTTP client's own kind (httpx, whichever fork
    huggingface_hub uses)."""
    return isinstance(error, OSError) or type(error).__module__.split(".")[0].startswith("httpx")


class _NoCredentialsElsewhere(urllib.request.HTTPRedirectHandler):
    """Follow the hub's redirects (to its file servers) without carrying the token to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.remove_header("Authorization")
        return new


@dataclass
class Download:
    """Fetches a plan's missing bytes; `stop` ends it between chunks, leaving partial files to resume."""

    plan: Plan
    token: str | None
    endpoint: str
    stop: threading.Event
    user_agent: str = "sparkd"

    def run(self) -> None:
        (self.plan.folder / "blobs").mkdir(parents=True, exist_ok=True)
        missing = [f for f in self.plan.files if not self.plan.blob(f).is_file()]
        with ThreadPoolExecutor(max_workers=PARALLEL_FILES) as pool:
            for future in [pool.submit(self._fetch, f) for f in missing]:
                future.result()
        if self.stop.is_set():
            return
        for file in self.plan.files:
            self._link(file)
        refs = self.plan.folder / "refs"
        refs.mkdir(exist_ok=True)
        if self.plan.revision != self.plan.commit:
            (refs / self.plan.revision).write_text(self.plan.commit)

    def _fetch(self, file: RemoteFile) -> None:
        if self.stop.is_set():
            return
        blob = self.plan.blob(file)
        partial = blob.with_name(blob.name + ".incomplete")
        have = partial.stat().st_size if partial.is_file() else 0
        if have > file.size:
            partial.unlink()
            have = 0
        quoted = urllib.parse.quote(file.path)
        url = f"{self.endpoint.rstrip('/')}/{self.plan.repo}/resolve/{self.plan.commit}/{quoted}"
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if have < file.size:
            request.add_header("Range", f"bytes={have}-")
            opener = urllib.request.build_opener(_NoCredentialsElsewhere)
            try:
                with opener.open(request, timeout=60) as response:
                    mode = "ab" if response.status == 206 else "wb"  # 200: the server sent it all
                    with partial.open(mode) as out:
                        while not self.stop.is_set():
                            chunk = response.read(CHUNK)
                            if not chunk:
                                break
                            out.write(chunk)
            except urllib.error.HTTPError as error:
                raise PullError(f"{file.path}: the hub answered {error.code} {error.reason}") from None
            except OSError as error:
                raise PullError(f"{file.path}: {error}") from None
            if self.stop.is_set():
                return
        got = partial.stat().st_size
        if got != file.size:
            raise PullError(f"{file.path}: got {got} of {file.size} bytes; run the pull again to go on")
        os.chmod(partial, 0o644)
        partial.replace(blob)

    def _link(self, file: RemoteFile) -> None:
        link = self.plan.folder / "snapshots" / self.plan.commit / file.path
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(self.plan.blob(file), link.parent)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
