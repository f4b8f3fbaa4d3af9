"""The real request template (infra/templates/request.vtl) rendered as API Gateway would.

The execution input carries the client's body as JSON *text* (a string), exactly as sent: validate
parses it, every number an exact decimal."""

from __future__ import annotations

import json
from typing import Any

import pytest

import local.vtl
from infra.templates import STATE_MACHINE_ARN_PLACEHOLDER, request_template
from local.vtl import Rendered, VtlMap, render

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
# A base64 file of '/' only (0xFF bytes): escapeJavaScript would double every one of them.
SLASHES = "/" * 30_000
SLASH_BODY = '{"productId": "P", "price": 1, "fileContent": "' + SLASHES + '"}'
BODIES = {
    "normal": NORMAL_BODY,
    "tricky": TRICKY_BODY,
    "slashes": SLASH_BODY,
    # Every escape JSON has, spelled in the text; the sequences the template undoes (\' and \/)
    # next to backslashes.
    "escapes": '{"a": "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000 \\ud83d\\ude00", "b": "\\\\\'"}',
    "backslash-quote": '{"a": "\\\\\'\\\\/\\\\\\\\\'"}',
    # Pretty-printed: raw newlines, tabs and carriage returns between the tokens.
    "pretty": '{\n\t"productId": "P",\r\n\t"price": 1.0000000000000000001\n}',
    # Exact number spellings validate must see as sent.
    "numbers": (
        '{"price": 1.0000000000000000001, "n": -0.0, "e": 1E+400, "i": 123456789012345678901}'
    ),
    # Velocity and HTML syntax are text in a body.
    "velocity": '{"a": "$context.requestId #set($x = 1) ${x} ## not a comment", "b": "</script>"}',
    "astral": '{"a": "\U0001f600\U00010348\u2028\u2029\ufeff\u00ff\u0100"}',
    # Not JSON at all: the text still arrives as sent; validate answers 400.
    "not-json": "{'a': 1}",
    "truncated": '{"a": "b',
    "empty": "",
    "blank": "  \n ",
}


def _render(body: str, headers: dict[str, str]) -> tuple[Rendered, dict[str, Any], dict[str, Any]]:
    rendered = render(
        request_template(ARN), body=body, headers=headers, context={"requestId": REQUEST_ID}
    )
    request = json.loads(rendered.text)
    return rendered, request, json.loads(request["input"])


def test_builds_the_start_sync_execution_request() -> None:
    _, request, execution_input = _render(NORMAL_BODY, {"Content-Type": "application/json"})

    assert request["stateMachineArn"] == ARN
    assert request["name"] == REQUEST_ID
    assert set(request) == {"stateMachineArn", "name", "input"}
    assert execution_input == {
        "requestId": REQUEST_ID,
        "idempotencyKey": None,
        "caller": "",
        "body": NORMAL_BODY,
    }


@pytest.mark.parametrize("name", sorted(BODIES))
def test_the_body_arrives_as_the_exact_text_sent(name: str) -> None:
    body = BODIES[name]
    _, _, execution_input = _render(body, {"Content-Type": "application/json"})

    assert execution_input["body"] == body
    assert set(execution_input) == {"body", "requestId", "idempotencyKey", "caller"}
    assert execution_input["requestId"] == REQUEST_ID


def test_the_tricky_body_keeps_every_character() -> None:
    _, _, execution_input = _render(TRICKY_BODY, {})

    assert json.loads(execution_input["body"])["productName"] == (
        'Joe\'s "best" \\ caf\u00e9 \U0001f600 \n line \u00e9 a/b \x7f'
    )
    # The number as the client spelled it (1.50, not 1.5).
    assert '"price": 1.50,' in execution_input["body"]


@pytest.mark.parametrize("name", ["normal", "slashes", "escapes", "backslash-quote", "pretty"])
def test_an_ascii_body_takes_only_the_escapes_json_needs(name: str) -> None:
    """No \\/ and no \\' at either level: the input holds the body as JSON writes it, and the
    request holds the input as JSON writes it."""
    body = BODIES[name]
    rendered, request, _ = _render(body, {})

    assert '{"body": ' + json.dumps(body) + ", " in request["input"]
    assert '"input": ' + json.dumps(request["input"]) + "\n" in rendered.text


def test_a_body_of_slashes_does_not_grow() -> None:
    """A base64 file of '/' costs what a file of 'A' costs: the request stays under API Gateway's
    and Step Functions' limits for every file MAX_FILE_BYTES allows."""
    rendered, request, execution_input = _render(SLASH_BODY, {})
    same_size, same_request, _ = _render(SLASH_BODY.replace("/", "A"), {})

    assert execution_input["body"] == SLASH_BODY
    assert len(request["input"]) == len(same_request["input"])
    assert len(rendered.text) == len(same_size.text)
    # The body's quotes are the only escapes it takes in the input (8 quotes, one \ each)...
    encoded = json.dumps(SLASH_BODY)
    assert len(encoded) == len(SLASH_BODY) + 2 + SLASH_BODY.count('"')
    assert encoded in request["input"]
    # ... and in the request, each escape and quote of the input once more.
    assert SLASHES in rendered.text


@pytest.mark.parametrize("header_name", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
@pytest.mark.parametrize(
    "key",
    [
        "order-42",
        "k'\"\\/<>&%$#{}",  # every character JSON must escape, and Velocity's own
        "caf\u00e9-\U0001f600",
    ],
)
def test_passes_the_idempotency_key_whatever_the_case_of_its_name(
    header_name: str, key: str
) -> None:
    _, _, execution_input = _render(NORMAL_BODY, {header_name: key, "Authorization": SECRET})

    assert execution_input["idempotencyKey"] == key
    assert execution_input["body"] == NORMAL_BODY


@pytest.mark.parametrize("header_name", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_the_template_finds_the_key_itself_in_a_case_sensitive_header_map(
    monkeypatch: pytest.MonkeyPatch, header_name: str
) -> None:
    """The template compares lower-cased names itself: it does not rely on the header map's own
    lookups ignoring case (local mode's do; API Gateway's need not)."""

    class CaseSensitiveHeaders(VtlMap):
        def __init__(self, items: dict[str, str]) -> None:
            super().__init__(items)

    monkeypatch.setattr(local.vtl, "HeaderMap", CaseSensitiveHeaders)
    _, _, execution_input = _render(NORMAL_BODY, {header_name: "k-1", "Other": "x"})

    assert execution_input["idempotencyKey"] == "k-1"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Idempotency-Key": ""},
        # Only that header: not one whose name merely contains it.
        {"X-Idempotency-Key": "k-1", "Idempotency-Keys": "k-2", "Idempotency_Key": "k-3"},
    ],
)
def test_without_an_idempotency_key_it_is_null(headers: dict[str, str]) -> None:
    _, _, execution_input = _render(NORMAL_BODY, headers)

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
        ({"caller": "a'\"\\b/\u00e9"}, "a'\"\\b/\u00e9"),
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


@pytest.mark.parametrize("name", ["Idempotency-Key", "idempotency-key"])
def test_a_query_or_path_parameter_cannot_pose_as_the_idempotency_key(name: str) -> None:
    rendered = render(
        request_template(ARN),
        body=NORMAL_BODY,
        headers={},
        query={name: "from-the-query"},
        path_params={name: "from-the-path"},
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


def test_a_body_cannot_smuggle_keys_into_the_input() -> None:
    # The body is one string: what looks like keys in it stays text inside that string.
    smuggling = '{"productId": "P"}", "requestId": "forged", "idempotencyKey": "forged'
    _, _, execution_input = _render(smuggling, {})

    assert execution_input == {
        "body": smuggling,
        "requestId": REQUEST_ID,
        "idempotencyKey": None,
        "caller": "",
    }


def test_the_arn_is_substituted_verbatim_even_as_a_cdk_token() -> None:
    token = "${Token[TOKEN.123]}"
    template = request_template(token)

    assert STATE_MACHINE_ARN_PLACEHOLDER not in template
    assert f'"stateMachineArn": "{token}"' in template
    with pytest.raises(ValueError, match="not a state machine ARN"):
        request_template('arn"injected')
