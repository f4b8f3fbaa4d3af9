"""The time budget, recomputed from the synthesized template (tasks.contract.timing says why each
number is what it is; infra/state_machine.py writes the sum down).

Three clocks nest, each ending strictly inside the next: a task's SDK deadline inside its
function's timeout, the function's timeout inside its Task state's TimeoutSeconds; the longest
path through each workflow (the upload workflow, the sessions workflow) inside its state
machine's TimeoutSeconds, inside API Gateway's 29 s.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from tasks.contract import ledger, names
from tasks.contract.idempotency import CLAIM_SECONDS
from tasks.contract.timing import (
    API_GATEWAY_TIMEOUT_SECONDS,
    COMPLETE_SDK,
    DYNAMODB_SDK,
    S3_SDK,
    SESSION_READ_SDK,
    START_MARGIN_SECONDS,
    STATE_MACHINE_TIMEOUT_SECONDS,
    SWEEP_SDK,
    TIMINGS,
    WORKFLOW_PATH,
    SdkBudget,
    workflow_worst_case_seconds,
)

from .infra_helpers import (
    SESSIONS_WORKFLOW,
    UPLOAD_WORKFLOW,
    WORKFLOWS,
    api_methods,
    logical_id_with_prefix,
    only,
    permissions,
    render,
    resources_of_type,
    role_statements,
    state_machine_definition,
)

# The longest path: Validate, Store, Record fails, Compensate crashes or times out, ReportOrphan.
LONGEST_PATH = (
    "Validate",
    "Store",
    "DiscardFileContent",
    "AlreadyUploaded",
    "Record",
    "RecordFailed",
    "Compensate",
    "ReportOrphan",
    "CompensationFailed",
)
WORST_CASE_SECONDS = 27  # (2+1+2) + (3+1+3) + (2+1+2) + (3+1+3) + 3
# The sessions workflow: one Session task, retried once (infra/sessions.py).
SESSIONS_PATH = ("Session", "SessionFailed")
SESSIONS_WORST_CASE_SECONDS = 7  # 3 + 1 + 3
# Step Functions' defaults for a Retrier's omitted fields.
DEFAULT_INTERVAL_SECONDS = 1
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF_RATE = 2.0
# Which AWS services each task calls, with the client budgets it calls them with (the
# services are cross-checked against its role).
SDK_BUDGETS: dict[str, dict[str, tuple[SdkBudget, ...]]] = {
    # Only a session's commit: the session and its parts, one short attempt each.
    names.VALIDATE: {"dynamodb": (SESSION_READ_SDK,), "s3": (SESSION_READ_SDK,)},
    # A session's commit also completes its multipart upload and reads the first bytes back.
    names.STORE: {"dynamodb": (DYNAMODB_SDK,), "s3": (S3_SDK, COMPLETE_SDK, SESSION_READ_SDK)},
    names.RECORD: {"dynamodb": (DYNAMODB_SDK,)},
    names.COMPENSATE: {"dynamodb": (DYNAMODB_SDK,), "s3": (S3_SDK,)},
    names.REPORT: {"dynamodb": (DYNAMODB_SDK,), "s3": (S3_SDK,)},
    names.SWEEP: {"dynamodb": (SWEEP_SDK,), "s3": (SWEEP_SDK,)},
    names.SESSION: {"dynamodb": (DYNAMODB_SDK,), "s3": (S3_SDK,)},
}
SERVICES_CALLED = {task: set(budgets) for task, budgets in SDK_BUDGETS.items()}
# The task states of each workflow, by the task they invoke.
INVOKED = {
    UPLOAD_WORKFLOW: {
        names.VALIDATE: "Validate",
        names.STORE: "Store",
        names.RECORD: "Record",
        names.COMPENSATE: "Compensate",
        names.REPORT: "ReportOrphan",
    },
    SESSIONS_WORKFLOW: {names.SESSION: "Session"},
}


@pytest.fixture(scope="module")
def template(default_stack):
    return default_stack.template_json


@pytest.fixture(scope="module")
def definition(template):
    return state_machine_definition(template)


@pytest.fixture(scope="module")
def states(definition):
    return definition["States"]


@pytest.fixture(scope="module")
def sessions_definition(template):
    return state_machine_definition(template, SESSIONS_WORKFLOW)


def functions_by_task(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every task function by the task its handler runs (``tasks.<task>.handler``)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, function in resources_of_type(template, "AWS::Lambda::Function").items():
        match = re.fullmatch(r"tasks\.(\w+)\.handler", function["Properties"]["Handler"])
        if match:
            found[match[1]] = (logical_id, function["Properties"])
    return found


def task_of_state(template: dict[str, Any], state: dict[str, Any]) -> str:
    """The task a Task state invokes, read from its Resource (the function's ARN)."""
    resource = render(state["Resource"])
    for task, (logical_id, _) in functions_by_task(template).items():
        if resource == "${" + logical_id + ".Arn}":
            return task
    raise AssertionError(f"{resource} is no task function")


def task_worst_case_seconds(state: dict[str, Any]) -> float:
    """Every attempt runs into the state's TimeoutSeconds; every retrier exhausts its attempts,
    waiting its full backoff before each retry."""
    attempts, waits = 1, 0.0
    for retrier in state.get("Retry", []):
        interval = retrier.get("IntervalSeconds", DEFAULT_INTERVAL_SECONDS)
        backoff = retrier.get("BackoffRate", DEFAULT_BACKOFF_RATE)
        max_attempts = retrier.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS)
        attempts += max_attempts
        waits += sum(interval * backoff**k for k in range(max_attempts))
    return float(attempts * state["TimeoutSeconds"] + waits)


def state_seconds(state: dict[str, Any]) -> float:
    assert state["Type"] in ("Task", "Pass", "Choice", "Succeed", "Fail"), state["Type"]
    # No Wait state.
    assert "Seconds" not in state
    assert "Timestamp" not in state
    return task_worst_case_seconds(state) if state["Type"] == "Task" else 0.0


def following(state: dict[str, Any]) -> list[str]:
    nexts = [state["Next"]] if "Next" in state else []
    nexts += [choice["Next"] for choice in state.get("Choices", [])]
    nexts += [state["Default"]] if "Default" in state else []
    return nexts + [catch["Next"] for catch in state.get("Catch", [])]


def longest_seconds(states: dict[str, Any], name: str, seen: tuple[str, ...] = ()) -> float:
    """The longest any path from ``name`` to an end can take."""
    assert name not in seen, f"cycle through {name}"
    state = states[name]
    rest = [longest_seconds(states, n, (*seen, name)) for n in following(state)]
    return state_seconds(state) + max(rest, default=0.0)


def path_seconds(states: dict[str, Any], path: tuple[str, ...]) -> float:
    for here, there in itertools.pairwise(path):
        assert there in following(states[here]), f"{here} cannot go to {there}"
    assert states[path[-1]]["Type"] in ("Succeed", "Fail")
    return sum(state_seconds(states[name]) for name in path)


def test_the_longest_path_is_the_one_the_budget_names(template, definition, states):
    worst = path_seconds(states, LONGEST_PATH)
    # It is the longest of all paths, and the contract's own figure.
    assert longest_seconds(states, definition["StartAt"]) == worst
    assert worst == WORST_CASE_SECONDS == workflow_worst_case_seconds()
    # The tasks along it are the contract's WORKFLOW_PATH, in its order.
    along = [name for name in LONGEST_PATH if states[name]["Type"] == "Task"]
    assert along == ["Validate", "Store", "Record", "Compensate", "ReportOrphan"]
    assert tuple(task_of_state(template, states[name]) for name in along) == WORKFLOW_PATH


def test_the_longest_path_ends_before_the_state_machine_and_api_gateway_give_up(
    default_stack, definition, states
):
    worst = longest_seconds(states, definition["StartAt"])
    assert definition["TimeoutSeconds"] == STATE_MACHINE_TIMEOUT_SECONDS == 28
    assert worst < definition["TimeoutSeconds"] < API_GATEWAY_TIMEOUT_SECONDS == 29
    # A live execution never outlasts its Idempotency-Key claim or its item's lease.
    assert definition["TimeoutSeconds"] < CLAIM_SECONDS
    assert definition["TimeoutSeconds"] < ledger.LEASE_SECONDS


def test_every_integration_waits_api_gateways_default_and_maximum(default_stack):
    """Each route's StartSyncExecution (POST /upload and the four /uploads routes) waits the
    default 29 s, beyond both state machines' TimeoutSeconds."""
    integrations = {
        route: method["Integration"]
        for route, method in api_methods(default_stack.template_json).items()
    }
    assert len(integrations) == 5
    for route, integration in integrations.items():
        assert render(integration["Uri"]).endswith(":states:action/StartSyncExecution"), route
        assert integration.get("TimeoutInMillis", 29_000) == API_GATEWAY_TIMEOUT_SECONDS * 1000


def test_the_sessions_workflow_ends_long_before_its_timeout(sessions_definition):
    states = sessions_definition["States"]
    worst = longest_seconds(states, sessions_definition["StartAt"])
    assert worst == path_seconds(states, SESSIONS_PATH) == SESSIONS_WORST_CASE_SECONDS
    assert worst == TIMINGS[names.SESSION].worst_case_seconds()
    assert sessions_definition["TimeoutSeconds"] == STATE_MACHINE_TIMEOUT_SECONDS
    assert worst < sessions_definition["TimeoutSeconds"] < API_GATEWAY_TIMEOUT_SECONDS


def test_other_paths(states):
    # From Store on: Store, Record, Compensate, ReportOrphan.
    assert longest_seconds(states, "Store") == 7 + 5 + 7 + 3
    # A Store failure goes to Compensate directly.
    store_failed = ("Validate", "Store", "StoreFailed", "Compensate", "ReportOrphan")
    assert path_seconds(states, (*store_failed, "CompensationFailed")) == 5 + 7 + 7 + 3
    # An idempotent replay: Validate, Store (its claim inside the same timeout), Replayed.
    assert (
        path_seconds(
            states, ("Validate", "Store", "DiscardFileContent", "AlreadyUploaded", "Replayed")
        )
        == 5 + 7
    )
    assert longest_seconds(states, "Compensate") == 7 + 3
    assert longest_seconds(states, "ReportOrphan") == 3


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_every_task_state_runs_its_function_with_the_start_margin(template, workflow):
    states = state_machine_definition(template, workflow)["States"]
    invoked = {}
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        task = task_of_state(template, state)
        invoked[task] = name
        _, function = functions_by_task(template)[task]
        timeout = function["Timeout"]
        # Step Functions' clock also counts the invoke and a cold start.
        assert state["TimeoutSeconds"] == timeout + START_MARGIN_SECONDS, name
        assert state["TimeoutSeconds"] > timeout, name
        assert state["TimeoutSeconds"] == TIMINGS[task].task_timeout_seconds, name
        retry = TIMINGS[task].retry
        if retry is None:
            assert "Retry" not in state, name
        else:
            assert [
                (r["MaxAttempts"], r["IntervalSeconds"], r["BackoffRate"]) for r in state["Retry"]
            ] == [(retry.max_attempts, retry.interval_seconds, retry.backoff_rate)], name
        assert task_worst_case_seconds(state) == TIMINGS[task].worst_case_seconds(), name
    # Every task of the workflow once.
    assert invoked == INVOKED[workflow]


def test_every_task_but_the_sweep_runs_in_exactly_one_workflow():
    upload, sessions = (set(INVOKED[workflow]) for workflow in WORKFLOWS)
    assert upload == set(names.WORKFLOW_TASKS) == set(WORKFLOW_PATH)
    assert sessions == {names.SESSION}
    # The sweep runs on its schedule, outside both.
    assert set(names.TASKS) - upload - sessions == {names.SWEEP}


@pytest.mark.parametrize("task", names.TASKS)
def test_the_function_timeout_is_the_contracts_and_its_sdk_deadline_ends_inside_it(template, task):
    _, function = functions_by_task(template)[task]
    timeout = function["Timeout"]
    assert timeout == TIMINGS[task].lambda_timeout_seconds
    assert 0 < TIMINGS[task].sdk_deadline_seconds < timeout


def test_every_function_is_a_task_with_a_timing(template):
    assert set(functions_by_task(template)) == set(names.TASKS) == set(TIMINGS)
    assert len(resources_of_type(template, "AWS::Lambda::Function")) == len(names.TASKS)


@pytest.mark.parametrize("task", names.TASKS)
def test_the_services_a_task_calls_are_the_ones_its_role_grants(template, task):
    title = names.task_title(task)
    role = logical_id_with_prefix(template, "AWS::IAM::Role", f"Tasks{title}Role")
    granted = {
        action.split(":")[0] for action, _, _ in permissions(role_statements(template, role))
    }
    assert granted & {"dynamodb", "s3"} == SERVICES_CALLED[task]


@pytest.mark.parametrize(
    ("task", "service"),
    [
        pytest.param(task, service, id=f"{task}-{service}")
        for task in names.TASKS
        for service in sorted(SERVICES_CALLED[task])
    ],
)
def test_one_attempt_of_each_sdk_call_fits_in_the_sdk_deadline(task, service):
    """tasks/core/aws.py refuses an attempt that could outlive the deadline: a budget whose one
    attempt does not fit would make every call of that service fail."""
    for budget in SDK_BUDGETS[task][service]:
        assert budget.attempt_seconds <= TIMINGS[task].sdk_deadline_seconds, budget


def test_the_sweep_ends_before_its_next_run(template):
    _, schedule = only(template, "AWS::Scheduler::Schedule")
    match = re.fullmatch(r"rate\((\d+) minutes\)", schedule["Properties"]["ScheduleExpression"])
    assert match
    _, sweep = functions_by_task(template)[names.SWEEP]
    assert sweep["Timeout"] < int(match[1]) * 60
