"""The sessions workflow (infra/sessions.py) parsed from the synthesized template: one Session task
whose result is the client's body, its errors routed to the contract's outcomes, and a role that
may invoke that task only. (Logging and tracing: test_state_machine.py, for both workflows; its
time budget: test_time_budget.py.)"""

from __future__ import annotations

import pytest

from tasks.contract.errors import CLIENT_ERROR_NAMES, INTERNAL_ERROR_MESSAGE, WORKFLOW_ERRORS

from .infra_helpers import (
    SESSIONS_WORKFLOW,
    logical_id_with_prefix,
    permissions,
    render,
    role_statements,
    state_machine_definition,
)

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


@pytest.fixture(scope="module")
def definition(default_stack):
    return state_machine_definition(default_stack.template_json, SESSIONS_WORKFLOW)


@pytest.fixture(scope="module")
def states(definition):
    return definition["States"]


def function_arn(template, title):
    logical_id = logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{title}Func")
    return "${" + logical_id + ".Arn}"


def test_states_and_their_transitions(definition, states):
    assert definition["StartAt"] == "Session"
    assert definition["TimeoutSeconds"] == 28
    assert definition["Comment"] == "Upload sessions: open, sign parts, describe, abort"
    assert set(states) == {"Session", "Answered", "Rejected", "SessionFailed"}
    session = states["Session"]
    assert session["Type"] == "Task"
    assert session["Next"] == "Answered"
    # The task's result is the client's body, the execution's output.
    assert session["ResultPath"] == "$.answer"
    assert states["Answered"] == {"Type": "Succeed", "OutputPath": "$.answer"}


def test_the_session_task_invokes_the_session_function_with_the_request(default_stack, states):
    session = states["Session"]
    # The function ARN as Resource: the task result is the Lambda payload itself.
    assert render(session["Resource"]) == function_arn(default_stack.template_json, "Session")
    for field in ("ResultSelector", "OutputPath", "InputPath"):
        assert field not in session
    # What infra/templates/session_request.vtl puts in the execution input, passed on as is.
    assert session["Parameters"] == {
        "operation.$": "$.operation",
        "requestId.$": "$.requestId",
        "caller.$": "$.caller",
        "uploadId.$": "$.uploadId",
        "body.$": "$.body",
    }


def test_client_errors_end_in_rejected_and_anything_else_in_an_internal_error(states):
    assert states["Session"]["Catch"] == [
        {"ErrorEquals": list(CLIENT_ERROR_NAMES), "ResultPath": "$.error", "Next": "Rejected"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "SessionFailed"},
    ]
    # The task's error name and its message (the cause) reach the response template.
    assert states["Rejected"] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }
    assert states["SessionFailed"] == {
        "Type": "Fail",
        "Error": "InternalError",
        "Cause": INTERNAL_ERROR_MESSAGE,
    }


def test_fail_states_name_errors_the_response_template_knows(states):
    fixed = {s["Error"] for s in states.values() if s["Type"] == "Fail" and "Error" in s}
    assert fixed == {"InternalError"}
    # Rejected's error is one of the names its catch matched.
    [client_catch] = [c for c in states["Session"]["Catch"] if c["Next"] == "Rejected"]
    assert fixed | set(client_catch["ErrorEquals"]) <= set(WORKFLOW_ERRORS)
    assert {
        name: (WORKFLOW_ERRORS[name].status, WORKFLOW_ERRORS[name].code)
        for name in ("SessionNotFound", "SessionNotOpen", "TooManySessions")
    } == {
        "SessionNotFound": (404, "NotFound"),
        "SessionNotOpen": (409, "SessionNotOpen"),
        "TooManySessions": (429, "TooManySessions"),
    }


def test_the_task_retries_only_transient_errors_and_catches_everything(states):
    session = states["Session"]
    assert session["Retry"] == [
        {
            "ErrorEquals": [*LAMBDA_SERVICE_ERRORS, "TransientStorageError"],
            "IntervalSeconds": 1,
            "MaxAttempts": 1,
            "BackoffRate": 2,
        }
    ]
    assert session["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    assert session["TimeoutSeconds"] == 3  # the function's 2 s plus the start margin


def test_state_machine_role_may_invoke_the_session_function_only(default_stack):
    template = default_stack.template_json
    role_id = logical_id_with_prefix(template, "AWS::IAM::Role", SESSIONS_WORKFLOW + "Role")
    granted = permissions(role_statements(template, role_id))
    invoke = {(a, r) for a, r, _ in granted if a.startswith("lambda:")}
    arn = function_arn(template, "Session")
    assert invoke == {("lambda:InvokeFunction", arn), ("lambda:InvokeFunction", f"{arn}:*")}
    others = {a for a, _, _ in granted if not a.startswith("lambda:")}
    # Log delivery and X-Ray: actions without resource-level permissions.
    assert {a.split(":")[0] for a in others} == {"logs", "xray"}
    assert {r for a, r, _ in granted if not a.startswith("lambda:")} == {"*"}
    # The same log and X-Ray actions as the upload workflow's role, nothing more.
    upload_role = logical_id_with_prefix(template, "AWS::IAM::Role", "WorkflowStateMachineRole")
    upload_others = {
        a for a, _, _ in permissions(role_statements(template, upload_role)) if "lambda:" not in a
    }
    assert others == upload_others
