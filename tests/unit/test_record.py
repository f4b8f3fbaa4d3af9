"""The record task against moto: exact Decimal price, the contract's success body."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast

import boto3
import pytest
from botocore.stub import Stubber

from tasks import compensate, record
from tasks.contract import ledger
from tasks.contract.errors import InvalidTaskInput, StorageError, TransientStorageError
from tasks.core import ledger as ledger_core
from tasks.core import rollback
from tasks.core.models import StoreReceipt, UploadMetadata, parse_payload

from .support import BUCKET, LEDGER_TABLE, REGION, TABLE, Cloud, begin_upload, metric_values

DATA = b"hello, upload test"
SHA = hashlib.sha256(DATA).hexdigest()


def upload(price: str = "99.99") -> dict[str, Any]:
    return {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": price,
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "size": 18,
        "sha256": SHA,
        "s3Key": "uploads/PROD-001/test-file.txt",
    }


STORED = {"bucket": BUCKET, "s3Key": "uploads/PROD-001/test-file.txt", "versionId": "v-123"}


def item(cloud: Cloud) -> dict[str, Any]:
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    response = table.get_item(Key={"productId": "PROD-001", "productName": "Test Product"})
    # The item's attributes; the internal prev* copies are tasks/core/rollback.py's business.
    return {k: v for k, v in response["Item"].items() if not k.startswith("prev")}


def run(cloud: Cloud, request_id: str, price: str = "99.99", **stored: str) -> dict[str, Any]:
    """Record an upload whose Store began (its intent and the item's lease)."""
    begin_upload(cloud, request_id)
    event = {"requestId": request_id, "upload": upload(price), "stored": {**STORED, **stored}}
    return record.run(event, env=cloud.env)


def test_record_stores_exact_decimal_and_returns_the_contract_body(cloud: Cloud, capsys) -> None:
    body = run(cloud, "req-1")
    timestamp = body["timestamp"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", timestamp)
    assert body == {
        "message": "File uploaded successfully",
        "requestId": "req-1",
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": "99.99",  # exact decimal text (the response template writes it as a number)
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "size": 18,
        "sha256": SHA,
        "s3Key": "uploads/PROD-001/test-file.txt",
        "versionId": "v-123",
        "timestamp": timestamp,
    }
    assert list(body) == [
        "message", "requestId", "productId", "productName", "price", "fileName",
        "contentType", "size", "sha256", "s3Key", "versionId", "timestamp",
    ]  # fmt: skip
    assert item(cloud) == {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": Decimal("99.99"),
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "size": Decimal(18),
        "sha256": SHA,
        "bucket": BUCKET,
        "s3Key": "uploads/PROD-001/test-file.txt",
        "versionId": "v-123",
        "requestId": "req-1",
        "uploadedAt": timestamp,
    }
    assert metric_values(capsys.readouterr().out) == [
        ("UploadsStored", {"service": "upload"}, 1.0),
        ("BytesStored", {"service": "upload"}, 18.0),
    ]


@pytest.mark.parametrize(
    ("price", "stored"),
    [("0", Decimal(0)), ("5", Decimal(5)), ("0.0000001", Decimal("1E-7")),
     ("999999999999.99", Decimal("999999999999.99")),
     ("1.0000000000000000001", Decimal("1.0000000000000000001")),
     ("99999999999.99999999", Decimal("99999999999.99999999"))],
)  # fmt: skip
def test_price_round_trips(cloud: Cloud, price: str, stored: Decimal) -> None:
    body = run(cloud, "r", price)
    assert body["price"] == price  # the exact text, no binary float on the way
    assert type(body["price"]) is str
    assert item(cloud)["price"] == stored
    assert str(item(cloud)["price"]) == str(stored)


def test_rerecord_points_at_the_newest_version(cloud: Cloud) -> None:
    run(cloud, "r1")
    run(cloud, "r2", versionId="v-456")
    assert (item(cloud)["versionId"], item(cloud)["requestId"]) == ("v-456", "r2")


def test_timestamp_is_read_once_and_formatted_in_utc_with_milliseconds() -> None:
    calls = []
    moment = datetime(2026, 11, 25, 23, 48, 54, 123987, tzinfo=timezone(timedelta(hours=1)))

    def clock() -> datetime:
        calls.append(1)
        return moment

    class Table:
        def __init__(self) -> None:
            self.transactions: list[list[dict[str, Any]]] = []

        def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> None:
            self.transactions.append(TransactItems)

    table = Table()
    body = record.record(
        "req-1",
        parse_payload(UploadMetadata, upload()),
        parse_payload(StoreReceipt, STORED),
        dynamodb=cast(Any, table),
        table_name=TABLE,
        ledger_table=LEDGER_TABLE,
        clock=clock,
    )
    assert calls == [1]
    assert body.timestamp == "2026-11-25T22:48:54.123Z"
    [transaction] = table.transactions
    # One transaction: the metadata item, the commit record, the lease's release.
    assert [next(iter(entry)) for entry in transaction] == ["Update", "Update", "Delete"]
    update = transaction[0]["Update"]
    assert update["TableName"] == TABLE
    assert {transaction[1]["Update"]["TableName"], transaction[2]["Delete"]["TableName"]} == {
        LEDGER_TABLE
    }
    # The commit record's expiry comes from the same reading of the clock.
    commit_values = transaction[1]["Update"]["ExpressionAttributeValues"]
    closed_seconds = ledger.CLOSED_INTENT_DAYS * 24 * 3600
    assert int(commit_values[":expiresAt"]["N"]) == int(moment.timestamp()) + closed_seconds
    values = {
        update["ExpressionAttributeNames"][f"#a{i}"]: update["ExpressionAttributeValues"][f":v{i}"]
        for i in range(len(rollback.ITEM_ATTRIBUTES))
    }
    assert values["uploadedAt"] == {"S": "2026-11-25T22:48:54.123Z"}
    assert values["price"] == {"N": "99.99"}
    assert record.utc_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.000Z"
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ProvisionedThroughputExceededException", 400, TransientStorageError),
        ("ThrottlingException", 400, TransientStorageError),
        ("RequestLimitExceeded", 400, TransientStorageError),
        ("InternalServerError", 500, TransientStorageError),
        ("ValidationException", 400, StorageError),
        ("ResourceNotFoundException", 400, StorageError),
        ("AccessDeniedException", 400, StorageError),
    ],
)
def test_dynamodb_errors_map_to_named_errors(
    code: str, status: int, expected: type[Exception]
) -> None:
    client = boto3.client(
        "dynamodb", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "transact_write_items",
            service_error_code=code,
            service_message="SDK TEXT",
            http_status_code=status,
        )
        with pytest.raises(expected) as caught:
            record.record(
                "req-1",
                parse_payload(UploadMetadata, upload()),
                parse_payload(StoreReceipt, STORED),
                dynamodb=client,
                table_name=TABLE,
                ledger_table=LEDGER_TABLE,
            )
    assert type(caught.value) is expected
    assert "SDK TEXT" not in str(caught.value)
    assert str(caught.value).startswith("Recording the metadata failed")


def test_mismatched_key_is_refused(cloud: Cloud) -> None:
    stored = {**STORED, "s3Key": "uploads/PROD-001/other.txt"}
    with pytest.raises(InvalidTaskInput):
        record.run({"requestId": "r", "upload": upload(), "stored": stored}, env=cloud.env)
    assert "Items" not in cloud.dynamodb.scan(TableName=TABLE) or (
        cloud.dynamodb.scan(TableName=TABLE)["Items"] == []
    )


# --- a late write after the compensation fenced the request ---


def ledger_item(cloud: Cloud, pk: str) -> dict[str, Any] | None:
    found = cloud.dynamodb.get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True
    ).get("Item")
    return dict(found) if found else None


def metadata_table_items(cloud: Cloud) -> list[dict[str, Any]]:
    return list(cloud.dynamodb.scan(TableName=TABLE).get("Items", []))


def test_a_commit_after_compensate_fenced_the_request_writes_nothing(cloud: Cloud) -> None:
    """Record timed out with its transaction still in flight; Compensate ran (fence, undo,
    release). The late transaction then arrives: refused, the item never appears."""
    begin_upload(cloud, "req-1")
    event = {"requestId": "req-1", "upload": upload(), "stored": STORED}
    compensate.run(
        {
            "requestId": "req-1",
            "productId": "PROD-001",
            "productName": "Test Product",
            "s3Key": STORED["s3Key"],
            "failedState": "Record",
            "error": "States.Timeout",
        },
        env=cloud.env,
    )
    intent_before = ledger_item(cloud, "request#req-1")

    with pytest.raises(StorageError) as caught:
        record.run(event, env=cloud.env)

    assert type(caught.value) is StorageError  # the refusal is final, not retried
    assert metadata_table_items(cloud) == []
    assert ledger_item(cloud, "request#req-1") == intent_before
    assert intent_before is not None
    assert intent_before["status"] == {"S": "ABORTED"}


def test_the_fence_alone_refuses_the_commit(cloud: Cloud) -> None:
    """Even while the request still holds the item's lease (the fence does not release it),
    a commit of a fenced request is refused, and the earlier item stays as it was."""
    run(cloud, "req-old", versionId="v-old")
    before = metadata_table_items(cloud)
    begin_upload(cloud, "req-1")
    entry = ledger_core.Upload(
        request_id="req-1",
        bucket=BUCKET,
        s3_key=STORED["s3Key"],
        product_id="PROD-001",
        product_name="Test Product",
        started_at=None,
    )
    ledger_core.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=int(time.time()))
    with pytest.raises(StorageError):
        record.run({"requestId": "req-1", "upload": upload(), "stored": STORED}, env=cloud.env)
    assert metadata_table_items(cloud) == before
    lease = ledger_item(cloud, "item#PROD-001\nTest Product")
    assert lease is not None
    assert lease["holder"] == {"S": "req-1"}  # the transaction's lease release did not apply
