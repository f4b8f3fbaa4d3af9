"""The Idempotency-Key claim across store, record and compensate, against moto.

Claim (store), replay, conflict (other body / in progress), a retried Store re-claiming, an expired
claim taken over, the completion in one transaction with the metadata (record), and the release
(compensate).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from tasks import compensate, record, store
from tasks.contract.errors import (
    UPLOAD_IN_PROGRESS_MESSAGE,
    CompensationFailed,
    IdempotencyConflict,
    StorageError,
    TransientStorageError,
    UploadInProgress,
)
from tasks.contract.idempotency import (
    CLAIM_SECONDS,
    DIFFERENT_BODY_MESSAGE,
    IN_PROGRESS_MESSAGE,
    REPLAY_SECONDS,
    fingerprint,
    idempotency_id,
)
from tasks.contract.timing import TASK_RETRY
from tasks.core import aws, claims
from tasks.core.validation import validate_upload

from .support import (
    BUCKET,
    CLAIMS_TABLE,
    LEDGER_TABLE,
    REGION,
    TABLE,
    Cloud,
    b64,
    complete_upload,
    metric_values,
)

KEY = "order-42"
CALLER = "AROAEXAMPLE:client-a"
DATA = b"hello, idempotent upload"


def body(data: bytes = DATA, **overrides: Any) -> dict[str, Any]:
    return {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": 99.99,
        "fileContent": b64(data),
        "fileName": "test-file.txt",
        **overrides,
    }


def upload(request_id: str, request: dict[str, Any], key: str | None = KEY) -> dict[str, Any]:
    return validate_upload(request_id, request, key, CALLER).to_dict()


def store_event(request_id: str, request: dict[str, Any], attempt: int = 0) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "upload": upload(request_id, request),
        "body": json.dumps(request),  # the client's JSON text
        "attempt": attempt,
    }


def claim_item(cloud: Cloud, key: str = KEY) -> dict[str, Any] | None:
    found = cloud.dynamodb.get_item(
        TableName=CLAIMS_TABLE,
        Key={"idempotencyKey": {"S": idempotency_id(CALLER, key)}},
        ConsistentRead=True,
    )
    item = found.get("Item")
    return {name: next(iter(value.values())) for name, value in item.items()} if item else None


def version_ids(cloud: Cloud, key: str = "uploads/PROD-001/test-file.txt") -> list[str]:
    listing = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    return [v["VersionId"] for v in listing.get("Versions", [])]


def metadata_items(cloud: Cloud) -> list[dict[str, Any]]:
    return list(cloud.dynamodb.scan(TableName=TABLE).get("Items", []))


def complete(cloud: Cloud, request_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """Store then record one request (the workflow's success path)."""
    event = store_event(request_id, request)
    stored = store.run(event, env=cloud.env)
    return record.run(
        {"requestId": request_id, "upload": event["upload"], "stored": stored}, env=cloud.env
    )


# --- the stored key and the fingerprint ---


def test_keys_are_scoped_per_caller_and_hashed() -> None:
    assert idempotency_id("caller-a", KEY) != idempotency_id("caller-b", KEY)
    assert idempotency_id("caller-a", KEY) == idempotency_id("caller-a", KEY)
    assert idempotency_id("", KEY) == hashlib.sha256(b"\norder-42").hexdigest()
    assert KEY not in idempotency_id("caller-a", KEY)


def test_fingerprint_ignores_key_order_and_spelling_but_not_content() -> None:
    first = json.loads('{"b": 1, "a": "x\\u00e9", "price": 1.50}')
    same = json.loads('{"price":1.5,"a":"x\u00e9","b":1}')
    assert fingerprint(first) == fingerprint(same)
    assert fingerprint(first) != fingerprint({**first, "b": 2})


def test_upload_carries_the_hashes_only_with_a_key() -> None:
    with_key = validate_upload("r", body(), KEY, CALLER)
    assert with_key.idempotencyId == idempotency_id(CALLER, KEY)
    assert with_key.fingerprint == fingerprint(body())
    without = validate_upload("r", body(), None, CALLER)
    assert (without.idempotencyId, without.fingerprint) == (None, None)


# --- store: claim, replay, conflict ---


def test_store_claims_the_key_before_storing(cloud: Cloud) -> None:
    before = int(time.time())
    receipt = store.run(store_event("req-1", body()), env=cloud.env)
    assert version_ids(cloud) == [receipt["versionId"]]
    item = claim_item(cloud)
    assert item is not None
    assert item["requestId"] == "req-1"
    assert item["status"] == "IN_PROGRESS"
    assert item["fingerprint"] == fingerprint(body())
    assert before + CLAIM_SECONDS <= int(item["expiresAt"]) <= int(time.time()) + CLAIM_SECONDS
    assert "receipt" not in item


def test_same_key_and_body_after_success_replays_the_first_body_and_stores_nothing(
    cloud: Cloud,
) -> None:
    first = complete(cloud, "req-1", body())
    versions = version_ids(cloud)
    items = metadata_items(cloud)

    result = store.run(store_event("req-2", body()), env=cloud.env)

    assert result == {"replay": True, "receipt": {**first, "requestId": "req-2"}}
    assert version_ids(cloud) == versions
    assert metadata_items(cloud) == items
    assert claim_item(cloud)["requestId"] == "req-1"  # type: ignore[index]


def test_a_replay_without_a_file_name_returns_the_first_requests_name(cloud: Cloud) -> None:
    request = body()
    del request["fileName"]  # the default name derives from the (first) request id
    first = complete(cloud, "req-1", request)
    result = store.run(store_event("req-2", request), env=cloud.env)
    assert result == {"replay": True, "receipt": {**first, "requestId": "req-2"}}
    assert "req-1" in first["fileName"]


def test_same_key_other_body_is_a_conflict_and_stores_nothing(cloud: Cloud, capsys) -> None:
    complete(cloud, "req-1", body())
    versions = version_ids(cloud)
    capsys.readouterr()

    with pytest.raises(IdempotencyConflict) as caught:
        store.run(store_event("req-2", body(b"another file")), env=cloud.env)

    assert caught.value.message == DIFFERENT_BODY_MESSAGE
    assert json.loads(str(caught.value)) == {"message": DIFFERENT_BODY_MESSAGE}
    assert version_ids(cloud) == versions
    assert claim_item(cloud)["status"] == "COMPLETED"  # type: ignore[index]
    assert metric_values(capsys.readouterr().out) == [
        ("Rejections", {"service": "upload", "reason": "IdempotencyConflict"}, 1.0)
    ]


def test_same_key_while_the_first_is_in_progress_is_a_conflict(cloud: Cloud) -> None:
    store.run(store_event("req-1", body()), env=cloud.env)  # claimed, not yet recorded
    versions = version_ids(cloud)
    with pytest.raises(IdempotencyConflict) as caught:
        store.run(store_event("req-2", body()), env=cloud.env)
    assert caught.value.message == IN_PROGRESS_MESSAGE
    assert version_ids(cloud) == versions
    # Another body against a claim in progress: a different-body conflict.
    with pytest.raises(IdempotencyConflict) as other:
        store.run(store_event("req-3", body(b"other")), env=cloud.env)
    assert other.value.message == DIFFERENT_BODY_MESSAGE


def test_another_caller_may_use_the_same_key(cloud: Cloud) -> None:
    complete(cloud, "req-1", body())
    event = store_event("req-2", body(b"other caller's file"))
    event["upload"] = validate_upload("req-2", body(b"other caller's file"), KEY, "other").to_dict()
    result = store.run(event, env=cloud.env)
    assert "replay" not in result
    assert len(version_ids(cloud)) == 2


def test_a_retried_store_reclaims_its_own_claim(cloud: Cloud) -> None:
    first = store.run(store_event("req-1", body()), env=cloud.env)
    # The first attempt's PUT went through, yet the attempt failed: the retry claims again and
    # leaves exactly one version of this request.
    retried = store.run(store_event("req-1", body(), attempt=1), env=cloud.env)
    assert version_ids(cloud) == [retried["versionId"]]
    assert retried["versionId"] != first["versionId"]
    assert claim_item(cloud)["requestId"] == "req-1"  # type: ignore[index]


def test_an_expired_claim_is_taken_over(cloud: Cloud) -> None:
    stale = claims.claim(
        cloud.dynamodb,
        table=CLAIMS_TABLE,
        idempotency_id=idempotency_id(CALLER, KEY),
        fingerprint=fingerprint(body()),
        request_id="req-dead",
        clock=lambda: time.time() - CLAIM_SECONDS - 1,
    )
    assert stale is None
    store.run(store_event("req-2", body(b"a new body after expiry")), env=cloud.env)
    assert claim_item(cloud)["requestId"] == "req-2"  # type: ignore[index]


def test_an_expired_completion_is_not_replayed(cloud: Cloud) -> None:
    complete(cloud, "req-1", body())
    later = time.time() + REPLAY_SECONDS + 1
    result = claims.claim(
        cloud.dynamodb,
        table=CLAIMS_TABLE,
        idempotency_id=idempotency_id(CALLER, KEY),
        fingerprint=fingerprint(body()),
        request_id="req-2",
        clock=lambda: later,
    )
    assert result is None
    assert claim_item(cloud)["status"] == "IN_PROGRESS"  # type: ignore[index]


def test_without_a_key_store_touches_no_claim(cloud: Cloud) -> None:
    event = store_event("req-1", body())
    event["upload"] = upload("req-1", body(), key=None)
    complete_upload(cloud, event, store.run(event, env=cloud.env))
    store.run({**event, "requestId": "req-2"}, env=cloud.env)
    assert len(version_ids(cloud)) == 2
    assert cloud.dynamodb.scan(TableName=CLAIMS_TABLE)["Items"] == []


def _stubbed_client() -> Any:
    return boto3.client(
        "dynamodb", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_the_held_claim_is_read_when_the_service_does_not_return_it() -> None:
    client = _stubbed_client()
    held = {
        "idempotencyKey": {"S": "id"},
        "fingerprint": {"S": "f" * 64},
        "requestId": {"S": "req-1"},
        "status": {"S": "COMPLETED"},
        "expiresAt": {"N": "9999999999"},
        "receipt": {"S": '{"message": "File uploaded successfully"}'},
    }
    with Stubber(client) as stubber:
        stubber.add_client_error("put_item", service_error_code="ConditionalCheckFailedException")
        stubber.add_response(
            "get_item",
            {"Item": held},
            {"TableName": "t", "Key": {"idempotencyKey": {"S": "id"}}, "ConsistentRead": True},
        )
        result = claims.claim(
            client, table="t", idempotency_id="id", fingerprint="f" * 64, request_id="req-2"
        )
    assert result == {"message": "File uploaded successfully"}


@pytest.mark.parametrize(
    ("code", "expected"),
    [("ProvisionedThroughputExceededException", TransientStorageError),
     ("AccessDeniedException", StorageError)],
)  # fmt: skip
def test_claim_errors_are_storage_errors(code: str, expected: type[Exception]) -> None:
    client = _stubbed_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("put_item", service_error_code=code)
        with pytest.raises(expected) as caught:
            claims.claim(client, table="t", idempotency_id="i", fingerprint="f", request_id="r")
    assert type(caught.value) is expected
    assert str(caught.value).startswith("Claiming the Idempotency-Key failed")


# --- record: metadata and completion in one transaction ---


def test_record_completes_the_claim_in_the_same_transaction_as_the_item(cloud: Cloud) -> None:
    before = int(time.time())
    success = complete(cloud, "req-1", body())
    item = claim_item(cloud)
    assert item is not None
    assert item["status"] == "COMPLETED"
    assert item["requestId"] == "req-1"
    assert json.loads(item["receipt"]) == success
    assert before + REPLAY_SECONDS <= int(item["expiresAt"]) <= time.time() + REPLAY_SECONDS
    [metadata] = metadata_items(cloud)
    assert metadata["versionId"] == {"S": success["versionId"]}


def test_record_writes_nothing_when_the_claim_is_no_longer_its_own(cloud: Cloud) -> None:
    event = store_event("req-1", body())
    stored = store.run(event, env=cloud.env)
    # The claim expired and another request took it over meanwhile.
    cloud.dynamodb.update_item(
        TableName=CLAIMS_TABLE,
        Key={"idempotencyKey": {"S": idempotency_id(CALLER, KEY)}},
        UpdateExpression="SET requestId = :other",
        ExpressionAttributeValues={":other": {"S": "req-2"}},
    )
    with pytest.raises(StorageError) as caught:
        record.run(
            {"requestId": "req-1", "upload": event["upload"], "stored": stored}, env=cloud.env
        )
    assert type(caught.value) is StorageError  # not retried: compensate runs
    assert metadata_items(cloud) == []
    assert claim_item(cloud)["status"] == "IN_PROGRESS"  # type: ignore[index]
    # One transaction: the request is not committed and still holds the item's lease.
    assert ledger_item(cloud, "request#req-1")["status"] == "PENDING"  # type: ignore[index]
    assert ledger_item(cloud, "item#PROD-001\nTest Product")["holder"] == "req-1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        (["None", "TransactionConflict"], TransientStorageError),
        (["ThrottlingError", "None"], TransientStorageError),
        (["None", "ConditionalCheckFailed"], StorageError),
        (["ValidationError", "None"], StorageError),
    ],
)
def test_a_cancelled_transaction_is_transient_only_for_conflicts_and_throttling(
    reasons: list[str], expected: type[Exception]
) -> None:
    error = botocore.exceptions.ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in reasons],
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "TransactWriteItems",
    )
    with pytest.raises(expected) as caught, aws.storage_errors("Recording the metadata"):
        raise error
    assert type(caught.value) is expected


# --- compensate: release ---


def compensate_event(request_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """Compensate after Record failed (Store had finished: the item's lease is released)."""
    return {
        "requestId": request_id,
        "productId": request["productId"],
        "productName": request["productName"],
        "s3Key": "uploads/PROD-001/test-file.txt",
        "idempotencyId": idempotency_id(CALLER, KEY),
        "failedState": "Record",
        "error": "StorageError",
    }


def test_compensate_releases_the_claim_so_the_client_may_retry(cloud: Cloud) -> None:
    store.run(store_event("req-1", body()), env=cloud.env)
    result = compensate.run(compensate_event("req-1", body()), env=cloud.env)
    assert len(result["deletedVersionIds"]) == 1
    assert version_ids(cloud) == []
    assert claim_item(cloud) is None
    retried = complete(cloud, "req-2", body())
    assert version_ids(cloud) == [retried["versionId"]]


def test_compensate_leaves_another_requests_claim_alone(cloud: Cloud) -> None:
    complete(cloud, "req-1", body())
    # req-2 failed before claiming (e.g. its claim was a conflict... or its Store failed first).
    compensate.run(compensate_event("req-2", body()), env=cloud.env)
    assert claim_item(cloud)["requestId"] == "req-1"  # type: ignore[index]
    assert len(version_ids(cloud)) == 1


def test_compensate_without_a_key_releases_nothing(cloud: Cloud) -> None:
    complete(cloud, "req-1", body())
    event = {**compensate_event("req-1", body()), "idempotencyId": None}
    compensate.run(event, env=cloud.env)
    assert claim_item(cloud)["status"] == "COMPLETED"  # type: ignore[index]


def test_a_failed_release_is_a_failed_compensation(cloud: Cloud, capsys, logs) -> None:
    store.run(store_event("req-1", body()), env=cloud.env)
    failing = _stubbed_client()
    with Stubber(failing) as stubber:
        stubber.add_client_error("delete_item", service_error_code="InternalServerError")
        with pytest.raises(CompensationFailed):
            _compensate(
                cloud,
                compensate.Claim(
                    dynamodb=failing, table=CLAIMS_TABLE, idempotency_id=idempotency_id(CALLER, KEY)
                ),
                attempt=TASK_RETRY.max_attempts,  # the last attempt: no retry left
            )
    assert version_ids(cloud) == []  # the versions are deleted all the same
    assert ("CompensationFailures", {"service": "upload"}, 1.0) in metric_values(
        capsys.readouterr().out
    )
    [line] = [line for line in logs() if line["level"] == "ERROR"]
    assert line["message"].startswith("CLAIM:")
    assert line["claim"] == {"idempotencyId": idempotency_id(CALLER, KEY)}


def test_a_throttled_release_is_retried_unreported_and_the_retry_releases(
    cloud: Cloud, capsys, logs
) -> None:
    """One throttle on the release must not leave the claim held: with a retry left, compensate
    raises TransientStorageError (the Compensate Retry matches it) and reports nothing; the retry
    finds the versions gone and releases the claim."""
    store.run(store_event("req-1", body()), env=cloud.env)
    claim = compensate.Claim(
        dynamodb=cloud.dynamodb, table=CLAIMS_TABLE, idempotency_id=idempotency_id(CALLER, KEY)
    )
    throttled = _stubbed_client()
    with Stubber(throttled) as stubber:
        stubber.add_client_error(
            "delete_item",
            service_error_code="ProvisionedThroughputExceededException",
            http_status_code=400,
        )
        with pytest.raises(TransientStorageError):
            _compensate(
                cloud,
                compensate.Claim(
                    dynamodb=throttled, table=CLAIMS_TABLE, idempotency_id=claim.idempotency_id
                ),
                attempt=0,
            )
    assert claim_item(cloud) is not None
    assert [line for line in logs() if line["level"] == "ERROR"] == []
    assert "CompensationFailures" not in capsys.readouterr().out
    result = _compensate(cloud, claim, attempt=1)
    assert result.deletedVersionIds == []  # the first attempt deleted them
    assert claim_item(cloud) is None
    assert version_ids(cloud) == []


def _compensate(cloud: Cloud, claim: compensate.Claim, *, attempt: int) -> Any:
    """Compensate request req-1's upload of the standard test file, releasing ``claim``."""
    return compensate.compensate(
        "req-1",
        "uploads/PROD-001/test-file.txt",
        None,
        s3=cloud.s3,
        bucket=BUCKET,
        env=cloud.env,
        claim=claim,
        attempt=attempt,
    )


# --- another upload of the same item in progress ---


def test_upload_in_progress_gives_back_the_claim_and_stores_nothing(cloud: Cloud, capsys) -> None:
    """While req-1 holds the item's lease (its Store began, its Record has not committed),
    another upload of the item is refused before its PUT: 409 UploadInProgress, its
    Idempotency-Key claim released so that the client may retry with the same key."""
    first = store_event("req-1", body())
    stored = store.run(first, env=cloud.env)
    versions = version_ids(cloud)
    other_key = "order-43"
    second = {
        **store_event("req-2", body(b"a second file")),
        "upload": upload("req-2", body(b"a second file"), key=other_key),
    }
    capsys.readouterr()

    with pytest.raises(UploadInProgress) as caught:
        store.run(second, env=cloud.env)

    assert json.loads(str(caught.value)) == {"message": UPLOAD_IN_PROGRESS_MESSAGE}
    assert version_ids(cloud) == versions  # nothing stored
    assert claim_item(cloud, other_key) is None  # given back
    assert claim_item(cloud)["requestId"] == "req-1"  # type: ignore[index]  # untouched
    assert ledger_item(cloud, "request#req-2") is None  # no intent either
    assert ledger_item(cloud, "item#PROD-001\nTest Product")["holder"] == "req-1"  # type: ignore[index]
    assert metric_values(capsys.readouterr().out) == [
        ("Rejections", {"service": "upload", "reason": "UploadInProgress"}, 1.0)
    ]
    # Once req-1 is done, the client's retry with the same key goes through.
    complete_upload(cloud, first, stored)
    retried = store.run({**second, "requestId": "req-3"}, env=cloud.env)
    assert "replay" not in retried
    assert claim_item(cloud, other_key)["requestId"] == "req-3"  # type: ignore[index]


def ledger_item(cloud: Cloud, pk: str) -> dict[str, Any] | None:
    found = cloud.dynamodb.get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True
    ).get("Item")
    return {name: next(iter(value.values())) for name, value in found.items()} if found else None
