"""The contract oracle: what the API promises a client, checked from outside (docs/api.md).

A black box: it reads only a response (status, headers, body) and what the request sent, never
the service's code. The one thing it takes from the project is the contract's own table of error
codes per status (tasks.contract.errors), which docs/api.md prints for clients too.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from decimal import Decimal
from typing import Any, Final

import requests

from tasks.contract.errors import codes_by_status

SUCCESS_MESSAGE: Final = "File uploaded successfully"
# The 200 body's keys, and the error code each status carries.
SUCCESS_FIELDS: Final = frozenset(
    {
        "message",
        "requestId",
        "productId",
        "productName",
        "price",
        "fileName",
        "contentType",
        "size",
        "sha256",
        "s3Key",
        "versionId",
        "timestamp",
    }
)
ERROR_CODES_BY_STATUS: Final = codes_by_status()
CONTRACT_STATUSES: Final = frozenset({200, *ERROR_CODES_BY_STATUS})
# What a response must never contain: a stack trace, SDK text, a Lambda cause, an ARN.
LEAK_MARKERS: Final = ("Traceback", 'File "', "arn:aws", "botocore", "Injected fault")
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def contract_problems(response: requests.Response, *, replay: bool = False) -> list[str]:
    """Everything about one response that the contract does not allow (empty: conforms).

    ``replay``: the response repeats an earlier request's result (same Idempotency-Key and body),
    whose ``requestId`` may be the first request's rather than this one's.
    """
    status = response.status_code
    problems: list[str] = []
    if status not in CONTRACT_STATUSES:
        problems.append(f"status {status} is not a contract status")
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        problems.append(f"Content-Type is {response.headers.get('Content-Type')!r}")
    problems.extend(f"leaks {marker!r}" for marker in LEAK_MARKERS if marker in response.text)
    try:
        body = response.json()
    except ValueError:
        return [*problems, "body is not JSON"]
    if not isinstance(body, dict):
        return [*problems, "body is not a JSON object"]
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        problems.append("requestId missing")
    elif not replay and response.headers.get("x-amzn-RequestId", request_id) != request_id:
        problems.append("requestId differs from the x-amzn-RequestId header")
    if status == 200:
        problems.extend(_success_problems(body))
    else:
        problems.extend(_error_problems(status, body))
    return problems


def _success_problems(body: dict[str, Any]) -> list[str]:
    if set(body) != SUCCESS_FIELDS:
        return [f"200 body keys {sorted(body)} != {sorted(SUCCESS_FIELDS)}"]
    problems = []
    if body["message"] != SUCCESS_MESSAGE:
        problems.append(f"message {body['message']!r}")
    for name in ("productId", "productName", "fileName", "contentType", "s3Key", "versionId"):
        if not isinstance(body[name], str) or not body[name]:
            problems.append(f"{name} is not a non-empty string")
    price = body["price"]
    if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
        problems.append(f"price {price!r} is not a finite JSON number")
    size = body["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        problems.append(f"size {size!r}")
    if not isinstance(body["sha256"], str) or not _SHA256_RE.match(body["sha256"]):
        problems.append(f"sha256 {body['sha256']!r}")
    if body["s3Key"] != f"uploads/{body['productId']}/{body['fileName']}":
        problems.append(f"s3Key {body['s3Key']!r} is not uploads/<productId>/<fileName>")
    if not isinstance(body["timestamp"], str) or not _TIMESTAMP_RE.match(body["timestamp"]):
        problems.append(f"timestamp {body['timestamp']!r}")
    return problems


def _error_problems(status: int, body: dict[str, Any]) -> list[str]:
    if set(body) != {"error", "requestId"}:
        return [f"error body keys {sorted(body)} != ['error', 'requestId']"]
    error = body["error"]
    allowed = {"code", "message", "details"}
    if not isinstance(error, dict) or not {"code", "message"} <= set(error) <= allowed:
        return [f"error object {error!r} is not {{code, message[, details]}}"]
    problems = []
    expected = ERROR_CODES_BY_STATUS.get(status, frozenset())
    if error["code"] not in expected:
        problems.append(f"status {status} carries code {error['code']!r}, not {sorted(expected)}")
    if not isinstance(error["message"], str) or not error["message"]:
        problems.append("error.message is not a non-empty string")
    details = error.get("details")
    if "details" in error and (
        not isinstance(details, list)
        or not all(
            isinstance(d, dict)
            and set(d) == {"field", "message"}
            and all(isinstance(v, str) for v in d.values())
            for d in details
        )
    ):
        problems.append(f"details {details!r} is not a list of {{field, message}}")
    return problems


def echo_problems(sent: dict[str, Any], data: bytes, body: dict[str, Any]) -> list[str]:
    """A 200 body against the request that produced it."""
    problems = []
    for name in ("productId", "productName", "price", "fileName", "contentType"):
        # An optional field sent as null counts as absent: the service fills in its default.
        if sent.get(name) is not None and body.get(name) != sent[name]:
            problems.append(f"{name} {body.get(name)!r} != sent {sent[name]!r}")
    if body.get("size") != len(data):
        problems.append(f"size {body.get('size')!r} != {len(data)}")
    if body.get("sha256") != hashlib.sha256(data).hexdigest():
        problems.append("sha256 is not the hash of the sent bytes")
    return problems


def exact_price(sent_price: Any) -> Decimal:
    """The number as the client wrote it in JSON (what DynamoDB must hold)."""
    return Decimal(json.dumps(sent_price))
