"""Helpers shared by the task unit tests (constants, base64, EMF parsing)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
BUCKET = "upload-bucket-test"
TABLE = "upload-metadata-test"
CLAIMS_TABLE = "upload-idempotency-test"
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
