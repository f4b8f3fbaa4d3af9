"""End-to-end fixtures: local mode started once, in-process, on free ports.

Tests talk to it as clients do (HTTP to the local API) and inspect the emulated S3 and DynamoDB
with boto3 through the emulator endpoint. ``emulator.faults`` injects AWS-call failures into the
tasks' calls only; every test starts and ends without faults.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from local.emulator import Emulator
from tasks.contract import names


@pytest.fixture(autouse=True)
def _no_faults(emulator: Emulator) -> Iterator[None]:
    emulator.faults.clear()
    yield
    emulator.faults.clear()


@dataclass
class Upload:
    """A request body plus what the stored object must then look like."""

    body: dict[str, Any]
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        return f"uploads/{self.body['productId']}/{self.body['fileName']}"


def make_upload(data: bytes = b"Hello, local mode!", **fields: Any) -> Upload:
    body: dict[str, Any] = {
        "productId": f"PROD-{uuid.uuid4().hex[:12]}",
        "productName": "Test Product",
        "price": 99.99,
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "fileContent": base64.b64encode(data).decode(),
    }
    body.update(fields)
    return Upload(body, data)


class Client:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.s3 = emulator.client("s3")
        self.table = _table(emulator.aws_endpoint, emulator.table_name)
        self.bucket = emulator.bucket_name

    def post(self, body: Any = None, *, raw: bytes | None = None, **kwargs: Any) -> Any:
        if raw is not None:
            kwargs.setdefault("headers", {"Content-Type": "application/json"})
            return requests.post(self.emulator.api_url, data=raw, timeout=60, **kwargs)
        return requests.post(self.emulator.api_url, json=body, timeout=60, **kwargs)

    def versions(self, key_or_prefix: str) -> list[dict[str, Any]]:
        listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key_or_prefix)
        return list(listed.get("Versions", [])) + list(listed.get("DeleteMarkers", []))

    def items(self, product_id: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        result = self.table.query(KeyConditionExpression=Key("productId").eq(product_id))
        return list(result["Items"])

    def task_warnings(self, request_id: str) -> list[str]:
        """The tasks' WARNING and ERROR log lines about one request: why it failed."""
        logs = self.emulator.client("logs")
        lines = []
        for task in names.TASKS:
            group = self.emulator.function(task).log_group
            events = logs.filter_log_events(logGroupName=group, filterPattern=f'"{request_id}"')
            lines += [
                e["message"]
                for e in events["events"]
                if '"level":"WARNING"' in e["message"] or '"level":"ERROR"' in e["message"]
            ]
        return lines

    def object_bytes(self, key: str, version_id: str) -> bytes:
        data: bytes = self.s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)[
            "Body"
        ].read()
        return data


def _table(endpoint: str, name: str) -> Any:
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    ).Table(name)


@pytest.fixture
def client(emulator: Emulator) -> Client:
    return Client(emulator)


def put_part(part: dict[str, Any], data: bytes) -> requests.Response:
    """The client's PUT of a part's bytes to its presigned URL, with the headers it was given."""
    return requests.put(part["url"], data=data, headers=part["headers"], timeout=60)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error shape, ``{"error": {"code", "message", ["details"]}, "requestId"}``,
    with nothing internal in it."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "requestId"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert set(body["error"]) <= {"code", "message", "details"}
    assert isinstance(body["requestId"], str)
    assert body["requestId"]
    for leaked in ("Traceback", "arn:aws", "botocore", "Injected fault"):
        assert leaked not in response.text
    return body
