"""The Express workflow parsed from the synthesized template: states, routing, payloads, retries.
(The time budget is recomputed from the same definition in test_time_budget.py.)"""

from __future__ import annotations

import json

import pytest

from tasks.contract.errors import (
    CLIENT_ERROR_NAMES,
    INTERNAL_ERROR_MESSAGE,
    ORPHAN_REPORTED_MESSAGE,
    WORKFLOW_ERRORS,
)

from .infra_helpers import (
    logical_id_with_prefix,
    only,
    permissions,
    render,
    resources_of_type,
    role_statements,
    state_machine_definition,
)

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Each Lambda task state and the function (construct title) it invokes.
TASK_STATES = {
    "Validate": "Validate",
    "Store": "Store",
    "Record": "Record",
    "Compensate": "Compensate",
    "ReportOrphan": "Report",
}
# What the workflow may invoke: every task function but the scheduled sweep.
WORKFLOW_FUNCTIONS = tuple(TASK_STATES.values())


@pytest.fixture(scope="module")
def definition(default_stack):
    return state_machine_definition(default_stack.template_json)


@pytest.fixture(scope="module")
def states(definition):
    return definition["States"]


def function_arn(template, title):
    logical_id = logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{title}Func")
    return "${" + logical_id + ".Arn}"


def transitions(state):
    """Every state ``state`` can go to next (Next, Default, each Choice and each Catch)."""
    following = [state["Next"]] if "Next" in state else []
    following += [choice["Next"] for choice in state.get("Choices", [])]
    following += [state["Default"]] if "Default" in state else []
    following += [catch["Next"] for catch in state.get("Catch", [])]
    return following


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


def test_states_and_their_transitions(definition, states):
    assert definition["StartAt"] == "Validate"
    assert {name: (state["Type"], transitions(state)) for name, state in states.items()} == {
        "Validate": ("Task", ["Store", "Rejected", "UploadFailed"]),
        "Store": ("Task", ["DiscardFileContent", "Rejected", "StoreFailed"]),
        "DiscardFileContent": ("Pass", ["AlreadyUploaded"]),
        "AlreadyUploaded": ("Choice", ["Replayed", "Record"]),
        "Record": ("Task", ["Uploaded", "RecordFailed"]),
        "StoreFailed": ("Pass", ["Compensate"]),
        "RecordFailed": ("Pass", ["Compensate"]),
        "Compensate": ("Task", ["UploadFailed", "CompensationFailed", "ReportOrphan"]),
        "ReportOrphan": ("Task", ["CompensationFailed", "CompensationFailed"]),
        "Uploaded": ("Succeed", []),
        "Replayed": ("Succeed", []),
        "Rejected": ("Fail", []),
        "UploadFailed": ("Fail", []),
        "CompensationFailed": ("Fail", []),
    }
    assert states["Uploaded"] == {"Type": "Succeed", "OutputPath": "$.receipt"}


def test_tasks_invoke_their_own_function_and_return_its_payload(default_stack, states):
    template = default_stack.template_json
    assert {name for name, s in states.items() if s["Type"] == "Task"} == set(TASK_STATES)
    for name, title in TASK_STATES.items():
        state = states[name]
        # The function ARN as Resource: the task result is the Lambda payload itself.
        assert render(state["Resource"]) == function_arn(template, title)
        assert "ResultSelector" not in state
        assert "OutputPath" not in state
        assert "InputPath" not in state
    assert {name: states[name]["ResultPath"] for name in TASK_STATES} == {
        "Validate": "$.upload",
        # Store's result takes the body's place (the file leaves the state with it).
        "Store": "$.body",
        "Record": "$.receipt",
        "Compensate": "$.compensation",
        "ReportOrphan": "$.report",
    }


def test_task_payloads_match_the_interface(states):
    assert states["Validate"]["Parameters"] == {
        "requestId.$": "$.requestId",
        "idempotencyKey.$": "$.idempotencyKey",
        "caller.$": "$.caller",
        # The client's JSON text (a string): validate parses its numbers exactly.
        "body.$": "$.body",
    }
    assert states["Store"]["Parameters"] == {
        "requestId.$": "$.requestId",
        "upload.$": "$.upload",
        # The same JSON text: Store takes the file from it.
        "body.$": "$.body",
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
        # Which state failed with which error (StoreFailed / RecordFailed).
        "failedState.$": "$.failure.state",
        "error.$": "$.failure.error",
    }
    assert states["ReportOrphan"]["Parameters"] == {
        "requestId.$": "$.requestId",
        "productId.$": "$.upload.productId",
        "productName.$": "$.upload.productName",
        "s3Key.$": "$.upload.s3Key",
        "startedAt.$": "$$.Execution.StartTime",
        # How Compensate ended (Compensate's catch put its error there).
        "error.$": "$.compensationError.Error",
    }


def test_a_failed_task_says_to_compensate_which_state_failed_and_with_what(states):
    # Store's error took the body's place ($.body); Record's is at $.error.
    assert states["StoreFailed"] == {
        "Type": "Pass",
        "Parameters": {
            "requestId.$": "$.requestId",
            "upload.$": "$.upload",
            "failure": {"state": "Store", "error.$": "$.body.Error"},
        },
        "Next": "Compensate",
    }
    assert states["RecordFailed"] == {
        "Type": "Pass",
        "Parameters": {
            "requestId.$": "$.requestId",
            "upload.$": "$.upload",
            "failure": {"state": "Record", "error.$": "$.error.Error"},
        },
        "Next": "Compensate",
    }


def test_file_content_never_travels_past_store(states):
    discard = states["DiscardFileContent"]
    # The Pass output is exactly these fields: the body (replaced by Store's result, which moves
    # to $.stored) and the raw Idempotency-Key and caller are dropped.
    assert discard == {
        "Type": "Pass",
        "Parameters": {
            "requestId.$": "$.requestId",
            "upload.$": "$.upload",
            "stored.$": "$.body",
        },
        "Next": "AlreadyUploaded",
    }
    # After Store nothing reads the body: StoreFailed reads only the error that replaced it.
    for name in ("Record", "RecordFailed", "Compensate", "ReportOrphan"):
        text = json.dumps(states[name].get("Parameters"))
        assert "fileContent" not in text
        assert "$.body" not in text
    assert json.dumps(states["StoreFailed"]["Parameters"]).count("$.body") == 1


def test_client_errors_from_validate_end_in_rejected_with_the_tasks_error(states):
    # A client error takes the request body's place (the file leaves the state with it).
    assert states["Validate"]["Catch"] == [
        {"ErrorEquals": list(CLIENT_ERROR_NAMES), "ResultPath": "$.body", "Next": "Rejected"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "UploadFailed"},
    ]
    assert set(CLIENT_ERROR_NAMES) == {
        "ValidationError",
        "PayloadTooLarge",
        "IdempotencyConflict",
        "UploadInProgress",
    }
    assert states["Rejected"] == {
        "Type": "Fail",
        "ErrorPath": "$.body.Error",
        "CausePath": "$.body.Cause",
    }


def test_a_conflict_from_store_is_rejected_without_compensation(states):
    # The claim and the item's lease come before the PUT: an IdempotencyConflict or an
    # UploadInProgress stored nothing, so it ends in Rejected (409); the client-error catch comes
    # before the catch-all that compensates.
    assert states["Store"]["Catch"] == [
        {"ErrorEquals": list(CLIENT_ERROR_NAMES), "ResultPath": "$.body", "Next": "Rejected"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.body", "Next": "StoreFailed"},
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


def test_storage_failures_are_compensated_and_failed_compensations_reported(states):
    assert states["Record"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailed"}
    ]
    # CompensationFailed: compensate reported what it could not undo. Anything else (a timeout,
    # a crash): nobody reported, ReportOrphan does.
    assert states["Compensate"]["Catch"] == [
        {
            "ErrorEquals": ["CompensationFailed"],
            "ResultPath": "$.compensationError",
            "Next": "CompensationFailed",
        },
        {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.compensationError",
            "Next": "ReportOrphan",
        },
    ]
    assert states["Compensate"]["Next"] == "UploadFailed"
    # Whatever happens to the report, the execution ends in CompensationFailed.
    assert states["ReportOrphan"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.reportError", "Next": "CompensationFailed"}
    ]
    assert states["ReportOrphan"]["Next"] == "CompensationFailed"


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
    retry = {"IntervalSeconds": 1, "MaxAttempts": 1, "BackoffRate": 2}
    expected = {
        # Validate touches no storage: only the Lambda service's own transient errors.
        "Validate": [{"ErrorEquals": LAMBDA_SERVICE_ERRORS, **retry}],
        # Not WriteOutcomeUnknown (a PUT that may still land): that is compensated instead.
        "Store": [{"ErrorEquals": [*LAMBDA_SERVICE_ERRORS, "TransientStorageError"], **retry}],
        "Record": [{"ErrorEquals": [*LAMBDA_SERVICE_ERRORS, "TransientStorageError"], **retry}],
        "Compensate": [{"ErrorEquals": [*LAMBDA_SERVICE_ERRORS, "TransientStorageError"], **retry}],
        # No retry: if the report fails, the sweep still finds the orphan.
        "ReportOrphan": None,
    }
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        assert state.get("Retry") == expected[name], name
    assert "WriteOutcomeUnknown" not in json.dumps(states)


def test_state_machine_role_may_invoke_the_workflow_functions_only(default_stack):
    template = default_stack.template_json
    role_id = logical_id_with_prefix(template, "AWS::IAM::Role", "WorkflowStateMachineRole")
    granted = permissions(role_statements(template, role_id))
    invoke = {(a, r) for a, r, _ in granted if a.startswith("lambda:")}
    functions = [function_arn(template, title) for title in WORKFLOW_FUNCTIONS]
    assert invoke == {("lambda:InvokeFunction", arn) for arn in functions} | {
        ("lambda:InvokeFunction", f"{arn}:*") for arn in functions
    }
    # Not the sweep: it runs on its schedule, outside the workflow.
    assert function_arn(template, "Sweep") not in {r for _, r in invoke}
    others = {a for a, _, _ in granted if not a.startswith("lambda:")}
    # Log delivery and X-Ray: actions without resource-level permissions.
    assert {a.split(":")[0] for a in others} == {"logs", "xray"}
    assert {r for a, r, _ in granted if not a.startswith("lambda:")} == {"*"}
    assert len(resources_of_type(template, "AWS::Lambda::Function")) == 6


def test_compensate_knows_its_retry_from_the_same_constant(states):
    """Compensate decides "a retry remains" from tasks.contract.timing.TASK_RETRY: it must be
    the Compensate Retry's MaxAttempts, and that Retry must match TransientStorageError."""
    from tasks.contract.errors import TransientStorageError
    from tasks.contract.timing import TASK_RETRY

    [retry] = states["Compensate"]["Retry"]
    assert retry["MaxAttempts"] == TASK_RETRY.max_attempts
    assert TransientStorageError.__name__ in retry["ErrorEquals"]
