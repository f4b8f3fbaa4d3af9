"""The Express workflow parsed from the synthesized template: routing, payloads, time budget."""

from __future__ import annotations

import json

import pytest

from tasks.contract.errors import (
    CLIENT_ERROR_NAMES,
    INTERNAL_ERROR_MESSAGE,
    ORPHAN_REPORTED_MESSAGE,
    WORKFLOW_ERRORS,
)
from tasks.contract.idempotency import CLAIM_SECONDS

from .infra_helpers import (
    logical_id_with_prefix,
    only,
    permissions,
    render,
    resources_of_type,
    role_statements,
    state_machine_definition,
)

API_GATEWAY_TIMEOUT_SECONDS = 29
MARGIN_SECONDS = 3
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


@pytest.fixture(scope="module")
def definition(default_stack):
    return state_machine_definition(default_stack.template_json)


@pytest.fixture(scope="module")
def states(definition):
    return definition["States"]


def function_arn(template, title):
    logical_id = logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{title}Func")
    return "${" + logical_id + ".Arn}"


def test_state_machine_is_express_traced_and_logs_everything_without_execution_data(
    default_stack,
):
    template = default_stack.template_json
    _, machine = only(template, "AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    [destination] = logging["Destinations"]
    group = logical_id_with_prefix(template, "AWS::Logs::LogGroup", "WorkflowLogGroup")
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": [group, "Arn"]}


def test_log_execution_data_flag_turns_execution_data_on(log_data_stack):
    _, machine = only(log_data_stack.template_json, "AWS::StepFunctions::StateMachine")
    assert machine["Properties"]["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_states_and_their_order(definition, states):
    assert definition["StartAt"] == "Validate"
    assert set(states) == {
        "Validate",
        "Store",
        "DiscardFileContent",
        "AlreadyUploaded",
        "Record",
        "Uploaded",
        "Replayed",
        "Compensate",
        "Rejected",
        "UploadFailed",
        "CompensationFailed",
    }
    assert states["Validate"]["Next"] == "Store"
    assert states["Store"]["Next"] == "DiscardFileContent"
    assert states["DiscardFileContent"]["Next"] == "AlreadyUploaded"
    assert states["Record"]["Next"] == "Uploaded"
    assert states["Uploaded"] == {"Type": "Succeed", "OutputPath": "$.receipt"}
    assert states["Compensate"]["Next"] == "UploadFailed"


def test_tasks_invoke_their_own_function_and_return_its_payload(default_stack, states):
    for title in ("Validate", "Store", "Record", "Compensate"):
        state = states[title]
        assert state["Type"] == "Task"
        # The function ARN as Resource: the task result is the Lambda payload itself.
        assert render(state["Resource"]) == function_arn(default_stack.template_json, title)
        assert "ResultSelector" not in state
        assert "OutputPath" not in state
    assert states["Validate"]["ResultPath"] == "$.upload"
    # Store's result takes the body's place (the file leaves the state with it).
    assert states["Store"]["ResultPath"] == "$.body"
    assert states["Record"]["ResultPath"] == "$.receipt"
    assert states["Compensate"]["ResultPath"] == "$.compensation"


def test_task_payloads_match_the_interface(states):
    assert states["Validate"]["Parameters"] == {
        "requestId.$": "$.requestId",
        "idempotencyKey.$": "$.idempotencyKey",
        "caller.$": "$.caller",
        "body.$": "$.body",
    }
    assert states["Store"]["Parameters"] == {
        "requestId.$": "$.requestId",
        "upload.$": "$.upload",
        "fileContent.$": "$.body.fileContent",
        "attempt.$": "$$.State.RetryCount",
        "startedAt.$": "$$.Execution.StartTime",
    }
    assert states["Record"]["Parameters"] == {
        "requestId.$": "$.requestId",
        "upload.$": "$.upload",
        "stored.$": "$.stored",
    }
    assert states["Compensate"]["Parameters"] == {
        "requestId.$": "$.requestId",
        # Below the Retry's MaxAttempts a transient failure is left to the retry, unreported.
        "attempt.$": "$$.State.RetryCount",
        "productId.$": "$.upload.productId",
        "productName.$": "$.upload.productName",
        "s3Key.$": "$.upload.s3Key",
        "startedAt.$": "$$.Execution.StartTime",
        "idempotencyId.$": "$.upload.idempotencyId",
    }


def test_file_content_never_travels_past_store(states):
    discard = states["DiscardFileContent"]
    assert discard["Type"] == "Pass"
    # The Pass output is exactly these fields: the body (and its fileContent) is dropped.
    # The Pass output is exactly these fields: the body (replaced by Store's result, which moves
    # to $.stored) and the raw Idempotency-Key and caller are dropped.
    assert discard["Parameters"] == {
        "requestId.$": "$.requestId",
        "upload.$": "$.upload",
        "stored.$": "$.body",
    }
    for name in ("Record", "Compensate"):
        text = json.dumps(states[name].get("Parameters"))
        assert "fileContent" not in text
        assert "$.body" not in text


def test_client_errors_from_validate_end_in_rejected_with_the_tasks_error(states):
    # A client error takes the request body's place (the file leaves the state with it).
    catches = states["Validate"]["Catch"]
    assert catches == [
        {"ErrorEquals": list(CLIENT_ERROR_NAMES), "ResultPath": "$.body", "Next": "Rejected"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "UploadFailed"},
    ]
    assert set(CLIENT_ERROR_NAMES) == {"ValidationError", "PayloadTooLarge", "IdempotencyConflict"}
    assert states["Rejected"] == {
        "Type": "Fail",
        "ErrorPath": "$.body.Error",
        "CausePath": "$.body.Cause",
    }


def test_idempotency_conflict_from_store_is_rejected_without_compensation(states):
    # The claim comes before the PUT: a conflict stored nothing, so it ends in Rejected (409);
    # the client-error catch comes before the catch-all that compensates.
    assert states["Store"]["Catch"] == [
        {"ErrorEquals": list(CLIENT_ERROR_NAMES), "ResultPath": "$.body", "Next": "Rejected"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.body", "Next": "Compensate"},
    ]


def test_a_replay_skips_record_and_returns_the_first_success_body(states):
    assert states["AlreadyUploaded"] == {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.stored.replay", "IsPresent": True},
                    {"Variable": "$.stored.replay", "BooleanEquals": True},
                ],
                "Next": "Replayed",
            }
        ],
        "Default": "Record",
    }
    assert states["Replayed"] == {"Type": "Succeed", "OutputPath": "$.stored.receipt"}


def test_storage_failures_are_compensated(states):
    # Store's error takes the request body's place, so the file leaves the state with it.
    assert states["Store"]["Catch"][-1] == {
        "ErrorEquals": ["States.ALL"],
        "ResultPath": "$.body",
        "Next": "Compensate",
    }
    assert states["Record"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Compensate"}
    ]
    assert states["Compensate"]["Catch"] == [
        {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.compensationError",
            "Next": "CompensationFailed",
        }
    ]


def test_fail_states_name_errors_the_response_template_knows(states):
    assert states["UploadFailed"] == {
        "Type": "Fail",
        "Error": "InternalError",
        "Cause": INTERNAL_ERROR_MESSAGE,
    }
    assert states["CompensationFailed"] == {
        "Type": "Fail",
        "Error": "CompensationFailed",
        "Cause": ORPHAN_REPORTED_MESSAGE,
    }
    fixed = {s["Error"] for s in states.values() if s["Type"] == "Fail" and "Error" in s}
    assert fixed | set(CLIENT_ERROR_NAMES) <= set(WORKFLOW_ERRORS)


def test_every_task_catches_everything_and_retries_only_transient_errors(states):
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        [retry] = state["Retry"]
        transient = [] if name == "Validate" else ["TransientStorageError"]
        assert retry == {
            "ErrorEquals": LAMBDA_SERVICE_ERRORS + transient,
            "IntervalSeconds": 1,
            "MaxAttempts": 1,
            "BackoffRate": 2,
        }, name


def task_worst_case_seconds(state):
    """Every attempt runs to its timeout; every retrier exhausts its attempts."""
    attempts, waits = 1, 0.0
    for retry in state.get("Retry", []):
        interval = retry.get("IntervalSeconds", 1)
        backoff = retry.get("BackoffRate", 2.0)
        max_attempts = retry.get("MaxAttempts", 3)
        attempts += max_attempts
        waits += sum(interval * backoff**k for k in range(max_attempts))
    return attempts * state["TimeoutSeconds"] + waits


def worst_case_seconds(states, name, seen=()):
    assert name not in seen, f"cycle through {name}"
    state = states[name]
    if state["Type"] in ("Succeed", "Fail"):
        return 0.0
    own = task_worst_case_seconds(state) if state["Type"] == "Task" else 0.0
    assert state["Type"] in ("Task", "Pass", "Choice"), state["Type"]
    if state["Type"] == "Choice":
        following = [choice["Next"] for choice in state["Choices"]] + [state["Default"]]
    else:
        following = [state["Next"]] + [catch["Next"] for catch in state.get("Catch", [])]
    return own + max(worst_case_seconds(states, n, (*seen, name)) for n in following)


def test_worst_case_duration_fits_api_gateways_timeout_with_margin(definition, states):
    for state in states.values():
        if state["Type"] == "Task":
            assert state["TimeoutSeconds"] > 0
    worst = worst_case_seconds(states, definition["StartAt"])
    assert worst == 24  # (2+1+2) + (3+1+3) + (2+1+2) + (3+1+3): Validate, Store, Record, Compensate
    # An idempotent replay: Validate, Store (its claim inside the same timeout), Replayed.
    assert worst_case_seconds(states, "Store") == 7 + 5 + 7
    assert worst_case_seconds(states, "AlreadyUploaded") == 5 + 7
    assert worst <= definition["TimeoutSeconds"] < API_GATEWAY_TIMEOUT_SECONDS
    assert worst + MARGIN_SECONDS <= API_GATEWAY_TIMEOUT_SECONDS
    # A live execution never outlasts its Idempotency-Key claim's lease.
    assert definition["TimeoutSeconds"] + MARGIN_SECONDS < CLAIM_SECONDS


def test_task_timeouts_equal_the_lambda_timeouts(default_stack, states):
    template = default_stack.template_json
    for title in ("Validate", "Store", "Record", "Compensate"):
        logical_id = logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{title}Func")
        lambda_timeout = template["Resources"][logical_id]["Properties"]["Timeout"]
        assert states[title]["TimeoutSeconds"] == lambda_timeout


def test_state_machine_role_may_invoke_the_four_functions_only(default_stack):
    template = default_stack.template_json
    role_id = logical_id_with_prefix(template, "AWS::IAM::Role", "WorkflowStateMachineRole")
    granted = permissions(role_statements(template, role_id))
    invoke = {(a, r) for a, r, _ in granted if a.startswith("lambda:")}
    functions = [function_arn(template, t) for t in ("Validate", "Store", "Record", "Compensate")]
    assert invoke == {("lambda:InvokeFunction", arn) for arn in functions} | {
        ("lambda:InvokeFunction", f"{arn}:*") for arn in functions
    }
    others = {a for a, _, _ in granted if not a.startswith("lambda:")}
    # Log delivery and X-Ray: actions without resource-level permissions.
    assert {a.split(":")[0] for a in others} == {"logs", "xray"}
    assert {r for a, r, _ in granted if not a.startswith("lambda:")} == {"*"}
    assert len(resources_of_type(template, "AWS::Lambda::Function")) == 4


def test_compensate_knows_its_retry_from_the_same_constant(states):
    """Compensate decides "a retry remains" from tasks.contract.timing.TASK_RETRY: it must be
    the Compensate Retry's MaxAttempts, and that Retry must match TransientStorageError."""
    from tasks.contract.errors import TransientStorageError
    from tasks.contract.timing import TASK_RETRY

    [retry] = states["Compensate"]["Retry"]
    assert retry["MaxAttempts"] == TASK_RETRY.max_attempts
    assert TransientStorageError.__name__ in retry["ErrorEquals"]
