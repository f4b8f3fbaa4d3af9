"""The real response template (infra/templates/response.vtl) against every answer
StartSyncExecution can give, checked against the contract's statuses and bodies (docs/api.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from infra.templates import response_template
from local.vtl import Rendered, VelocityInput, render
from tasks.contract.errors import (
    INTERNAL_ERROR_MESSAGE,
    INVALID_JSON_MESSAGE,
    OUTCOMES,
    PAYLOAD_TOO_LARGE_MESSAGE,
    STATE_TOO_LARGE_MESSAGE,
    TIMEOUT_MESSAGE,
    UNAVAILABLE_MESSAGE,
    UPLOAD_IN_PROGRESS_MESSAGE,
    WORKFLOW_ERRORS,
    ContentMismatch,
    FieldProblem,
    IdempotencyConflict,
    PayloadTooLarge,
    RequestRejected,
    SessionNotFound,
    SessionNotOpen,
    TooManySessions,
    UploadInProgress,
    ValidationError,
    codes_by_status,
)
from tasks.contract.limits import MAX_FILE_BYTES, STATE_PAYLOAD_LIMIT_BYTES

REQUEST_ID = "c0ffee00-1234-4abc-8def-0123456789ab"
EXECUTION_ARN = f"arn:aws:states:us-east-1:123456789012:express:Upload:{REQUEST_ID}:e7a1b2c3"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Upload"
STACK_LINE = '  File "/var/task/tasks/validate.py", line 57, in handler\n    raise exc\n'
# Texts that must never reach a client.
LEAKS = ("arn:aws", "stackTrace", "/var/task", "errorType", "Traceback", "__type", "SdkSecret")

# Record's success body, the execution's output: the price is its exact decimal TEXT (Step
# Functions may read a JSON number as a binary float).
SUCCESS_BODY = {
    "message": "File uploaded successfully",
    "requestId": REQUEST_ID,
    "productId": "PROD-001",
    "productName": 'Joe\'s "caf\u00e9" \\ \U0001f600',
    "price": "99.99",
    "fileName": "test-file.txt",
    "contentType": "text/plain",
    "size": 18,
    "sha256": "9" * 64,
    "s3Key": "uploads/PROD-001/test-file.txt",
    "versionId": "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    "timestamp": "2026-11-25T22:48:54.123Z",
}


def _execution(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "executionArn": EXECUTION_ARN,
        "stateMachineArn": MACHINE_ARN,
        "name": REQUEST_ID,
        "startDate": 1.764110934e9,
        "stopDate": 1.764110935e9,
        "status": status,
        "input": '{"body": {"productId": "PROD-001"}}',
        "inputDetails": {"included": True},
        "billingDetails": {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 400},
        **fields,
    }


def _lambda_cause(error: Exception) -> str:
    """The cause Step Functions records for an unhandled Python exception in a Lambda task."""
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": "5f5e6a1c-0000-4000-8000-000000000000",
            "stackTrace": [STACK_LINE, '  File "/var/task/tasks/core/x.py", line 9\n'],
        }
    )


def _respond(
    answer: object, *, success_status: int = 200, selected_by_413: bool = False
) -> Rendered:
    """The template of the integration response selected for this answer (the 413 one when
    ``selected_by_413``) rendered around it."""
    body = answer if isinstance(answer, str) else json.dumps(answer)
    template = response_template(success_status, selected_by_413=selected_by_413)
    return render(template, body=body, headers={}, context={"requestId": REQUEST_ID})


def _error(code: str, message: str, details: list[dict[str, str]] | None = None) -> object:
    error: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error, "requestId": REQUEST_ID}


def _assert_no_leak(rendered: Rendered) -> None:
    for leak in LEAKS:
        assert leak not in rendered.text


def _succeeded(output: str) -> Rendered:
    return _respond(_execution("SUCCEEDED", output=output, outputDetails={"included": True}))


def _exact(text: str) -> Any:
    """The body as a client reading numbers exactly sees it."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def test_succeeded_returns_the_output_with_200_and_the_price_as_a_number() -> None:
    output = json.dumps(SUCCESS_BODY)
    rendered = _succeeded(output)

    assert rendered.status_override == 200
    # The output verbatim, but for the price: the JSON number its text spells.
    assert rendered.text.strip() == output.replace('"price": "99.99"', '"price":99.99')
    assert _exact(rendered.text) == {**SUCCESS_BODY, "price": Decimal("99.99")}


@pytest.mark.parametrize(
    "price",
    [
        "0",
        "7",
        "0.5",
        "1.50",  # the spelling is kept: trailing zeros too
        "99.99",
        "1.0000000000000000001",
        "999999999999.999999999999999999999999999999",
        "123456789012." + "1234567890" * 16 + "12345",  # 12 + 165 digits, the longest allowed
    ],
)
@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
def test_the_price_keeps_every_digit(price: str, separators: tuple[str, str]) -> None:
    output = json.dumps({**SUCCESS_BODY, "price": price}, separators=separators)
    rendered = _succeeded(output)

    assert rendered.status_override == 200
    assert f'"price":{price}' in rendered.text
    assert _exact(rendered.text)["price"] == Decimal(price)
    assert _exact(rendered.text) == {**SUCCESS_BODY, "price": Decimal(price)}
    # Nothing else changed, character for character.
    assert rendered.text.strip() == output.replace(
        f'"price"{separators[1]}"{price}"', f'"price":{price}'
    )


@pytest.mark.parametrize(
    "field", ["productName", "fileName", "message", "requestId", "contentType", "sha256"]
)
@pytest.mark.parametrize(
    "text", ['"price":"1"', '{"price": "2.5"}', 'x", "price": "3', "price", '\\"price":"4"']
)
def test_a_price_inside_another_string_is_left_alone(field: str, text: str) -> None:
    body = {**SUCCESS_BODY, field: text, "price": "12.5"}
    output = json.dumps(body)
    rendered = _succeeded(output)

    assert _exact(rendered.text) == {**body, "price": Decimal("12.5")}
    assert rendered.text.strip() == output.replace('"price": "12.5"', '"price":12.5')


@pytest.mark.parametrize("price", ["1e5", "-1", "01", "1.", ".5", "1,5", " 1", "NaN", ""])
def test_a_price_that_is_not_decimal_text_stays_a_string(price: str) -> None:
    """Never produced by record; should one come, the body stays valid JSON, unchanged."""
    output = json.dumps({**SUCCESS_BODY, "price": price})
    rendered = _succeeded(output)

    assert rendered.status_override == 200
    assert rendered.text.strip() == output


CLIENT_ERRORS: dict[str, RequestRejected] = {
    "ValidationError": ValidationError(
        "The request body is invalid.",
        [
            FieldProblem("price", "must be less than 1000000000000"),
            FieldProblem("productName", "must not contain control characters (U+0000-U+001F)"),
            FieldProblem('n\u00e4me\'s "x"', "is not an allowed field \\ / \U0001f600"),
        ],
    ),
    "PayloadTooLarge": PayloadTooLarge(
        f"The file is larger than the limit of {MAX_FILE_BYTES} bytes.",
        [FieldProblem("fileContent", f"decodes to more than {MAX_FILE_BYTES} bytes")],
    ),
    "IdempotencyConflict": IdempotencyConflict(
        "The Idempotency-Key 'k-1' was used with a \"different\" body."
    ),
    "UploadInProgress": UploadInProgress(
        "Another upload of 'P-1' / \"caf\u00e9\" is in progress \\ retry in 2 s."
    ),
    "ContentMismatch": ContentMismatch(
        "The request body is invalid.",
        [FieldProblem("contentType", "is 'image/png' but the file's bytes are not image/png")],
    ),
    "SessionNotFound": SessionNotFound("There is no upload session with this uploadId."),
    "SessionNotOpen": SessionNotOpen("The upload session is ABORTED: it cannot be committed."),
    "TooManySessions": TooManySessions("You already hold 100 open upload sessions (at most 100)."),
}


@pytest.mark.parametrize("name", sorted(WORKFLOW_ERRORS))
def test_failed_maps_every_workflow_error(name: str) -> None:
    facing = WORKFLOW_ERRORS[name]
    if facing.from_task:
        error = CLIENT_ERRORS[name]
        cause = _lambda_cause(error)
        details = [{"field": d.field, "message": d.message} for d in error.details]
        expected = _error(facing.code, error.message, details or None)
    else:
        cause = INTERNAL_ERROR_MESSAGE if name == "InternalError" else "orphan reported"
        expected = _error(facing.code, facing.message)

    rendered = _respond(_execution("FAILED", error=name, cause=cause))

    assert rendered.status_override == facing.status
    assert json.loads(rendered.text) == expected
    _assert_no_leak(rendered)


def test_the_table_is_what_the_contract_says() -> None:
    assert {name: (e.status, e.code) for name, e in WORKFLOW_ERRORS.items()} == {
        "ValidationError": (400, "ValidationError"),
        "PayloadTooLarge": (413, "PayloadTooLarge"),
        "IdempotencyConflict": (409, "IdempotencyConflict"),
        "UploadInProgress": (409, "UploadInProgress"),
        "InternalError": (500, "InternalError"),
        "CompensationFailed": (500, "InternalError"),
        "States.DataLimitExceeded": (413, "PayloadTooLarge"),
        "ContentMismatch": (400, "ValidationError"),
        "SessionNotFound": (404, "NotFound"),
        "SessionNotOpen": (409, "SessionNotOpen"),
        "TooManySessions": (429, "TooManySessions"),
    }


def test_409_comes_with_three_codes() -> None:
    assert codes_by_status()[409] == frozenset(
        {"IdempotencyConflict", "UploadInProgress", "SessionNotOpen"}
    )


def test_upload_in_progress_is_a_409_with_the_tasks_message() -> None:
    """What store raises when another upload of the same item holds its lease."""
    cause = _lambda_cause(UploadInProgress(UPLOAD_IN_PROGRESS_MESSAGE))
    rendered = _respond(_execution("FAILED", error="UploadInProgress", cause=cause))

    assert rendered.status_override == 409
    assert json.loads(rendered.text) == _error("UploadInProgress", UPLOAD_IN_PROGRESS_MESSAGE)
    _assert_no_leak(rendered)


def test_upload_in_progress_with_an_unreadable_cause_keeps_its_status_and_code() -> None:
    rendered = _respond(_execution("FAILED", error="UploadInProgress", cause="Task timed out"))

    assert rendered.status_override == 409
    assert json.loads(rendered.text) == _error("UploadInProgress", UPLOAD_IN_PROGRESS_MESSAGE)


def test_a_client_error_message_with_every_awkward_character_stays_exact() -> None:
    message = 'It\'s a "quote", a back\\slash, a / slash, caf\u00e9, \U0001f600, tab\tnew\nline'
    cause = _lambda_cause(ValidationError(message, [FieldProblem("f'\"", message)]))
    rendered = _respond(_execution("FAILED", error="ValidationError", cause=cause))

    assert rendered.status_override == 400
    assert json.loads(rendered.text) == _error(
        "ValidationError", message, [{"field": "f'\"", "message": message}]
    )


@pytest.mark.parametrize(
    "cause",
    [
        "",
        "Task timed out after 2.00 seconds",
        '{"errorMessage": "not the task\'s JSON", "errorType": "ValidationError"}',
        '{"errorMessage": "{\\"message\\": \\"truncat',
    ],
)
def test_an_unreadable_client_error_cause_falls_back_to_a_fixed_message(cause: str) -> None:
    rendered = _respond(_execution("FAILED", error="ValidationError", cause=cause))

    assert rendered.status_override == 400
    assert json.loads(rendered.text) == _error(
        "ValidationError", OUTCOMES["ValidationError"].message
    )


@pytest.mark.parametrize(
    "error", ["States.Runtime", "States.TaskFailed", "StorageError", "Sandbox.Timedout", ""]
)
def test_an_unknown_error_is_a_500_internal_error(error: str) -> None:
    cause = _lambda_cause(RuntimeError("SdkSecret: AccessDenied on arn:aws:s3:::bucket"))
    rendered = _respond(_execution("FAILED", error=error, cause=cause))

    assert rendered.status_override == 500
    assert json.loads(rendered.text) == _error("InternalError", INTERNAL_ERROR_MESSAGE)
    _assert_no_leak(rendered)


def test_timed_out_is_a_504() -> None:
    rendered = _respond(_execution("TIMED_OUT", error="States.Timeout", cause="timed out"))

    assert rendered.status_override == 504
    assert json.loads(rendered.text) == _error("Timeout", TIMEOUT_MESSAGE)
    _assert_no_leak(rendered)


SFN_PREFIX = "com.amazonaws.swf.service.v2.model#"


@pytest.mark.parametrize(
    ("error_type", "status", "code", "message"),
    [
        (f"{SFN_PREFIX}ValidationException", 413, "PayloadTooLarge", PAYLOAD_TOO_LARGE_MESSAGE),
        ("ValidationException", 413, "PayloadTooLarge", PAYLOAD_TOO_LARGE_MESSAGE),
        # A request over 1 MB, should Step Functions name it in a JSON error.
        (
            f"{SFN_PREFIX}RequestEntityTooLargeException",
            413,
            "PayloadTooLarge",
            PAYLOAD_TOO_LARGE_MESSAGE,
        ),
        ("RequestEntityTooLargeException", 413, "PayloadTooLarge", PAYLOAD_TOO_LARGE_MESSAGE),
        ("RequestEntityTooLarge", 413, "PayloadTooLarge", PAYLOAD_TOO_LARGE_MESSAGE),
        (
            f"{SFN_PREFIX}PayloadTooLargeException",
            413,
            "PayloadTooLarge",
            PAYLOAD_TOO_LARGE_MESSAGE,
        ),
        (f"{SFN_PREFIX}InvalidExecutionInput", 400, "ValidationError", INVALID_JSON_MESSAGE),
        ("InvalidExecutionInput", 400, "ValidationError", INVALID_JSON_MESSAGE),
        (f"{SFN_PREFIX}ThrottlingException", 503, "ServiceUnavailable", UNAVAILABLE_MESSAGE),
        ("ThrottlingException", 503, "ServiceUnavailable", UNAVAILABLE_MESSAGE),
        (f"{SFN_PREFIX}ExecutionLimitExceeded", 503, "ServiceUnavailable", UNAVAILABLE_MESSAGE),
        (f"{SFN_PREFIX}StateMachineDoesNotExist", 500, "InternalError", INTERNAL_ERROR_MESSAGE),
        (f"{SFN_PREFIX}AccessDeniedException", 500, "InternalError", INTERNAL_ERROR_MESSAGE),
        ("InternalFailure", 500, "InternalError", INTERNAL_ERROR_MESSAGE),
    ],
)
def test_step_functions_api_errors(error_type: str, status: int, code: str, message: str) -> None:
    answer = {
        "__type": error_type,
        "message": f"SdkSecret: 1 validation error at '{MACHINE_ARN}': Member must have length "
        "less than or equal to 262144",
    }
    rendered = _respond(answer)

    assert rendered.status_override == status
    assert json.loads(rendered.text) == _error(code, message)
    _assert_no_leak(rendered)


def test_the_413_messages_state_the_limit_in_bytes() -> None:
    assert f"{MAX_FILE_BYTES} bytes" in PAYLOAD_TOO_LARGE_MESSAGE
    assert f"{STATE_PAYLOAD_LIMIT_BYTES} bytes" in STATE_TOO_LARGE_MESSAGE


def test_a_state_over_the_limit_is_a_413() -> None:
    """States.DataLimitExceeded fails the execution (no States.ALL catcher catches it); its cause
    names the task's ARN, which stays out of the answer."""
    cause = (
        "The state/task 'arn:aws:lambda:us-east-1:123456789012:function:Validate' returned a "
        "result with a size exceeding the maximum number of bytes service limit."
    )
    rendered = _respond(_execution("FAILED", error="States.DataLimitExceeded", cause=cause))

    assert rendered.status_override == 413
    assert json.loads(rendered.text) == _error("PayloadTooLarge", STATE_TOO_LARGE_MESSAGE)
    _assert_no_leak(rendered)


# Step Functions' answers to a request over its 1 MB limit, as the 413 integration response may
# get them: what the body holds is not documented, so none of it is read.
ANSWERS_WITH_413 = {
    "html": "<html><body><h1>413 Request Entity Too Large</h1></body></html>",
    "empty": "",
    "json": json.dumps({"__type": f"{SFN_PREFIX}RequestEntityTooLargeException", "message": "x"}),
    # Bodies the other responses would answer otherwise (500, 400, 200): still a 413 here.
    "json of another type": json.dumps({"__type": "InternalFailure", "message": "SdkSecret"}),
    "json of an invalid input": json.dumps({"__type": f"{SFN_PREFIX}InvalidExecutionInput"}),
    "json of an execution": json.dumps(_execution("SUCCEEDED", output=json.dumps(SUCCESS_BODY))),
}


@pytest.mark.parametrize("success_status", [200, 201])
@pytest.mark.parametrize("answer", ANSWERS_WITH_413.values(), ids=ANSWERS_WITH_413.keys())
def test_the_413_response_answers_413_whatever_the_body(
    answer: str, success_status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unread(self: VelocityInput, expression: str) -> object:
        raise AssertionError(f"the 413 response read the body ({expression})")

    # API Gateway may fail a template that reads a body that is not JSON: this one reads none.
    monkeypatch.setattr(VelocityInput, "path", unread)
    monkeypatch.setattr(VelocityInput, "json", unread)
    rendered = _respond(answer, success_status=success_status, selected_by_413=True)

    assert rendered.status_override == 413
    assert json.loads(rendered.text) == _error("PayloadTooLarge", PAYLOAD_TOO_LARGE_MESSAGE)
    _assert_no_leak(rendered)


@pytest.mark.parametrize("success_status", [200, 201])
def test_the_413_response_differs_from_the_others_only_in_its_flag(success_status: int) -> None:
    selected = response_template(success_status, selected_by_413=True)
    other = response_template(success_status)

    assert selected.count("#set($selectedBy413 = true)") == 1
    assert selected.replace("$selectedBy413 = true", "$selectedBy413 = false") == other


@pytest.mark.parametrize("answer", ["", "<html>Bad Gateway</html>", "{}", '{"status": "ABORTED"}'])
def test_anything_else_is_a_500_internal_error(answer: str) -> None:
    rendered = _respond(answer)

    assert rendered.status_override == 500
    assert json.loads(rendered.text) == _error("InternalError", INTERNAL_ERROR_MESSAGE)
