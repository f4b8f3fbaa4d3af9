"""Committing upload sessions end to end through local mode: ``POST /upload`` with ``uploadId``,
the status and body the client gets, then what the emulated S3 (object versions under the key,
multipart uploads in progress) and DynamoDB (the metadata item, the session's state as
``GET /uploads/{uploadId}`` reports it) hold afterwards.

Files are as small as S3's multipart rules allow: parts of 5 MiB but the last.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

import upload_client
from local.emulator import Emulator
from tasks.store import SESSION_BUSY_MESSAGE
from tests.oracle import SUCCESS_FIELDS
from upload_client import parts as client_parts
from upload_client import storage as client_storage
from upload_client.models import PartUrl

from .conftest import Client, assert_error, put_part

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part but the last
TIMEOUT = 60
# The inline success body's keys but sha256 (a one-part session's only), plus a commit's own.
COMMIT_FIELDS = (SUCCESS_FIELDS - {"sha256"}) | {"uploadId", "checksum"}


def stored_checksum(commits: Commits, session: Session, version_id: str) -> tuple[str, str]:
    """S3's own checksum of the version and its type (moto's HeadObject leaves out the "-N" and
    the type; its GetObject gives both)."""
    stored = commits.client.s3.get_object(
        Bucket=commits.client.bucket, Key=session.key, VersionId=version_id, ChecksumMode="ENABLED"
    )
    return stored["ChecksumSHA256"], stored.get("ChecksumType", "")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def composite(parts: list[bytes]) -> str:
    """S3's composite SHA-256 of a multipart object: ``b64(sha256(part digests)) + "-N"``."""
    digests = b"".join(hashlib.sha256(part).digest() for part in parts)
    return f"{base64.b64encode(hashlib.sha256(digests).digest()).decode()}-{len(parts)}"


@dataclass
class Session:
    """An open session and the file it is for, split into its planned parts."""

    upload_id: str
    product_id: str
    file_name: str
    key: str
    parts: dict[int, bytes]

    @property
    def data(self) -> bytes:
        return b"".join(self.parts[n] for n in sorted(self.parts))


@dataclass
class Commits:
    """A client of the /uploads routes and of ``POST /upload``, and a look at S3 and DynamoDB."""

    emulator: Emulator
    client: Client
    opened: list[str]

    @property
    def sessions_url(self) -> str:
        return f"{self.emulator.base_url}/uploads"

    def open(self, data: bytes, **fields: Any) -> Session:
        product_id = f"PROD-{uuid.uuid4().hex[:12]}"
        body = {
            "productId": product_id,
            "fileName": "big.bin",
            "size": len(data),
            "partSize": PART,
            **fields,
        }
        response = requests.post(self.sessions_url, json=body, timeout=TIMEOUT)
        assert response.status_code == 201, response.text
        upload_id: str = response.json()["uploadId"]
        self.opened.append(upload_id)
        chunks = {
            n + 1: data[offset : offset + PART]
            for n, offset in enumerate(range(0, len(data), PART))
        }
        assert response.json()["partCount"] == len(chunks)
        return Session(upload_id, product_id, body["fileName"], response.json()["s3Key"], chunks)

    def signed(self, session: Session, parts: dict[int, bytes]) -> dict[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "parts": [{"partNumber": n, "sha256": sha256_hex(d)} for n, d in parts.items()]
        }
        response = requests.post(
            f"{self.sessions_url}/{session.upload_id}/parts", json=body, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        return {part["partNumber"]: part for part in response.json()["parts"]}

    def put_parts(self, session: Session, *numbers: int) -> None:
        """PUT the given parts (all of them by default) in parallel, in the order given."""
        wanted = numbers or tuple(session.parts)
        urls = self.signed(session, {n: session.parts[n] for n in wanted})
        with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
            puts = [pool.submit(put_part, urls[n], session.parts[n]) for n in wanted]
        for put in puts:
            assert put.result().status_code == 200, put.result().text

    def commit(
        self, session: Session, headers: dict[str, str] | None = None, **fields: Any
    ) -> requests.Response:
        body = {
            "productId": session.product_id,
            "productName": "Big Product",
            "price": 12.5,
            "uploadId": session.upload_id,
            **fields,
        }
        return requests.post(self.emulator.api_url, json=body, headers=headers, timeout=TIMEOUT)

    def describe(self, upload_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.sessions_url}/{upload_id}", timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def state(self, upload_id: str) -> str:
        return str(self.describe(upload_id)["state"])

    def multipart_uploads(self, key: str) -> list[dict[str, Any]]:
        listed = self.client.s3.list_multipart_uploads(Bucket=self.client.bucket, Prefix=key)
        return list(listed.get("Uploads", []))

    def assert_nothing_stored(self, session: Session) -> None:
        assert self.client.versions(f"uploads/{session.product_id}/") == []
        assert self.client.items(session.product_id) == []


@pytest.fixture
def commits(emulator: Emulator, client: Client) -> Iterator[Commits]:
    helper = Commits(emulator, client, [])
    yield helper
    # Every local session is the anonymous caller's: leave none open for the open-session limit
    # (a closed one answers 409, which is fine). And no file behind: moto copies every version
    # of the bucket on each version listing, so megabytes left here would cost every later test.
    s3, bucket = client.s3, client.bucket
    for upload_id in helper.opened:
        described = requests.get(f"{helper.sessions_url}/{upload_id}", timeout=TIMEOUT)
        requests.delete(f"{helper.sessions_url}/{upload_id}", timeout=TIMEOUT)
        if described.status_code != 200:
            continue
        for version in client.versions(described.json()["s3Key"]):
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])


def detail_fields(body: dict[str, Any]) -> list[str]:
    return [detail["field"] for detail in body["error"].get("details", [])]


def assert_committed(
    commits: Commits, response: requests.Response, session: Session, content_type: str
) -> dict[str, Any]:
    """A 200 for ``session``: the body, the one version holding the file, the item pointing at
    it, no multipart upload left, the session COMMITTED."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    one_part = len(session.parts) == 1
    assert set(body) == (COMMIT_FIELDS | {"sha256"} if one_part else COMMIT_FIELDS), body
    assert body["message"] == "File uploaded successfully"
    assert body["requestId"] == response.headers["x-amzn-RequestId"]
    assert (body["uploadId"], body["productId"], body["fileName"], body["s3Key"]) == (
        session.upload_id,
        session.product_id,
        session.file_name,
        session.key,
    )
    assert (body["productName"], body["price"], body["size"]) == (
        "Big Product",
        12.5,
        len(session.data),
    )
    assert body["contentType"] == content_type
    assert body["checksum"]["algorithm"] == "SHA256"

    client = commits.client
    assert [v["VersionId"] for v in client.versions(session.key)] == [body["versionId"]]
    assert client.object_bytes(session.key, body["versionId"]) == session.data
    [item] = client.items(session.product_id)
    assert (item["versionId"], item["s3Key"], item["requestId"]) == (
        body["versionId"],
        session.key,
        body["requestId"],
    )
    assert item["sha256"] == body.get("sha256")  # unknown (null) for several parts
    assert commits.multipart_uploads(session.key) == []
    assert commits.state(session.upload_id) == "COMMITTED"
    return body


def test_a_one_part_session_commits_with_its_sha256(commits: Commits) -> None:
    data = b"a small file, one part\n" * 10
    session = commits.open(data, contentType="text/plain")
    commits.put_parts(session)

    response = commits.commit(session)

    body = assert_committed(commits, response, session, "text/plain")
    digest = hashlib.sha256(data)
    assert body["sha256"] == digest.hexdigest()
    # S3 keeps a multipart upload's composite even for one part: "-1".
    expected = composite([data])
    assert body["checksum"] == {"algorithm": "SHA256", "type": "COMPOSITE", "value": expected}
    assert stored_checksum(commits, session, body["versionId"]) == (expected, "COMPOSITE")


def test_three_parts_put_in_parallel_out_of_order_commit_with_s3s_composite(
    commits: Commits,
) -> None:
    data = os.urandom(2 * PART + 7)
    session = commits.open(data, contentType="application/octet-stream")
    commits.put_parts(session, 3, 1, 2)

    response = commits.commit(session)

    body = assert_committed(commits, response, session, "application/octet-stream")
    assert "sha256" not in body
    expected = composite([session.parts[n] for n in (1, 2, 3)])
    assert body["checksum"] == {"algorithm": "SHA256", "type": "COMPOSITE", "value": expected}
    assert stored_checksum(commits, session, body["versionId"]) == (expected, "COMPOSITE")


def test_a_tampered_part_is_refused_then_the_right_bytes_commit(commits: Commits) -> None:
    part = b"the only part of a small file\n"
    session = commits.open(part, contentType="text/plain")
    url = commits.signed(session, {1: part})[1]

    tampered = put_part(url, part.upper())  # same length: only the digest differs

    assert tampered.status_code == 400, tampered.text
    assert "<Code>BadDigest</Code>" in tampered.text
    refused = assert_error(commits.commit(session), 400, "ValidationError")
    assert refused["error"]["details"] == [{"field": "uploadId", "message": "part 1 is missing"}]
    commits.assert_nothing_stored(session)
    assert commits.state(session.upload_id) == "OPEN"

    assert put_part(url, part).status_code == 200
    assert_committed(commits, commits.commit(session), session, "text/plain")


def test_a_missing_part_is_named_and_the_session_stays_open(commits: Commits) -> None:
    session = commits.open(os.urandom(PART + 3), contentType="application/octet-stream")
    commits.put_parts(session, 1)

    refused = assert_error(commits.commit(session), 400, "ValidationError")

    assert refused["error"]["details"] == [{"field": "uploadId", "message": "part 2 is missing"}]
    commits.assert_nothing_stored(session)
    described = commits.describe(session.upload_id)
    assert described["state"] == "OPEN"
    assert [p["partNumber"] for p in described["parts"]] == [1]
    assert len(commits.multipart_uploads(session.key)) == 1

    commits.put_parts(session, 2)
    response = commits.commit(session)
    assert_committed(commits, response, session, "application/octet-stream")


def test_a_metadata_failure_after_completion_leaves_nothing_and_aborts_the_session(
    commits: Commits, emulator: Emulator
) -> None:
    session = commits.open(os.urandom(PART + 5), contentType="application/octet-stream")
    commits.put_parts(session)
    emulator.faults.add("dynamodb", "TransactWriteItems", task="record")

    response = commits.commit(session)

    assert_error(response, 500, "InternalError")
    commits.assert_nothing_stored(session)  # the completed version deleted, no delete marker
    assert commits.state(session.upload_id) == "ABORTED"
    assert commits.multipart_uploads(session.key) == []


def test_a_committed_session_is_not_committed_again_but_its_key_replays(
    commits: Commits,
) -> None:
    data = b"committed once\n"
    session = commits.open(data, contentType="text/plain")
    commits.put_parts(session)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = assert_committed(commits, commits.commit(session, headers=key), session, "text/plain")
    [item] = commits.client.items(session.product_id)

    again = commits.commit(session)
    other_key = commits.commit(session, headers={"Idempotency-Key": str(uuid.uuid4())})
    replayed = commits.commit(session, headers=key)

    refused = assert_error(again, 409, "SessionNotOpen")
    assert refused["error"]["message"] == "The upload session is COMMITTED: it cannot be committed."
    # Another key passes validate (it may be a replay) and is refused by store's transaction.
    refused = assert_error(other_key, 409, "SessionNotOpen")
    assert refused["error"]["message"] == SESSION_BUSY_MESSAGE
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {**first, "requestId": replayed.json()["requestId"]}
    assert [v["VersionId"] for v in commits.client.versions(session.key)] == [first["versionId"]]
    assert commits.client.items(session.product_id) == [item]
    assert commits.state(session.upload_id) == "COMMITTED"


def test_an_aborted_session_is_not_committed_and_an_unknown_one_is_not_found(
    commits: Commits,
) -> None:
    part = b"aborted before its commit\n"
    session = commits.open(part, contentType="text/plain")
    commits.put_parts(session)
    aborted = requests.delete(f"{commits.sessions_url}/{session.upload_id}", timeout=TIMEOUT)
    assert aborted.status_code == 200, aborted.text

    refused = assert_error(commits.commit(session), 409, "SessionNotOpen")
    unknown = commits.commit(session, uploadId=str(uuid.uuid4()))

    assert refused["error"]["message"] == "The upload session is ABORTED: it cannot be committed."
    commits.assert_nothing_stored(session)
    assert commits.state(session.upload_id) == "ABORTED"
    assert_error(unknown, 404, "NotFound")


def test_a_body_contradicting_its_session_names_the_field(commits: Commits) -> None:
    part = b"the file of one session\n"
    session = commits.open(part, contentType="text/plain")
    commits.put_parts(session)

    product = commits.commit(session, productId=f"PROD-{uuid.uuid4().hex[:12]}")
    file_name = commits.commit(session, fileName="other.bin")
    content_type = commits.commit(session, contentType="application/octet-stream")
    both = commits.commit(session, fileContent=base64.b64encode(part).decode())

    assert detail_fields(assert_error(product, 400, "ValidationError")) == ["productId"]
    assert detail_fields(assert_error(file_name, 400, "ValidationError")) == ["fileName"]
    assert detail_fields(assert_error(content_type, 400, "ValidationError")) == ["contentType"]
    assert detail_fields(assert_error(both, 400, "ValidationError")) == ["uploadId"]
    commits.assert_nothing_stored(session)
    assert commits.state(session.upload_id) == "OPEN"
    assert len(commits.multipart_uploads(session.key)) == 1


def test_bytes_contradicting_the_sessions_content_type_are_refused_and_removed(
    commits: Commits,
) -> None:
    text = b"plain text, not a PNG\n" * 20
    session = commits.open(text, contentType="image/png")
    commits.put_parts(session)

    refused = assert_error(commits.commit(session), 400, "ValidationError")

    assert detail_fields(refused) == ["contentType"]
    commits.assert_nothing_stored(session)
    assert commits.state(session.upload_id) == "ABORTED"
    assert commits.multipart_uploads(session.key) == []


def test_the_client_interrupted_after_one_part_resumes_with_the_missing_parts(
    commits: Commits, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * PART + 11)
    path = tmp_path / "large.bin"
    path.write_bytes(data)
    plan = [data[offset : offset + PART] for offset in range(0, len(data), PART)]
    # The client sizes parts by its parallelism; one worker would make one part of 16 MiB.
    monkeypatch.setattr(client_parts, "choose_part_size", lambda size, parallel: PART)
    puts: list[int] = []  # the part numbers the client PUT, in order
    put = client_storage.put_part

    def counted(http: requests.Session, policy: Any, url: PartUrl, chunk: bytes) -> None:
        puts.append(url.part_number)
        put(http, policy, url, chunk)

    monkeypatch.setattr(client_storage, "put_part", counted)

    def ctrl_c(nbytes: int) -> None:
        # Progress is reported on the calling thread, where Ctrl-C would land.
        raise KeyboardInterrupt

    product_id = f"PROD-{uuid.uuid4().hex[:12]}"
    options: dict[str, Any] = {
        "product_id": product_id,
        "product_name": "Big Product",
        "price": "12.50",
        "api_url": emulator.base_url,
        "content_type": "application/octet-stream",
        "auth": upload_client.Unsigned(),
        "parallel": 1,
    }
    with pytest.raises(upload_client.UploadInterrupted) as interrupted:
        upload_client.upload_file(path, progress=ctrl_c, **options)
    upload_id = interrupted.value.upload_id
    commits.opened.append(upload_id)
    # A part already being sent finishes on its own: wait for the client's worker to end.
    for thread in threading.enumerate():
        if thread.name.startswith("upload-part"):
            thread.join(timeout=TIMEOUT)
            assert not thread.is_alive()

    described = commits.describe(upload_id)
    assert described["state"] == "OPEN"
    done = [part["partNumber"] for part in described["parts"]]
    assert done in ([1], [1, 2]), done  # the first part, and the one in flight if it was sent
    assert described["parts"] == [
        {"partNumber": n, "size": len(plan[n - 1]), "sha256": sha256_hex(plan[n - 1])} for n in done
    ]
    assert commits.client.versions(f"uploads/{product_id}/") == []
    sent_before = len(puts)
    assert sorted(puts) == done

    progress: list[int] = []
    result = upload_client.upload_file(path, resume=upload_id, progress=progress.append, **options)

    assert sorted(puts[sent_before:]) == [n for n in (1, 2, 3, 4) if n not in done]
    assert sum(progress) == len(data)
    key = f"uploads/{product_id}/large.bin"
    assert (result.s3_key, result.size, result.sha256) == (key, len(data), None)
    assert result.checksum is not None
    assert (result.checksum.type, result.checksum.value) == ("COMPOSITE", composite(plan))
    assert [v["VersionId"] for v in commits.client.versions(key)] == [result.version_id]
    assert commits.client.object_bytes(key, result.version_id) == data
    assert commits.state(upload_id) == "COMMITTED"
    assert commits.multipart_uploads(key) == []


@pytest.mark.parametrize(
    ("task", "operation", "state"),
    [
        # Validate cannot read the parts: nothing was begun.
        ("validate", "ListParts", "OPEN"),
        # The completion fails (its retry too): never completed, so the session is open again.
        ("store", "CompleteMultipartUpload", "OPEN"),
        # The first bytes cannot be read after the completion: its version is deleted.
        ("store", "GetObject", "ABORTED"),
    ],
)
def test_a_commit_whose_storage_call_fails_stores_nothing(
    commits: Commits, task: str, operation: str, state: str
) -> None:
    session = commits.open(os.urandom(PART + 5), contentType="application/octet-stream")
    commits.put_parts(session)
    commits.emulator.faults.add("s3", operation, task=task)

    assert_error(commits.commit(session), 500, "InternalError")

    commits.emulator.faults.clear()
    commits.assert_nothing_stored(session)
    assert commits.state(session.upload_id) == state
    if state == "OPEN":  # the client may commit again
        assert_committed(commits, commits.commit(session), session, "application/octet-stream")
    else:
        assert commits.multipart_uploads(session.key) == []


def test_a_session_route_whose_storage_call_fails_leaves_nothing_behind(
    commits: Commits,
) -> None:
    product_id = f"PROD-{uuid.uuid4().hex[:12]}"
    key = f"uploads/{product_id}/big.bin"
    body: dict[str, Any] = {"productId": product_id, "fileName": "big.bin", "size": 10}
    for operation in ("CreateMultipartUpload", "PutItem"):
        service = "dynamodb" if operation == "PutItem" else "s3"
        commits.emulator.faults.add(service, operation, task="session")  # its retry fails too
        opened = requests.post(commits.sessions_url, json=body, timeout=TIMEOUT)
        commits.emulator.faults.clear()
        assert_error(opened, 500, "InternalError")
        # No multipart upload is left that no session names.
        assert commits.multipart_uploads(key) == []
    session = commits.open(b"0123456789", contentType="text/plain")
    commits.emulator.faults.add("s3", "AbortMultipartUpload", task="session")
    aborted = requests.delete(f"{commits.sessions_url}/{session.upload_id}", timeout=TIMEOUT)
    commits.emulator.faults.clear()
    assert_error(aborted, 500, "InternalError")
    assert commits.state(session.upload_id) == "OPEN"  # not aborted: DELETE may be repeated
