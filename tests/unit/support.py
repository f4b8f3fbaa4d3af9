"""Helpers shared by the task unit tests (constants, base64, EMF parsing, ledger set-up)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
BUCKET = "upload-bucket-test"
TABLE = "upload-metadata-test"
CLAIMS_TABLE = "upload-idempotency-test"
LEDGER_TABLE = "upload-ledger-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Cloud:
    env: dict[str, str]
    s3: Any
    dynamodb: Any
    key_arn: str


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    """The EMF metric documents printed to stdout."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]


def metric_values(stdout: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, dimensions, value) for every EMF metric printed, in order."""
    found = []
    for document in emf_documents(stdout):
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "UploadService"
        dimensions = {name: document[name] for name in directive["Dimensions"][0]}
        for metric in directive["Metrics"]:
            values = document[metric["Name"]]
            value = values[0] if isinstance(values, list) else values
            found.append((metric["Name"], dimensions, value))
    return found


def store_event(request_id: str, data: bytes, file_name: str = "test-file.txt") -> dict[str, Any]:
    """Store's event for a valid upload of ``data`` (what Validate hands on)."""
    from tasks.core.validation import parse_body, validate_upload

    text = json.dumps(
        {
            "productId": "PROD-001",
            "productName": "Test Product",
            "price": 1,
            "fileContent": b64(data),
            "fileName": file_name,
        }
    )
    upload = validate_upload(request_id, parse_body(text))
    return {"requestId": request_id, "upload": upload.to_dict(), "body": text}


def put(
    cloud: Cloud,
    data: bytes,
    request_id: str,
    file_name: str = "test-file.txt",
    *,
    complete: bool = False,
) -> str:
    """Store ``data`` through the store task; returns the new version id. ``complete``: the
    upload then succeeds (Record commits it and releases the item's lease)."""
    from tasks import store

    event = store_event(request_id, data, file_name)
    stored = store.run(event, env=cloud.env)
    if complete:
        complete_upload(cloud, event, stored)
    return str(stored["versionId"])


def complete_upload(cloud: Cloud, event: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """Record what Store ``stored`` for the Store ``event``: the upload succeeds, committing its
    intent and releasing the item's lease, so that another upload of the item may begin."""
    from tasks import record  # the tasks' runtime libraries: only for the tests that use them

    return record.run(
        {"requestId": event["requestId"], "upload": event["upload"], "stored": stored},
        env=cloud.env,
    )


def begin_upload(
    cloud: Cloud,
    request_id: str,
    *,
    product_id: str = "PROD-001",
    product_name: str = "Test Product",
    s3_key: str = "uploads/PROD-001/test-file.txt",
) -> None:
    """Store's ledger transaction for ``request_id`` without its PUT (the request's intent,
    PENDING, and the item's lease): what Record's commit requires of a request that stored."""
    from tasks import store
    from tasks.core import ledger

    store.begin_upload(
        ledger.Upload(
            request_id=request_id,
            bucket=BUCKET,
            s3_key=s3_key,
            product_id=product_id,
            product_name=product_name,
            started_at=None,
        ),
        dynamodb=cloud.dynamodb,
        table=LEDGER_TABLE,
        attempt=0,
    )


def versioned_bucket_and_key(s3: Any, kms: Any) -> str:
    """A versioned bucket (BUCKET) and a KMS key for it, in moto: the key's ARN."""
    key_arn: str = kms.create_key(Description="upload bucket key")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return key_arn
