"""Upload sessions end to end through local mode: the /uploads routes as a client uses them, the
parts PUT to their presigned URLs, then what the emulated S3 holds (the multipart upload, and no
object version before a commit).

Sessions are as small as S3 allows (parts of 5 MiB but the last). Local mode authenticates
nobody, so every session here is the anonymous caller's: caller scoping is tested at the unit
level (tests/unit/test_session_task.py).
"""

from __future__ import annotations

import hashlib
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local.emulator import Emulator
from tasks.contract import names

from .conftest import assert_error, put_part

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part but the last
TIMEOUT = 60


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Sessions:
    """A client of the /uploads routes, and a look at what the emulated S3 holds."""

    emulator: Emulator
    s3: Any
    bucket: str
    opened: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.emulator.base_url}/uploads"

    def open(self, body: dict[str, Any]) -> requests.Response:
        response = requests.post(self.url, json=body, timeout=TIMEOUT)
        if response.status_code == 201:
            self.opened.append(response.json()["uploadId"])
        return response

    def open_file(self, data: bytes) -> tuple[dict[str, Any], str]:
        """A session for ``data`` in parts of PART bytes: its POST /uploads body and s3Key."""
        product_id = f"PROD-{uuid.uuid4().hex[:12]}"
        body = {"productId": product_id, "fileName": "big.bin", "size": len(data), "partSize": PART}
        response = self.open(body)
        assert response.status_code == 201, response.text
        opened: dict[str, Any] = response.json()
        return opened, f"uploads/{product_id}/big.bin"

    def sign(self, upload_id: str, parts: dict[int, bytes]) -> requests.Response:
        body: dict[str, Any] = {
            "parts": [{"partNumber": n, "sha256": sha256(data)} for n, data in parts.items()]
        }
        return requests.post(f"{self.url}/{upload_id}/parts", json=body, timeout=TIMEOUT)

    def signed(self, upload_id: str, parts: dict[int, bytes]) -> dict[int, dict[str, Any]]:
        """The part URLs and headers, by part number."""
        response = self.sign(upload_id, parts)
        assert response.status_code == 200, response.text
        return {part["partNumber"]: part for part in response.json()["parts"]}

    def describe(self, upload_id: str) -> requests.Response:
        return requests.get(f"{self.url}/{upload_id}", timeout=TIMEOUT)

    def abort(self, upload_id: str) -> requests.Response:
        return requests.delete(f"{self.url}/{upload_id}", timeout=TIMEOUT)

    def multipart_uploads(self, key: str) -> list[dict[str, Any]]:
        listed = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        return list(listed.get("Uploads", []))

    def versions(self, key: str) -> list[dict[str, Any]]:
        listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
        return list(listed.get("Versions", [])) + list(listed.get("DeleteMarkers", []))


@pytest.fixture
def sessions(emulator: Emulator) -> Iterator[Sessions]:
    client = Sessions(emulator, emulator.client("s3"), emulator.bucket_name)
    yield client
    # Every local session is the anonymous caller's: leave none open for the open-session limit.
    for upload_id in client.opened:
        client.abort(upload_id)


def assert_s3_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert ET.fromstring(response.content).findtext("Code") == code


def listed_parts(sessions: Sessions, upload_id: str) -> list[dict[str, Any]]:
    response = sessions.describe(upload_id)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["state"] == "OPEN"
    parts: list[dict[str, Any]] = body["parts"]
    return parts


def test_parts_put_in_parallel_and_out_of_order_are_listed(sessions: Sessions) -> None:
    parts = {1: os.urandom(PART), 2: os.urandom(PART), 3: b"tail!"}
    data = b"".join(parts[n] for n in sorted(parts))
    opened, key = sessions.open_file(data)
    upload_id = opened["uploadId"]
    expires_at = datetime.strptime(opened["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(expires_at - datetime.now(UTC) - timedelta(days=1)) < timedelta(minutes=1)
    assert opened == {
        "uploadId": upload_id,
        "s3Key": key,
        "partSize": PART,
        "partCount": 3,
        "expiresAt": opened["expiresAt"],
        "requestId": upload_id,
    }

    signed = sessions.signed(upload_id, parts)  # all three in one call
    with ThreadPoolExecutor(max_workers=3) as pool:
        puts = {n: pool.submit(put_part, signed[n], parts[n]) for n in (3, 1, 2)}
    for number, put in puts.items():
        assert put.result().status_code == 200, (number, put.result().text)

    described = sessions.describe(upload_id)
    assert described.status_code == 200, described.text
    body = described.json()
    assert body == {
        "uploadId": upload_id,
        "state": "OPEN",
        "s3Key": key,
        "size": len(data),
        "partSize": PART,
        "partCount": 3,
        "parts": [
            {"partNumber": n, "size": len(parts[n]), "sha256": sha256(parts[n])} for n in (1, 2, 3)
        ],
        "expiresAt": opened["expiresAt"],
        "requestId": body["requestId"],
    }
    [upload] = sessions.multipart_uploads(key)
    assert upload["Key"] == key
    assert sessions.versions(key) == []  # nothing in the bucket before a commit


def test_a_tampered_part_is_refused_by_storage(sessions: Sessions) -> None:
    part = b"the only part"
    opened, key = sessions.open_file(part)
    upload_id = opened["uploadId"]
    signed = sessions.signed(upload_id, {1: part})[1]

    tampered = put_part(signed, part.upper())  # as long as the part: only its digest differs

    assert_s3_error(tampered, 400, "BadDigest")
    assert listed_parts(sessions, upload_id) == []

    assert put_part(signed, part).status_code == 200

    assert listed_parts(sessions, upload_id) == [
        {"partNumber": 1, "size": len(part), "sha256": sha256(part)}
    ]
    assert sessions.versions(key) == []


def test_abort_ends_the_session_and_its_multipart_upload(sessions: Sessions) -> None:
    part = b"never stored"
    opened, key = sessions.open_file(part)
    upload_id = opened["uploadId"]
    signed = sessions.signed(upload_id, {1: part})[1]  # signed before the abort

    aborted = sessions.abort(upload_id)

    assert aborted.status_code == 200, aborted.text
    assert aborted.json() == {
        "uploadId": upload_id,
        "state": "ABORTED",
        "requestId": aborted.json()["requestId"],
    }
    assert sessions.multipart_uploads(key) == []
    assert_s3_error(put_part(signed, part), 404, "NoSuchUpload")
    refused = assert_error(sessions.sign(upload_id, {1: part}), 409, "SessionNotOpen")
    assert refused["error"]["message"] == "The upload session is ABORTED: it takes no more parts."
    again = sessions.abort(upload_id)
    assert again.status_code == 200, again.text
    assert again.json()["state"] == "ABORTED"
    described = sessions.describe(upload_id)
    assert (described.json()["state"], described.json()["parts"]) == ("ABORTED", [])
    assert sessions.versions(key) == []


def test_an_unknown_session_is_not_found(sessions: Sessions) -> None:
    response = sessions.describe(str(uuid.uuid4()))

    body = assert_error(response, 404, "NotFound")
    assert body["error"] == {
        "code": "NotFound",
        "message": "There is no upload session with this uploadId.",
    }


def test_open_refuses_a_file_over_the_limit_and_every_bad_field(
    sessions: Sessions, emulator: Emulator
) -> None:
    limit = int(emulator.function(names.SESSION).environment[names.MAX_UPLOAD_BYTES])
    product_id = f"PROD-{uuid.uuid4().hex[:12]}"

    too_large = sessions.open({"productId": product_id, "fileName": "big.bin", "size": limit + 1})
    invalid = sessions.open(
        {"productId": "no spaces", "fileName": "a/b", "size": 0, "partSize": 1, "colour": 1}
    )

    body = assert_error(too_large, 413, "PayloadTooLarge")
    assert body["error"]["details"] == [{"field": "size", "message": f"must be at most {limit}"}]
    body = assert_error(invalid, 400, "ValidationError")
    fields = [problem["field"] for problem in body["error"]["details"]]
    assert fields == ["productId", "fileName", "size", "partSize", "colour"]
    assert sessions.multipart_uploads(f"uploads/{product_id}/") == []
