"""Record's reversible metadata write and compensate's undo of it (tasks.core.rollback).

The defect: Record's write landed, then the task failed (a timeout after the write, a lost
response); Compensate deleted the S3 version but the item stayed, pointing at it. Now the write
keeps the previous attributes in ``prev*`` and Compensate restores them, or deletes a first-time
item, only while the item is still this request's.
"""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest

from tasks import compensate, record
from tasks.contract.errors import CompensationFailed
from tasks.contract.timing import TASK_RETRY
from tasks.core import rollback

from .support import BUCKET, REGION, TABLE, Cloud, begin_upload

KEY = "uploads/PROD-001/test-file.txt"
VISIBLE = {"productId", "productName", *rollback.ITEM_ATTRIBUTES}


def upload(data: bytes, price: str = "1") -> dict[str, Any]:
    return {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": price,
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "s3Key": KEY,
    }


def record_event(request_id: str, data: bytes, version_id: str, price: str = "1") -> dict[str, Any]:
    return {
        "requestId": request_id,
        "upload": upload(data, price),
        "stored": {"bucket": BUCKET, "s3Key": KEY, "versionId": version_id},
    }


def recorded(cloud: Cloud, event: dict[str, Any]) -> dict[str, Any]:
    """Run Record for a request whose Store began (its intent and the item's lease)."""
    begin_upload(cloud, event["requestId"])
    return record.run(event, env=cloud.env)


def compensate_event(request_id: str, attempt: int = 0) -> dict[str, Any]:
    """Compensate after Record failed (e.g. it timed out after its write landed)."""
    return {
        "requestId": request_id,
        "productId": "PROD-001",
        "productName": "Test Product",
        "s3Key": KEY,
        "startedAt": None,
        "attempt": attempt,
        "failedState": "Record",
        "error": "States.Timeout",
    }


def raw_item(cloud: Cloud) -> dict[str, Any] | None:
    item = cloud.dynamodb.get_item(
        TableName=TABLE,
        Key={"productId": {"S": "PROD-001"}, "productName": {"S": "Test Product"}},
        ConsistentRead=True,
    ).get("Item")
    return dict(item) if item else None


def visible(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in item.items() if k in VISIBLE} if item else None


def test_the_write_keeps_the_previous_attributes_and_a_first_write_marks_none(
    cloud: Cloud,
) -> None:
    recorded(cloud, record_event("req-1", b"one", "v-1"))
    first = raw_item(cloud)
    assert first is not None
    assert {first[rollback.previous_name(a)]["NULL"] for a in rollback.ITEM_ATTRIBUTES} == {True}
    recorded(cloud, record_event("req-2", b"two", "v-2", price="2.5"))
    second = raw_item(cloud)
    assert second is not None
    for attribute in rollback.ITEM_ATTRIBUTES:
        assert second[rollback.previous_name(attribute)] == first[attribute], attribute
    assert (second["versionId"], second["requestId"], second["price"]) == (
        {"S": "v-2"},
        {"S": "req-2"},
        {"N": "2.5"},
    )


def test_compensate_restores_the_earlier_item_exactly(cloud: Cloud) -> None:
    recorded(cloud, record_event("req-1", b"one", "v-1"))
    before = visible(raw_item(cloud))
    # req-2's write lands, then its task fails (e.g. a timeout after the write).
    recorded(cloud, record_event("req-2", b"two", "v-2", price="2.5"))
    compensate.run(compensate_event("req-2"), env=cloud.env)
    after = raw_item(cloud)
    assert visible(after) == before
    assert set(after or {}) == VISIBLE  # the internal prev* attributes are gone
    # Idempotent: a retry of the compensation changes nothing more.
    compensate.run(compensate_event("req-2", attempt=TASK_RETRY.max_attempts), env=cloud.env)
    assert raw_item(cloud) == after


def test_compensate_deletes_a_first_time_item(cloud: Cloud, logs) -> None:
    recorded(cloud, record_event("req-1", b"one", "v-1"))
    compensate.run(compensate_event("req-1"), env=cloud.env)
    assert raw_item(cloud) is None
    [done] = [line for line in logs() if line["message"] == "Compensated"]
    assert done["metadataItem"] == "deleted"


def test_compensate_of_a_write_that_never_landed_changes_nothing(cloud: Cloud) -> None:
    recorded(cloud, record_event("req-1", b"one", "v-1"))
    before = raw_item(cloud)
    compensate.run(compensate_event("req-2"), env=cloud.env)  # req-2's Record failed before
    assert raw_item(cloud) == before
    compensate.run(compensate_event("req-3"), env=cloud.env)
    assert raw_item(cloud) == before


def test_compensate_leaves_a_later_uploads_item_alone(cloud: Cloud, logs) -> None:
    recorded(cloud, record_event("req-1", b"one", "v-1"))
    recorded(cloud, record_event("req-2", b"two", "v-2"))  # then req-2 fails...
    recorded(cloud, record_event("req-3", b"three", "v-3"))  # ...after req-3 wrote
    before = raw_item(cloud)
    compensate.run(compensate_event("req-2"), env=cloud.env)
    assert raw_item(cloud) == before
    # The one case a single level of prev* cannot undo is reported (tasks.core.rollback).
    assert any(line["message"].startswith("METADATA:") for line in logs())


def test_a_retried_record_whose_write_landed_keeps_the_previous_attributes(cloud: Cloud) -> None:
    """A Record retry (or an SDK retry after a lost response) must not copy its own values over
    the previous upload's: the failed condition means "already written", and the body carries
    the first write's timestamp."""
    recorded(cloud, record_event("req-1", b"one", "v-1"))
    before = visible(raw_item(cloud))
    first = recorded(cloud, record_event("req-2", b"two", "v-2"))
    again = record.run(record_event("req-2", b"two", "v-2"), env=cloud.env)  # Record's retry
    assert again == first
    compensate.run(compensate_event("req-2"), env=cloud.env)
    assert visible(raw_item(cloud)) == before


def test_a_failed_restore_is_reported_on_the_last_attempt(cloud: Cloud, logs, capsys) -> None:
    from botocore.stub import Stubber

    recorded(cloud, record_event("req-1", b"one", "v-1"))
    failing = boto3.client(
        "dynamodb", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(failing) as stubber:
        stubber.add_client_error("get_item", service_error_code="AccessDeniedException")
        with pytest.raises(CompensationFailed):
            compensate.compensate(
                "req-1",
                KEY,
                None,
                s3=cloud.s3,
                bucket=BUCKET,
                env=cloud.env,
                metadata=compensate.Metadata(
                    dynamodb=failing,
                    table=TABLE,
                    product_id="PROD-001",
                    product_name="Test Product",
                ),
            )
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["message"].startswith("METADATA:")
    assert error["metadata"] == {"productId": "PROD-001", "productName": "Test Product"}
    assert "CompensationFailures" in capsys.readouterr().out
