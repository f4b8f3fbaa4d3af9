"""The record task against moto: exact Decimal price, the contract's success body."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast

import boto3
import pytest
from botocore.stub import Stubber

from tasks import record
from tasks.contract.errors import InvalidTaskInput, StorageError, TransientStorageError
from tasks.core import rollback
from tasks.core.models import StoreReceipt, UploadMetadata, parse_payload

from .support import BUCKET, REGION, TABLE, Cloud, metric_values

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


def test_record_stores_exact_decimal_and_returns_the_contract_body(cloud: Cloud, capsys) -> None:
    body = record.run({"requestId": "req-1", "upload": upload(), "stored": STORED}, env=cloud.env)
    timestamp = body["timestamp"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", timestamp)
    assert body == {
        "message": "File uploaded successfully",
        "requestId": "req-1",
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": 99.99,
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
    ("price", "stored", "returned"),
    [("0", Decimal(0), 0), ("5", Decimal(5), 5), ("0.0000001", Decimal("1E-7"), 1e-7),
     ("999999999999.99", Decimal("999999999999.99"), 999999999999.99)],
)  # fmt: skip
def test_price_round_trips(cloud: Cloud, price: str, stored: Decimal, returned: float) -> None:
    body = record.run({"requestId": "r", "upload": upload(price), "stored": STORED}, env=cloud.env)
    assert body["price"] == returned
    assert type(body["price"]) is type(returned)
    assert item(cloud)["price"] == stored
    assert str(item(cloud)["price"]) == str(stored)


def test_rerecord_points_at_the_newest_version(cloud: Cloud) -> None:
    record.run({"requestId": "r1", "upload": upload(), "stored": STORED}, env=cloud.env)
    newer = {**STORED, "versionId": "v-456"}
    record.run({"requestId": "r2", "upload": upload(), "stored": newer}, env=cloud.env)
    assert (item(cloud)["versionId"], item(cloud)["requestId"]) == ("v-456", "r2")


def test_timestamp_is_read_once_and_formatted_in_utc_with_milliseconds() -> None:
    calls = []
    moment = datetime(2026, 11, 25, 23, 48, 54, 123987, tzinfo=timezone(timedelta(hours=1)))

    def clock() -> datetime:
        calls.append(1)
        return moment

    class Table:
        def __init__(self) -> None:
            self.items: list[dict[str, Any]] = []

        def update_item(self, **kwargs: Any) -> None:
            self.items.append(kwargs)

    table = Table()
    body = record.record(
        "req-1",
        parse_payload(UploadMetadata, upload()),
        parse_payload(StoreReceipt, STORED),
        dynamodb=cast(Any, table),
        table_name=TABLE,
        clock=clock,
    )
    assert calls == [1]
    assert body.timestamp == "2026-11-25T22:48:54.123Z"
    [update] = table.items
    assert update["TableName"] == TABLE
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
            "update_item",
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
