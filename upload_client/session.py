"""The large-file flow: open (or resume) an upload session, send its parts in parallel, commit.

1. ``POST /uploads`` with the part size of :func:`upload_client.parts.choose_part_size`; or, to
   resume, ``GET /uploads/{id}``: only an ``OPEN`` session of this file's size can continue.
2. The parts, a batch at a time. The main thread hashes a batch (streaming from disk), skips the
   parts the session already holds with the same size and SHA-256, asks
   ``POST /uploads/{id}/parts`` for the others' URLs (at most 100 a call) and hands them to
   ``parallel`` workers, each of which reads its part, PUTs it, and asks again for the part's URL
   if it expired. The main thread hashes the next batch while the workers send, but asks for its
   URLs only once no more than ``parallel`` parts are waiting, so that a URL is not issued long
   before it is used. Finished parts are counted (``progress``) on the main thread.
3. ``POST /upload`` with the ``uploadId``, under the upload's ``Idempotency-Key``.

Ctrl-C stops handing out parts and raises :class:`~upload_client.errors.UploadInterrupted`; the
session stays open and any failure names it (``upload_id``), so the upload can be resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import BinaryIO, Final
from urllib.parse import quote

import msgspec

from upload_client import parts, storage
from upload_client.errors import (
    ConfigurationError,
    FileChanged,
    ServiceFailed,
    SessionNotOpen,
    UploadClientError,
    UploadInterrupted,
)
from upload_client.http import UPLOAD_ROUTE, ApiClient
from upload_client.models import (
    CreateSession,
    PartDigest,
    PartsRequest,
    PartUrl,
    PartUrls,
    SessionCreated,
    SessionStatus,
    StoredPart,
    UploadRequest,
    UploadResult,
)
from upload_client.parts import Part

MAX_PARTS_PER_CALL: Final = 100
# How many times one part may find its URL expired before the upload gives up.
URL_RENEWALS: Final = 3
OPEN: Final = "OPEN"


@dataclass(frozen=True)
class Upload:
    """One logical upload: the file, the commit body (without ``uploadId``) and its key."""

    path: Path
    size: int
    request: UploadRequest
    idempotency_key: str
    parallel: int
    progress: Callable[[int], None]


def run(api: ApiClient, upload: Upload, resume: str | None = None) -> UploadResult:
    """Upload ``upload`` through a new session, or through the open session ``resume``."""
    known = resume  # the session a failure names, once there is one
    try:
        if resume is None:
            upload_id, part_size, stored = _create(api, upload)
            known = upload_id
        else:
            upload_id = resume
            part_size, stored = _resume(api, upload, resume)
        _Sender(api, upload, upload_id).send(parts.plan(upload.size, part_size), stored)
        if upload.path.stat().st_size != upload.size:
            raise FileChanged("the file's size changed during the upload", code="FileChanged")
        commit = msgspec.structs.replace(upload.request, upload_id=upload_id)
        return api.call(
            "POST", UPLOAD_ROUTE, UploadResult, commit, idempotency_key=upload.idempotency_key
        )
    except KeyboardInterrupt:
        if known is None:  # no session yet: nothing to resume
            raise
        raise UploadInterrupted(known) from None
    except UploadClientError as exc:
        exc.upload_id = exc.upload_id or known
        raise


def _session_route(upload_id: str, *rest: str) -> str:
    return "/".join(("/uploads", quote(upload_id, safe=""), *rest))


def _create(api: ApiClient, upload: Upload) -> tuple[str, int, dict[int, StoredPart]]:
    body = CreateSession(
        product_id=upload.request.product_id,
        # The session's key needs a name: the file's own unless one was given.
        file_name=upload.request.file_name or upload.path.name,
        size=upload.size,
        content_type=upload.request.content_type,
        part_size=parts.choose_part_size(upload.size, upload.parallel),
    )
    created = api.call("POST", "/uploads", SessionCreated, body)
    if created.part_count != len(parts.plan(upload.size, created.part_size)):
        raise ServiceFailed(
            f"the session's {created.part_count} parts of {created.part_size} bytes do not "
            f"make {upload.size} bytes",
            code="UnexpectedResponse",
            request_id=created.request_id,
            operation="POST /uploads",
            upload_id=created.upload_id,
        )
    return created.upload_id, created.part_size, {}


def _resume(api: ApiClient, upload: Upload, upload_id: str) -> tuple[int, dict[int, StoredPart]]:
    status = api.call("GET", _session_route(upload_id), SessionStatus)
    if status.state != OPEN:
        raise SessionNotOpen(
            f"upload {upload_id} is {status.state}, not {OPEN}: there is nothing to resume",
            code="SessionNotOpen",
            request_id=status.request_id,
        )
    if status.size != upload.size:
        raise ConfigurationError(
            f"upload {upload_id} is of a {status.size}-byte file; this file has {upload.size} "
            "bytes: it is not the file of that upload"
        )
    return status.part_size, {p.part_number: p for p in status.parts}


def _already_stored(stored: StoredPart | None, part: Part, sha256: str) -> bool:
    return stored is not None and stored.size == part.size and stored.sha256.lower() == sha256


class _NotStarted(Exception):
    """A queued part left alone because another part failed (that failure is the one raised)."""


class _Sender:
    """The parts of one session: hashing, URLs, the worker pool and the parts in flight."""

    def __init__(self, api: ApiClient, upload: Upload, upload_id: str) -> None:
        self._api = api
        self._upload = upload
        self._upload_id = upload_id
        self._inflight: set[Future[Part]] = set()
        # Set by the first part that fails: the parts already queued to the workers then never
        # start (the pool's own cancel comes too late for a part a worker has just taken).
        self._stopped = Event()

    def send(self, todo: list[Part], stored: dict[int, StoredPart]) -> None:
        parallel = self._upload.parallel
        # Two parts per worker per call: the workers stay busy while the main thread hashes the
        # next batch, and no URL waits long for its turn.
        batch_size = min(MAX_PARTS_PER_CALL, 2 * parallel)
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="upload-part")
        try:
            with self._upload.path.open("rb") as handle:
                for start in range(0, len(todo), batch_size):
                    wanted = self._hash(handle, todo[start : start + batch_size], stored)
                    if not wanted:
                        continue
                    self._collect(limit=parallel)
                    urls = self._part_urls(wanted)
                    self._inflight.update(
                        pool.submit(self._put, part, sha256, urls[part.number])
                        for part, sha256 in wanted
                    )
            self._collect(limit=0)
        finally:
            # After a failure or Ctrl-C: no new part starts; those being sent finish on their own.
            pool.shutdown(wait=False, cancel_futures=True)

    def _hash(
        self, handle: BinaryIO, batch: list[Part], stored: dict[int, StoredPart]
    ) -> list[tuple[Part, str]]:
        """The parts of ``batch`` storage does not hold yet, with their SHA-256; those it holds
        with the same bytes count as done."""
        wanted: list[tuple[Part, str]] = []
        for part in batch:
            sha256 = parts.sha256_of(handle, part)
            if _already_stored(stored.get(part.number), part, sha256):
                self._upload.progress(part.size)
            else:
                wanted.append((part, sha256))
            self._collect(limit=None)  # parts that finished meanwhile: the progress keeps up
        return wanted

    def _collect(self, limit: int | None) -> None:
        """Count the parts that finished (raising the first failure); with a ``limit``, first
        wait until no more than that many are in flight."""
        done, self._inflight = wait(self._inflight, timeout=0)
        self._count(done)
        while limit is not None and len(self._inflight) > limit:
            done, self._inflight = wait(self._inflight, return_when=FIRST_COMPLETED)
            self._count(done)

    def _count(self, done: Iterable[Future[Part]]) -> None:
        for future in done:
            if not isinstance(future.exception(), _NotStarted):
                self._upload.progress(future.result().size)

    def _part_urls(self, wanted: list[tuple[Part, str]]) -> dict[int, PartUrl]:
        body = PartsRequest([PartDigest(part.number, sha256) for part, sha256 in wanted])
        answer = self._api.call("POST", _session_route(self._upload_id, "parts"), PartUrls, body)
        urls = {url.part_number: url for url in answer.parts}
        missing = [part.number for part, _ in wanted if part.number not in urls]
        if missing:
            raise ServiceFailed(
                f"no URL for parts {missing}",
                code="UnexpectedResponse",
                request_id=answer.request_id,
                operation="POST /uploads/{uploadId}/parts",
            )
        return urls

    def _put(self, part: Part, sha256: str, url: PartUrl) -> Part:
        """In a worker: the part sent, unless another part failed first."""
        if self._stopped.is_set():
            raise _NotStarted
        try:
            return self._send_part(part, sha256, url)
        except BaseException:
            self._stopped.set()
            raise

    def _send_part(self, part: Part, sha256: str, url: PartUrl) -> Part:
        """Read the part and send it, with a new URL each time the URL expired."""
        data = parts.read(self._upload.path, part)
        for _ in range(URL_RENEWALS):
            try:
                storage.put_part(self._api.http, self._api.policy, url, data)
            except storage.UrlExpired:
                url = self._part_urls([(part, sha256)])[part.number]
            else:
                return part
        storage.put_part(self._api.http, self._api.policy, url, data)
        return part
