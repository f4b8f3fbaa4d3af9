"""The large-file uploads of :mod:`bench.large_files`, each run in a process of its own so that
the sender neither competes with the emulator for the GIL nor shares its memory (the emulator
holds the parts too): the process's peak RSS is then the sender's own.

    python -m bench.large_client client BASE_URL FILE PARALLEL
    python -m bench.large_client boto3 AWS_ENDPOINT BUCKET KEY FILE PART_SIZE
    python -m bench.large_client commit BASE_URL FILE PARALLEL REPETITIONS

Each prints one JSON line: wall times in seconds, the process's peak RSS in bytes, the failures
and the object versions it made (``[key, version id]``, for the caller to delete). Every upload
has a product id of its own.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from local import provisioning
from upload_client import parts, storage, upload_file
from upload_client.auth import Unsigned
from upload_client.errors import UploadClientError
from upload_client.http import UPLOAD_ROUTE, ApiClient, new_session
from upload_client.models import (
    CreateSession,
    PartDigest,
    PartsRequest,
    PartUrls,
    SessionCreated,
    UploadRequest,
    UploadResult,
)
from upload_client.retry import RetryPolicy

PRODUCT_NAME: Final = "Benchmark large file"
PRICE: Final = Decimal("12.34")


def _product_id() -> str:
    return f"BENCH-LARGE-{uuid.uuid4().hex[:12]}"


def _peak_rss_bytes() -> int:
    """This process's peak RSS. On Linux, VmHWM: ru_maxrss is no good here, since exec records
    the parent's high-water mark in it (a child started with vfork, as subprocess does, reports
    at least the emulator's RSS)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def run_client(base: str, path: Path, parallel: int) -> dict[str, Any]:
    """The client as a user calls it: the whole upload, opening to commit; also when its last
    part was stored, and its retries (each waits once): under load local mode may fail an
    attempt the client repeats."""
    waits: list[float] = []
    stored = [0, 0.0]  # bytes stored, when the last of them was

    def sleep(seconds: float) -> None:
        waits.append(seconds)  # list.append: safe from the part workers too
        time.sleep(seconds)

    def progress(nbytes: int) -> None:  # on the calling thread
        stored[0] += nbytes
        stored[1] = time.perf_counter()

    started = time.perf_counter()
    try:
        result = upload_file(
            path,
            product_id=_product_id(),
            product_name=PRODUCT_NAME,
            price=PRICE,
            api_url=base,
            parallel=parallel,
            progress=progress,
            retry=RetryPolicy(sleep=sleep),
        )
        seconds = [time.perf_counter() - started]
        failures, versions = [], [[result.s3_key, result.version_id]]
    except UploadClientError as exc:
        seconds, failures, versions = [], [_failure(exc)], []
    return {
        "seconds": seconds,
        "parts_seconds": stored[1] - started if stored[0] == path.stat().st_size else None,
        "retries": len(waits),
        "failures": failures,
        "versions": versions,
    }


def _failure(exc: UploadClientError) -> str:
    status = f" (HTTP {exc.status})" if exc.status else ""
    return f"{exc.code}{status} {exc}"


def run_boto3(endpoint: str, bucket: str, key: str, path: Path, part_size: int) -> dict[str, Any]:
    """A plain sequential ``upload_part`` loop, each part read from disk, then completed.

    ListParts is timed apart and left out of the upload's time: the service's commit lists the
    parts, and the emulator's S3 hashes every stored part to answer it."""
    s3 = provisioning.client("s3", endpoint)
    started = time.perf_counter()
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    upload = {"Bucket": bucket, "Key": key, "UploadId": created["UploadId"]}
    done: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        for number, data in enumerate(iter(lambda: handle.read(part_size), b""), start=1):
            answer = s3.upload_part(
                **upload, PartNumber=number, Body=data, ChecksumAlgorithm="SHA256"
            )
            done.append(
                {
                    "PartNumber": number,
                    "ETag": answer["ETag"],
                    "ChecksumSHA256": answer["ChecksumSHA256"],
                }
            )
    sent = time.perf_counter()
    s3.list_parts(**upload)
    listed = time.perf_counter()
    completed = s3.complete_multipart_upload(**upload, MultipartUpload={"Parts": done})
    finished = time.perf_counter()
    return {
        "seconds": [(sent - started) + (finished - listed)],
        "parts_seconds": sent - started,
        "failures": [],
        "list_parts_seconds": listed - sent,
        "complete_seconds": finished - listed,
        "versions": [[key, completed.get("VersionId", "")]],
    }


def _send_parts(api: ApiClient, path: Path, parallel: int, product_id: str) -> str:
    """Open a session for ``path`` and store all its parts, as the client does; its id."""
    size = path.stat().st_size
    body = CreateSession(
        product_id=product_id,
        file_name=path.name,
        size=size,
        part_size=parts.choose_part_size(size, parallel),
    )
    created = api.call("POST", "/uploads", SessionCreated, body)
    plan = {part.number: part for part in parts.plan(size, created.part_size)}
    with path.open("rb") as handle:
        digests = [PartDigest(n, parts.sha256_of(handle, part)) for n, part in plan.items()]
    route = f"/uploads/{quote(created.upload_id, safe='')}/parts"
    urls = api.call("POST", route, PartUrls, PartsRequest(digests)).parts
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        sent = pool.map(
            lambda url: storage.put_part(
                api.http, api.policy, url, parts.read(path, plan[url.part_number])
            ),
            urls,
        )
        list(sent)  # raises the first failure
    return created.upload_id


def run_commit(base: str, path: Path, parallel: int, repetitions: int) -> dict[str, Any]:
    """``repetitions`` sessions of ``path``: the parts sent, then only the commit timed, one
    attempt each (a failed attempt is reported, not retried into the figure)."""
    seconds: list[float] = []
    failures: list[str] = []
    versions: list[list[str]] = []
    with new_session(parallel) as http:
        api = ApiClient(base, Unsigned(), RetryPolicy(), http)
        once = ApiClient(base, Unsigned(), RetryPolicy(attempts=1), http)
        for _ in range(repetitions):
            product_id = _product_id()
            upload_id = _send_parts(api, path, parallel, product_id)
            commit = UploadRequest(
                product_id=product_id,
                product_name=PRODUCT_NAME,
                price=PRICE,
                file_name=path.name,
                upload_id=upload_id,
            )
            started = time.perf_counter()
            try:
                result = once.call(
                    "POST", UPLOAD_ROUTE, UploadResult, commit, idempotency_key=str(uuid.uuid4())
                )
            except UploadClientError as exc:
                failures.append(_failure(exc))
                continue
            seconds.append(time.perf_counter() - started)
            versions.append([result.s3_key, result.version_id])
    return {"seconds": seconds, "failures": failures, "versions": versions}


def main(argv: list[str]) -> None:
    mode, rest = argv[0], argv[1:]
    if mode == "client":
        found = run_client(rest[0], Path(rest[1]), int(rest[2]))
    elif mode == "boto3":
        found = run_boto3(rest[0], rest[1], rest[2], Path(rest[3]), int(rest[4]))
    elif mode == "commit":
        found = run_commit(rest[0], Path(rest[1]), int(rest[2]), int(rest[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: client, boto3 or commit")
    print(json.dumps({**found, "peak_rss": _peak_rss_bytes()}))


if __name__ == "__main__":
    main(sys.argv[1:])
