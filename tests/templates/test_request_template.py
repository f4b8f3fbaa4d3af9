"""The real request template (infra/templates/request.vtl) rendered as API Gateway would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.templates import STATE_MACHINE_ARN_PLACEHOLDER, request_template
from local.vtl import render

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Test"
REQUEST_ID = "c0ffee00-1234-4abc-8def-0123456789ab"
SECRET = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/execute-api/aws4_request"

NORMAL_BODY = (
    '{"productId": "PROD-001", "productName": "Test Product", "price": 99.99, '
    '"fileContent": "VGhpcyBpcyBhIHRlc3QgZmlsZS4=", "fileName": "test-file.txt", '
    '"contentType": "text/plain"}'
)
# ' " \ non-ASCII (BMP and astral), a \n escape, a \u escape, a slash, a DEL, exact number text.
TRICKY_BODY = (
    '{"productId": "P-1", "productName": "Joe\'s \\"best\\" \\\\ caf\u00e9 \U0001f600 '
    '\\n line \\u00e9 a/b \x7f", "price": 1.50, "fileContent": "AAE=", '
    '"fileName": "r\u00e9sum\u00e9 (v2).pdf"}'
)


def _render(body: str, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    rendered = render(
        request_template(ARN), body=body, headers=headers, context={"requestId": REQUEST_ID}
    )
    request = json.loads(rendered.text)
    return request, json.loads(request["input"])


def test_builds_the_start_sync_execution_request() -> None:
    request, execution_input = _render(NORMAL_BODY, {"Content-Type": "application/json"})

    assert request["stateMachineArn"] == ARN
    assert request["name"] == REQUEST_ID
    assert set(request) == {"stateMachineArn", "name", "input"}
    assert execution_input == {
        "requestId": REQUEST_ID,
        "idempotencyKey": None,
        "caller": "",
        "body": json.loads(NORMAL_BODY),
    }


def test_embeds_a_body_with_quotes_backslashes_and_non_ascii_exactly() -> None:
    request, execution_input = _render(TRICKY_BODY, {"Content-Type": "application/json"})

    assert execution_input["body"] == json.loads(TRICKY_BODY)
    assert execution_input["body"]["productName"] == (
        'Joe\'s "best" \\ caf\u00e9 \U0001f600 \n line \u00e9 a/b \x7f'
    )
    # The body's text reaches the execution unchanged (same number spelling, same escapes).
    assert f'"body": {TRICKY_BODY},' in request["input"]
    assert '"price": 1.50' in request["input"]


@pytest.mark.parametrize(
    ("header_name", "key"),
    [
        ("Idempotency-Key", "order-42"),
        ("idempotency-key", "k'\"\\/<>&%$#{}"),  # any case; every character JSON must escape
        ("IDEMPOTENCY-KEY", "caf\u00e9-\U0001f600"),
    ],
)
def test_passes_the_idempotency_key_as_a_string(header_name: str, key: str) -> None:
    _, execution_input = _render(NORMAL_BODY, {header_name: key, "Authorization": SECRET})

    assert execution_input["idempotencyKey"] == key
    assert execution_input["body"] == json.loads(NORMAL_BODY)


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": ""}])
def test_without_an_idempotency_key_it_is_null(headers: dict[str, str]) -> None:
    _, execution_input = _render(NORMAL_BODY, headers)

    assert execution_input["idempotencyKey"] is None


@pytest.mark.parametrize(
    ("identity", "caller"),
    [
        # auth=iam: the signed request's principal id.
        ({"caller": "AROAEXAMPLEID:session-1", "apiKeyId": ""}, "AROAEXAMPLEID:session-1"),
        # auth=apiKey: the API key's id.
        ({"caller": "", "apiKeyId": "abc123defg"}, "abc123defg"),
        ({"caller": "AIDAEXAMPLE", "apiKeyId": "abc123defg"}, "AIDAEXAMPLE"),
        ({}, ""),
        # Whatever it holds arrives as the same string (escaped twice, like the key).
        ({"caller": "a'\"\\b"}, "a'\"\\b"),
    ],
)
def test_passes_the_caller_that_scopes_the_idempotency_key(
    identity: dict[str, str], caller: str
) -> None:
    rendered = render(
        request_template(ARN),
        body=NORMAL_BODY,
        headers={"Idempotency-Key": "k-1"},
        context={"requestId": REQUEST_ID, "identity": identity},
    )
    execution_input = json.loads(json.loads(rendered.text)["input"])

    assert execution_input["caller"] == caller
    assert execution_input["idempotencyKey"] == "k-1"


def test_a_query_parameter_cannot_pose_as_the_idempotency_key() -> None:
    rendered = render(
        request_template(ARN),
        body=NORMAL_BODY,
        headers={},
        query={"Idempotency-Key": "from-the-query"},
        context={"requestId": REQUEST_ID},
    )

    assert json.loads(json.loads(rendered.text)["input"])["idempotencyKey"] is None


def test_never_copies_authorization_or_other_headers() -> None:
    headers = {
        "Authorization": SECRET,
        "X-Amz-Security-Token": "session-token-value",
        "x-api-key": "api-key-value",
        "Idempotency-Key": "k-1",
    }
    rendered = render(
        request_template(ARN), body=NORMAL_BODY, headers=headers, context={"requestId": REQUEST_ID}
    )

    for secret in (SECRET, "AKIDEXAMPLE", "session-token-value", "api-key-value"):
        assert secret not in rendered.text
    execution_input = json.loads(json.loads(rendered.text)["input"])
    assert set(execution_input) == {"requestId", "idempotencyKey", "caller", "body"}


def test_a_body_that_is_not_json_makes_an_invalid_input() -> None:
    # Step Functions answers InvalidExecutionInput, which the response template maps to 400.
    request, _ = _render(NORMAL_BODY, {})
    for not_json in ("", "   ", "{", "productId=1", "{'a': 1}"):
        rendered = render(
            request_template(ARN), body=not_json, headers={}, context={"requestId": REQUEST_ID}
        )
        outer = json.loads(rendered.text)  # the request itself stays valid JSON
        assert outer["name"] == request["name"]
        with pytest.raises(json.JSONDecodeError):
            json.loads(outer["input"])


def test_trusted_keys_follow_the_body() -> None:
    # Should a body that is not one JSON value ever pass the edge, the keys it smuggles in come
    # before ours: a parser keeping the last duplicate keeps the real request id.
    smuggling = '{"productId": "P"}, "requestId": "forged", "idempotencyKey": "forged"'
    rendered = render(
        request_template(ARN), body=smuggling, headers={}, context={"requestId": REQUEST_ID}
    )
    execution_input = json.loads(json.loads(rendered.text)["input"])

    assert execution_input["requestId"] == REQUEST_ID
    assert execution_input["idempotencyKey"] is None


def test_the_arn_is_substituted_verbatim_even_as_a_cdk_token() -> None:
    token = "${Token[TOKEN.123]}"
    template = request_template(token)

    assert STATE_MACHINE_ARN_PLACEHOLDER not in template
    assert f'"stateMachineArn": "{token}"' in template
    with pytest.raises(ValueError, match="not a state machine ARN"):
        request_template('arn"injected')
