"""The validate handler: payload in, UploadMetadata out, rejections logged and counted."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasks import validate
from tasks.contract.errors import InvalidTaskInput, PayloadTooLarge, ValidationError
from tasks.contract.limits import MAX_FILE_BYTES

from .support import b64, metric_values

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV = {"POWERTOOLS_SERVICE_NAME": "upload", "POWERTOOLS_METRICS_NAMESPACE": "UploadService"}
SECRET_CONTENT = b"SECRET-FILE-BYTES-" * 4


@dataclass
class FakeLambdaContext:
    function_name: str = "validate"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:validate"
    aws_request_id: str = "lambda-request-1"


def event(**body_overrides: Any) -> dict[str, Any]:
    body = {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": 99.99,
        "fileContent": b64(SECRET_CONTENT),
        "fileName": "test-file.txt",
        **body_overrides,
    }
    # The client's JSON text, as the request template passes it.
    return {"requestId": "req-1", "idempotencyKey": None, "body": json.dumps(body)}


def test_run_returns_upload_metadata_and_logs_without_content(logs, capsys) -> None:
    result = validate.run(event(), env=ENV)
    assert result == {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": "99.99",
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "size": len(SECRET_CONTENT),
        "sha256": hashlib.sha256(SECRET_CONTENT).hexdigest(),
        "s3Key": "uploads/PROD-001/test-file.txt",
        # Always present (Compensate reads $.upload.idempotencyId): null without the header.
        "idempotencyId": None,
        "fingerprint": None,
        # Always present (Compensate reads $.upload.sessionId): null for an inline file.
        "sessionId": None,
    }
    lines = logs()
    assert [(line["message"], line["correlation_id"], line["task"]) for line in lines] == [
        ("Request valid", "req-1", "validate")
    ]
    stdout = capsys.readouterr().out
    assert b64(SECRET_CONTENT) not in json.dumps(lines) + stdout
    assert metric_values(stdout) == []


@pytest.mark.parametrize(
    ("overrides", "error", "reason"),
    [
        ({"price": "5"}, ValidationError, "ValidationError"),
        ({"fileContent": b64(b"x" * (MAX_FILE_BYTES + 1))}, PayloadTooLarge, "PayloadTooLarge"),
    ],
)
def test_rejection_is_logged_and_counted_by_reason(
    overrides: dict[str, Any], error: type[Exception], reason: str, logs, capsys
) -> None:
    with pytest.raises(error):
        validate.run(event(**overrides), env=ENV)
    assert metric_values(capsys.readouterr().out) == [
        ("Rejections", {"service": "upload", "reason": reason}, 1.0)
    ]
    [line] = logs()
    assert (line["level"], line["message"], line["reason"], line["requestId"]) == (
        "INFO",
        "Request rejected",
        reason,
        "req-1",
    )
    assert line["productId"] == "PROD-001"
    assert b64(SECRET_CONTENT) not in json.dumps(line)


@pytest.mark.parametrize(
    "body",
    [
        {"productId": "bad id with spaces", "fileContent": "!!!!"},
        {"productId": 42, "fileContent": "!!!!"},
        {"productId": ["PROD-001"], "fileContent": "!!!!"},
        {"fileContent": "!!!!"},
        "PROD-001",
    ],
)
def test_rejection_logs_no_product_id_unless_it_looks_valid(body: object, logs) -> None:
    with pytest.raises(ValidationError):
        validate.run(
            {"requestId": "req-1", "idempotencyKey": None, "body": json.dumps(body)}, env=ENV
        )
    [line] = logs()
    assert line["message"] == "Request rejected"
    assert "productId" not in line
    assert "!!!!" not in json.dumps(line)


def test_error_name_and_message_are_what_the_state_machine_reads() -> None:
    with pytest.raises(ValidationError) as caught:
        validate.run(event(price=True), env=ENV)
    assert type(caught.value).__name__ == "ValidationError"
    assert json.loads(str(caught.value)) == {
        "message": "The request body is invalid.",
        "details": [{"field": "price", "message": "must be a JSON number"}],
    }


@pytest.mark.parametrize(
    ("bad_event", "path"),
    [
        ({"idempotencyKey": None, "body": "{}"}, "requestId"),
        ({"requestId": "", "body": "{}"}, "requestId"),
        ({"requestId": 5, "body": "{}"}, "requestId"),
        # The request template always passes the body as JSON text: anything else is wiring.
        ({"requestId": "req-1", "idempotencyKey": None}, "body"),
        ({"requestId": "req-1", "body": {"productId": "PROD-001"}}, "body"),
    ],
)
def test_malformed_event_is_an_internal_error_not_a_client_error(bad_event: Any, path: str) -> None:
    with pytest.raises(InvalidTaskInput) as caught:
        validate.run(bad_event, env=ENV)
    assert str(caught.value) == f"The task's input does not match ValidateEvent: {path}"


@pytest.mark.parametrize("text", ["", "{", "{'productId': 1}", '{"price": NaN}', "[1,]"])
def test_a_body_that_is_not_json_is_a_validation_error(text: str, capsys) -> None:
    with pytest.raises(ValidationError) as caught:
        validate.run({"requestId": "req-1", "idempotencyKey": None, "body": text}, env=ENV)
    assert caught.value.message == "The request body is not valid JSON."
    assert [(d.field, d.message) for d in caught.value.details] == [("body", "is not valid JSON")]
    assert metric_values(capsys.readouterr().out) == [
        ("Rejections", {"service": "upload", "reason": "ValidationError"}, 1.0)
    ]


def test_a_body_that_is_not_an_object_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        validate.run({"requestId": "req-1", "idempotencyKey": None, "body": "null"}, env=ENV)
    assert caught.value.message == "The request body must be a JSON object."


def test_the_price_keeps_every_digit_the_client_sent() -> None:
    """The body is parsed with every number an exact decimal: a binary float would round
    1.0000000000000000001 to 1.0."""
    text = json.dumps({**json.loads(event()["body"]), "price": 0}).replace(
        '"price": 0', '"price": 1.0000000000000000001'
    )
    result = validate.run({"requestId": "req-1", "idempotencyKey": None, "body": text}, env=ENV)
    assert result["price"] == "1.0000000000000000001"


def test_lambda_handler_never_logs_the_event(logs, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    result = validate.handler(event(), FakeLambdaContext())
    assert result["size"] == len(SECRET_CONTENT)
    lines = logs()
    assert [line["message"] for line in lines] == ["Request valid"]
    assert lines[0]["function_request_id"] == "lambda-request-1"
    assert lines[0]["correlation_id"] == "req-1"
    assert b64(SECRET_CONTENT) not in json.dumps(lines) + capsys.readouterr().out


def test_concurrent_runs_keep_their_own_correlation_id(logs) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(index: int) -> None:
        request = event(productId=f"P{index}")
        request["requestId"] = f"req-{index}"
        validate.run(request, env=ENV)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(64)))
    lines = logs()
    assert len(lines) == 64
    for line in lines:
        index = line["productId"][1:]
        assert (line["correlation_id"], line["requestId"]) == (f"req-{index}", f"req-{index}")
