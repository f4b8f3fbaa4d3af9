"""Real requests through local mode for the operators' CLI to read back."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.emulator import Emulator

PRODUCT_NAME = "Test Product"


@pytest.fixture(scope="module")
def uploads(emulator: Emulator) -> Iterator[dict[str, str]]:
    """Request ids of: a success (``ok``), a validation failure by the validate task (``bad``),
    a compensation (``compensated``), all of one ``product``; what they stored is deleted
    afterwards."""
    product = f"PROD-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "productId": product,
        "productName": PRODUCT_NAME,
        "price": 99.99,
        "fileName": "test-file.txt",
        "fileContent": base64.b64encode(b"Hello, operators!").decode(),
    }
    try:
        ok = requests.post(emulator.api_url, json=body, timeout=60)
        bad = requests.post(emulator.api_url, json={**body, "fileContent": "!!!!"}, timeout=60)
        emulator.faults.add("dynamodb", "TransactWriteItems", task="record")
        try:
            compensated = requests.post(emulator.api_url, json=body, timeout=60)
        finally:
            emulator.faults.clear()
        assert [ok.status_code, bad.status_code, compensated.status_code] == [200, 400, 500]
        yield {
            "product": product,
            "ok": ok.json()["requestId"],
            "bad": bad.json()["requestId"],
            "compensated": compensated.json()["requestId"],
        }
    finally:
        _delete_uploads(emulator, product)


def _delete_uploads(emulator: Emulator, product: str) -> None:
    s3 = emulator.client("s3")
    listed = s3.list_object_versions(Bucket=emulator.bucket_name, Prefix=f"uploads/{product}/")
    for version in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        s3.delete_object(
            Bucket=emulator.bucket_name, Key=version["Key"], VersionId=version["VersionId"]
        )
    emulator.client("dynamodb").delete_item(
        TableName=emulator.table_name,
        Key={"productId": {"S": product}, "productName": {"S": PRODUCT_NAME}},
    )
