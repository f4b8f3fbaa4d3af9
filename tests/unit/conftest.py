"""Fixtures for the task unit tests: moto-backed S3 (versioned, KMS) and DynamoDB, log capture."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tasks.contract import ledger, names
from tasks.core import aws, deadline
from tasks.core.observability import logger

from .support import (
    BUCKET,
    CLAIMS_TABLE,
    CREDENTIALS,
    LEDGER_TABLE,
    REGION,
    TABLE,
    Cloud,
    versioned_bucket_and_key,
)

# The tasks' SDK deadlines and timeouts, times this (local mode's cap is deadline.MAX_SCALE).
UNIT_TEST_TIME_SCALE = 100.0


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    aws.clear_clients()
    yield
    aws.clear_clients()


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """A versioned, KMS-encrypted bucket, the metadata, idempotency and ledger tables, in moto."""
    monkeypatch.setattr(deadline, "MAX_SCALE", UNIT_TEST_TIME_SCALE)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        key_arn = versioned_bucket_and_key(s3, boto3.client("kms", region_name=REGION))
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "productId", "KeyType": "HASH"},
                {"AttributeName": "productName", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "productId", "AttributeType": "S"},
                {"AttributeName": "productName", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName=CLAIMS_TABLE,
            KeySchema=[{"AttributeName": "idempotencyKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "idempotencyKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=CLAIMS_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
        )
        dynamodb.create_table(
            TableName=LEDGER_TABLE, BillingMode="PAY_PER_REQUEST", **ledger.table_schema()
        )
        dynamodb.update_time_to_live(
            TableName=LEDGER_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ledger.EXPIRES_AT},
        )
        env = {
            "AWS_REGION": REGION,
            **CREDENTIALS,
            "UPLOAD_BUCKET_NAME": BUCKET,
            "UPLOAD_KEY_ARN": key_arn,
            "METADATA_TABLE_NAME": TABLE,
            "IDEMPOTENCY_TABLE_NAME": CLAIMS_TABLE,
            "LEDGER_TABLE_NAME": LEDGER_TABLE,
            "POWERTOOLS_SERVICE_NAME": "upload",
            "POWERTOOLS_METRICS_NAMESPACE": "UploadService",
            # moto runs in this process, as fast as the test machine's load lets it: stretch the
            # tasks' SDK deadlines far beyond local mode's cap, so that only a test that sets a
            # deadline of its own meets one (tests/unit/test_aws.py tests the deadline).
            names.SDK_TIMEOUT_SCALE: str(UNIT_TEST_TIME_SCALE),
        }
        yield Cloud(env=env, s3=s3, dynamodb=dynamodb, key_arn=key_arn)


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The task logger's JSON lines written during the test."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    finally:
        handler.setStream(previous)
