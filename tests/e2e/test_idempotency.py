"""The Idempotency-Key guarantee (docs/api.md), end to end through local mode: replay, conflict,
concurrency, retry after a failure, and no header."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from tasks.contract.idempotency import (
    DIFFERENT_BODY_MESSAGE,
    IN_PROGRESS_MESSAGE,
    idempotency_id,
)

from .conftest import make_upload
from .test_upload import assert_error


def key_header() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid.uuid4()}"}


def claim(client: Any, headers: dict[str, str]) -> dict[str, Any] | None:
    """The claim item of this key (local mode has no caller id: the key is scoped to "")."""
    dynamodb = client.emulator.client("dynamodb")
    found = dynamodb.get_item(
        TableName=client.emulator.idempotency_table_name,
        Key={"idempotencyKey": {"S": idempotency_id("", headers["Idempotency-Key"])}},
        ConsistentRead=True,
    )
    item = found.get("Item")
    return {name: next(iter(value.values())) for name, value in item.items()} if item else None


def test_same_key_and_body_returns_the_first_result_and_stores_nothing_new(client):
    upload = make_upload()
    headers = key_header()
    first = client.post(upload.body, headers=headers)
    assert first.status_code == 200, first.text

    second = client.post(upload.body, headers=headers)

    assert second.status_code == 200, second.text
    assert second.headers["Content-Type"].startswith("application/json")
    # The first result (version, hash, timestamp, ...) under this request's own id.
    assert second.json() == {**first.json(), "requestId": second.headers["x-amzn-RequestId"]}
    assert second.headers["x-amzn-RequestId"] != first.headers["x-amzn-RequestId"]
    assert [v["VersionId"] for v in client.versions(upload.key)] == [first.json()["versionId"]]
    [item] = client.items(upload.body["productId"])
    assert item["versionId"] == first.json()["versionId"]
    assert item["requestId"] == first.json()["requestId"]
    stored = claim(client, headers)
    assert stored is not None
    assert stored["status"] == "COMPLETED"
    assert stored["requestId"] == first.json()["requestId"]


def test_same_key_with_another_body_is_409_and_stores_nothing_new(client):
    upload = make_upload()
    headers = key_header()
    first = client.post(upload.body, headers=headers)
    assert first.status_code == 200, first.text
    versions = client.versions(upload.key)
    items = client.items(upload.body["productId"])

    changed = make_upload(b"another file", productId=upload.body["productId"])
    response = client.post(changed.body, headers=headers)

    body = assert_error(response, 409, "IdempotencyConflict")
    assert body["error"]["message"] == DIFFERENT_BODY_MESSAGE
    assert body["requestId"] == response.headers["x-amzn-RequestId"]
    assert client.versions(upload.key) == versions
    assert client.items(upload.body["productId"]) == items


def test_concurrent_requests_with_one_key_store_one_version(client):
    upload = make_upload()
    headers = key_header()
    responses: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        response = client.post(upload.body, headers=headers)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(responses) == 8
    successes = [r for r in responses if r.status_code == 200]
    conflicts = [r for r in responses if r.status_code != 200]
    assert successes, [r.text for r in responses]
    [version] = client.versions(upload.key)
    [item] = client.items(upload.body["productId"])
    # Every 200 is the one upload's result; every other answer is "still in progress".
    assert {r.json()["versionId"] for r in successes} == {version["VersionId"]}
    assert len({r.text for r in successes}) == 1
    assert item["versionId"] == version["VersionId"]
    for response in conflicts:
        body = assert_error(response, 409, "IdempotencyConflict")
        assert body["error"]["message"] == IN_PROGRESS_MESSAGE


def test_a_failed_upload_releases_the_key_and_a_retry_succeeds(client, emulator):
    upload = make_upload()
    headers = key_header()
    fault = emulator.faults.add("dynamodb", "TransactWriteItems")

    failed = client.post(upload.body, headers=headers)

    assert_error(failed, 500, "InternalError")
    assert fault.injected == 2  # Record's attempt and its retry
    assert client.versions(upload.key) == []  # compensated
    assert client.items(upload.body["productId"]) == []
    assert claim(client, headers) is None  # released

    emulator.faults.clear()
    retried = client.post(upload.body, headers=headers)

    assert retried.status_code == 200, retried.text
    assert [v["VersionId"] for v in client.versions(upload.key)] == [retried.json()["versionId"]]
    assert retried.json()["requestId"] == retried.headers["x-amzn-RequestId"]
    assert claim(client, headers)["status"] == "COMPLETED"  # type: ignore[index]


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": ""}], ids=["absent", "empty"])
def test_without_a_key_every_request_stores_a_new_version(client, headers):
    # An empty Idempotency-Key is the same as none (docs/api.md).
    upload = make_upload()
    first = client.post(upload.body, headers=headers)
    second = client.post(upload.body, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["versionId"] != second.json()["versionId"]
    assert {v["VersionId"] for v in client.versions(upload.key)} == {
        first.json()["versionId"],
        second.json()["versionId"],
    }
    [item] = client.items(upload.body["productId"])
    assert item["versionId"] == second.json()["versionId"]
    dynamodb = client.emulator.client("dynamodb")
    claims = dynamodb.scan(TableName=client.emulator.idempotency_table_name)["Items"]
    assert not any(c.get("requestId", {}).get("S") == first.json()["requestId"] for c in claims)
