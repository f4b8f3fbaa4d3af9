"""The upload workflow parsed from the synthesized template: states, routing, payloads, retries.
(The time budget is recomputed from the same definition in test_time_budget.py; the sessions
workflow, the stack's other state machine, is test_sessions_workflow.py's.)"""

from __future__ import annotations

import json
import re

import pytest

from tasks.contract.errors import (
    CLIENT_ERROR_NAMES,
    INTERNAL_ERROR_MESSAGE,
    ORPHAN_REPORTED_MESSAGE,
    SETTLED_STORE_ERRORS,
    WORKFLOW_ERRORS,
    ContentMismatch,
)

from .infra_helpers import (
    SESSIONS_WORKFLOW,
    UPLOAD_WORKFLOW,
    WORKFLOWS,
    logical_id_with_prefix,
    permissions,
    render,
    resources_of_type,
    role_statements,
    state_machine_definition,
    state_machine_id,
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
# What the workflow may invoke: every task function but the scheduled sweep and the sessions'.
WORKFLOW_FUNCTIONS = tuple(TASK_STATES.values())
# Each state machine's log group and role (logical id prefixes).
LOG_GROUPS = {UPLOAD_WORKFLOW: "WorkflowLogGroup", SESSIONS_WORKFLOW: "SessionsLogGroup"}
# The last part of each state machine's log group name.
LOG_GROUP_NAMES = {UPLOAD_WORKFLOW: "upload-workflow", SESSIONS_WORKFLOW: "sessions-workflow"}


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


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_state_machine_is_express_traced_and_logs_everything_without_execution_data(
    default_stack, workflow
):
    template = default_stack.template_json
    machine_id = state_machine_id(template, workflow)
    props = template["Resources"][machine_id]["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    # Each workflow logs to its own group (the upload workflow's feeds a metric filter).
    [destination] = logging["Destinations"]
    group = logical_id_with_prefix(template, "AWS::Logs::LogGroup", LOG_GROUPS[workflow])
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": [group, "Arn"]}
    role = logical_id_with_prefix(template, "AWS::IAM::Role", workflow + "Role")
    assert props["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}
    # Both are started synchronously by the API, inside its 29 s.
    assert state_machine_definition(template, workflow)["TimeoutSeconds"] == 28


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_each_workflow_logs_under_vendedlogs_states_to_a_group_of_this_stack_alone(
    default_stack, workflow
):
    """``/aws/vendedlogs/states/`` keeps CloudWatch Logs' resource policy from overflowing in an
    account with many log destinations; the stack's name and its id's UUID keep two stacks, or a
    stack re-created beside the group its predecessor retained, from colliding."""
    template = default_stack.template_json
    group = logical_id_with_prefix(template, "AWS::Logs::LogGroup", LOG_GROUPS[workflow])
    assert template["Resources"][group]["Properties"]["LogGroupName"] == {
        "Fn::Join": [
            "",
            [
                "/aws/vendedlogs/states/",
                {"Ref": "AWS::StackName"},
                "-",
                {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                f"/{LOG_GROUP_NAMES[workflow]}",
            ],
        ]
    }


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_log_execution_data_flag_turns_execution_data_on(log_data_stack, workflow):
    template = log_data_stack.template_json
    machine = template["Resources"][state_machine_id(template, workflow)]
    assert machine["Properties"]["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_states_and_their_transitions(definition, states):
    assert definition["StartAt"] == "Validate"
    assert {name: (state["Type"], transitions(state)) for name, state in states.items()} == {
        "Validate": ("Task", ["Store", "Rejected", "UploadFailed"]),
        "Store": (
            "Task",
            ["DiscardFileContent", "Rejected", "ContentMismatchFound", "StoreFailed"],
        ),
        "DiscardFileContent": ("Pass", ["AlreadyUploaded"]),
        "AlreadyUploaded": ("Choice", ["Replayed", "Record"]),
        "Record": ("Task", ["Uploaded", "RecordFailed"]),
        "ContentMismatchFound": ("Pass", ["Compensate"]),
        "StoreFailed": ("Pass", ["Compensate"]),
        "RecordFailed": ("Pass", ["Compensate"]),
        "Compensate": ("Task", ["Compensated", "CompensationFailed", "ReportOrphan"]),
        "Compensated": ("Choice", ["ContentRejected", "UploadFailed"]),
        "ReportOrphan": ("Task", ["CompensationFailed", "CompensationFailed"]),
        "Uploaded": ("Succeed", []),
        "Replayed": ("Succeed", []),
        "Rejected": ("Fail", []),
        "ContentRejected": ("Fail", []),
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
        # Which state failed with which error (StoreFailed / ContentMismatchFound /
        # RecordFailed).
        "failedState.$": "$.failure.state",
        "error.$": "$.failure.error",
        # The upload session whose commit failed (null for an inline file).
        "sessionId.$": "$.upload.sessionId",
    }
    assert states["ReportOrphan"]["Parameters"] == {
        "requestId.$": "$.requestId",
        "productId.$": "$.upload.productId",
        "productName.$": "$.upload.productName",
        "s3Key.$": "$.upload.s3Key",
        "startedAt.$": "$$.Execution.StartTime",
        # How Compensate ended (Compensate's catch put its error there).
        "error.$": "$.compensationError.Error",
        "sessionId.$": "$.upload.sessionId",
    }


def test_a_failed_task_says_to_compensate_which_state_failed_and_with_what(states):
    # Store's error took the body's place ($.body); Record's is at $.error. Neither keeps the
    # cause: what the client gets after them is InternalError (see Compensated).
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
    # After Store nothing reads the body: StoreFailed and ContentMismatchFound read only the
    # error that replaced it.
    for name in ("Record", "RecordFailed", "Compensate", "ReportOrphan"):
        text = json.dumps(states[name].get("Parameters"))
        assert "fileContent" not in text
        assert "$.body" not in text
    assert body_paths(states["StoreFailed"]) == ["$.body.Error"]
    assert body_paths(states["ContentMismatchFound"]) == ["$.body.Error", "$.body.Cause"]


def body_paths(state):
    """The paths under $.body a state's parameters read, in order."""
    return re.findall(r'"(\$\.body[^"]*)"', json.dumps(state["Parameters"]))


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
        "SessionNotFound",
        "SessionNotOpen",
        "TooManySessions",
    }
    assert states["Rejected"] == {
        "Type": "Fail",
        "ErrorPath": "$.body.Error",
        "CausePath": "$.body.Cause",
    }


def test_a_conflict_from_store_is_rejected_without_compensation(states):
    # The claim and the item's lease come before the PUT: an IdempotencyConflict or an
    # UploadInProgress (or a session that is not open) stored nothing, so it ends in Rejected;
    # the client-error catch comes before the catches that compensate.
    assert states["Store"]["Catch"] == [
        {"ErrorEquals": list(CLIENT_ERROR_NAMES), "ResultPath": "$.body", "Next": "Rejected"},
        {
            "ErrorEquals": ["ContentMismatch"],
            "ResultPath": "$.body",
            "Next": "ContentMismatchFound",
        },
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.body", "Next": "StoreFailed"},
    ]


def test_a_content_mismatch_is_compensated_then_rejected_with_its_cause(states):
    """A session's file whose first bytes contradict its content type is found after it landed:
    compensated like any failed Store (no lease or write in flight), then a 400 with Store's
    message, not an internal error."""
    mismatch = ContentMismatch.__name__
    assert mismatch not in CLIENT_ERROR_NAMES  # those end in Rejected, uncompensated
    assert mismatch in SETTLED_STORE_ERRORS  # Compensate may release the item's lease at once
    assert states["ContentMismatchFound"] == {
        "Type": "Pass",
        "Parameters": {
            "requestId.$": "$.requestId",
            "upload.$": "$.upload",
            # The error and its cause (the task's message for the client) both kept.
            "failure": {"state": "Store", "error.$": "$.body.Error", "cause.$": "$.body.Cause"},
        },
        "Next": "Compensate",
    }
    # Compensated: only ContentMismatchFound sets a cause, so only it ends in ContentRejected.
    assert states["Compensate"]["Next"] == "Compensated"
    assert states["Compensated"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.failure.cause", "IsPresent": True, "Next": "ContentRejected"}],
        "Default": "UploadFailed",
    }
    setting_cause = {
        name
        for name, state in states.items()
        if state["Type"] == "Pass" and "cause.$" in state["Parameters"].get("failure", {})
    }
    assert setting_cause == {"ContentMismatchFound"}
    assert states["ContentRejected"] == {
        "Type": "Fail",
        "ErrorPath": "$.failure.error",
        "CausePath": "$.failure.cause",
    }
    # The response template answers it as an invalid request, with the task's message.
    outcome = WORKFLOW_ERRORS[mismatch]
    assert (outcome.status, outcome.code, outcome.from_task) == (400, "ValidationError", True)


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
    # A compensated failure ends in UploadFailed unless it was a content mismatch.
    assert states["Compensate"]["Next"] == "Compensated"
    assert states["Compensated"]["Default"] == "UploadFailed"
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
    assert fixed == {"InternalError", "CompensationFailed"}
    # The Fail states that take the error from the state: Rejected (a client error, caught by
    # name) and ContentRejected (Store's ContentMismatch, the only failure with a cause).
    from_state = {name for name, s in states.items() if s["Type"] == "Fail" and "Error" not in s}
    assert from_state == {"Rejected", "ContentRejected"}
    assert fixed | set(CLIENT_ERROR_NAMES) | {ContentMismatch.__name__} <= set(WORKFLOW_ERRORS)


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
    role_id = logical_id_with_prefix(template, "AWS::IAM::Role", UPLOAD_WORKFLOW + "Role")
    granted = permissions(role_statements(template, role_id))
    invoke = {(a, r) for a, r, _ in granted if a.startswith("lambda:")}
    functions = [function_arn(template, title) for title in WORKFLOW_FUNCTIONS]
    assert invoke == {("lambda:InvokeFunction", arn) for arn in functions} | {
        ("lambda:InvokeFunction", f"{arn}:*") for arn in functions
    }
    # Not the sweep (it runs on its schedule, outside the workflow), nor the sessions' task.
    for title in ("Sweep", "Session"):
        assert function_arn(template, title) not in {r for _, r in invoke}
    others = {a for a, _, _ in granted if not a.startswith("lambda:")}
    # Log delivery and X-Ray: actions without resource-level permissions.
    assert {a.split(":")[0] for a in others} == {"logs", "xray"}
    assert {r for a, r, _ in granted if not a.startswith("lambda:")} == {"*"}
    assert len(resources_of_type(template, "AWS::Lambda::Function")) == 7


def test_compensate_knows_its_retry_from_the_same_constant(states):
    """Compensate decides "a retry remains" from tasks.contract.timing.TASK_RETRY: it must be
    the Compensate Retry's MaxAttempts, and that Retry must match TransientStorageError."""
    from tasks.contract.errors import TransientStorageError
    from tasks.contract.timing import TASK_RETRY

    [retry] = states["Compensate"]["Retry"]
    assert retry["MaxAttempts"] == TASK_RETRY.max_attempts
    assert TransientStorageError.__name__ in retry["ErrorEquals"]
