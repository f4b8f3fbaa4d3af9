"""The CLI end to end against moto's CloudWatch Logs and CloudFormation-free discovery."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from ops.cli import app
from tests.ops import builders as b
from tests.ops.builders import OTHER, RID

MACHINE_GROUP = "UploadService-WorkflowLogGroupC1B3E9D3"
TASK_GROUPS = {
    "Validate": "UploadService-TasksValidateLogGroup165A122C",
    "Store": "UploadService-TasksStoreLogGroup07021750",
    "Record": "UploadService-TasksRecordLogGroup04514878",
    "Compensate": "UploadService-TasksCompensateLogGroup6FD796EA",
}
ENDPOINT = "https://logs.us-east-1.amazonaws.com"  # moto intercepts it
THIRD = "dead0000-1111-2222-3333-444455556666"


def _put(client: Any, group: str, records: list[dict[str, Any]]) -> None:
    client.create_log_stream(logGroupName=group, logStreamName="stream")
    ordered = sorted(records, key=lambda r: r["timestamp"])
    client.put_log_events(
        logGroupName=group,
        logStreamName="stream",
        logEvents=[{"timestamp": r["timestamp"], "message": r["message"]} for r in ordered],
    )


@pytest.fixture
def populated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    now = int(time.time() * 1000) - 60_000
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        for group in (MACHINE_GROUP, *TASK_GROUPS.values(), "UploadService-EdgeAccessLogs1"):
            client.create_log_group(logGroupName=group)
        runs = [
            b.success(OTHER, now),
            b.compensated(RID, now + 1000),
            b.validation_failure(THIRD, now + 2000),
        ]
        _put(client, MACHINE_GROUP, [r for run in runs for r in run.records])
        _put(
            client,
            TASK_GROUPS["Validate"],
            [
                {"timestamp": now + 1003, "message": "START RequestId: x Version: $LATEST"},
                b.task_line(OTHER, "validate", "Request valid", now + 5, productId="P-OTHER"),
                b.task_line(RID, "validate", "Request valid", now + 1005, productId="P-1"),
                b.task_line(THIRD, "validate", "Request rejected", now + 2005),
            ],
        )
        _put(
            client,
            TASK_GROUPS["Record"],
            [
                b.task_line(RID, "record", "Recording failed", now + 1080, "ERROR"),
                b.task_line(RID, "record", "Recording failed", now + 1100, "ERROR"),
            ],
        )
        _put(
            client,
            TASK_GROUPS["Compensate"],
            [b.task_line(RID, "compensate", "Compensated", now + 1130, deletedVersionIds=["v1"])],
        )
        yield


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.mark.usefixtures("populated")
def test_history_json_from_discovered_groups() -> None:
    result = _run("history", RID, "--json", "--endpoint-url", ENDPOINT)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["requestId"], document["executionArn"]) == (RID, b.arn(RID))
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "FAILED",
        500,
        "InternalError",
    )
    assert [(s["name"], s["attempts"], s["error"]) for s in document["states"]] == [
        ("Validate", 1, None),
        ("Store", 1, None),
        ("DiscardFileContent", 0, None),
        ("Record", 2, "TransientStorageError"),
        ("Compensate", 1, None),
        ("UploadFailed", 0, None),
    ]
    assert len(document["events"]) == len(b.compensated().records)
    assert [(t["task"], t["message"]) for t in document["taskLogs"]] == [
        ("validate", "Request valid"),
        ("record", "Recording failed"),
        ("record", "Recording failed"),
        ("compensate", "Compensated"),
    ]


@pytest.mark.usefixtures("populated")
def test_history_by_execution_arn_with_explicit_groups_and_human_output() -> None:
    result = _run(
        "history",
        b.arn(THIRD),
        "--state-machine-log-group",
        MACHINE_GROUP,
        "--task-log-group",
        TASK_GROUPS["Validate"],
    )
    assert result.exit_code == 0, result.output
    assert f"Request {THIRD}" in result.output
    assert "FAILED" in result.output
    assert "error ValidationError" in result.output
    assert "-> HTTP 400" in result.output
    assert "Request rejected" in result.output


@pytest.mark.usefixtures("populated")
def test_history_of_an_unknown_request_exits_1() -> None:
    result = _run("history", "nope-0000", "--json", "--state-machine-log-group", MACHINE_GROUP)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "UNKNOWN"


@pytest.mark.usefixtures("populated")
def test_executions_json() -> None:
    result = _run("executions", "--json", "--since", "1h", "--endpoint-url", ENDPOINT)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["executions"]
    assert [
        (r["requestId"], r["productId"], r["status"], r["httpStatus"], r["error"], r["durationMs"])
        for r in rows
    ] == [
        (OTHER, "P-OTHER", "SUCCEEDED", 200, None, 97),
        (RID, "P-1", "FAILED", 500, "InternalError", 152),
        (THIRD, None, "FAILED", 400, "ValidationError", 11),
    ]


@pytest.mark.usefixtures("populated")
def test_executions_filters() -> None:
    args = ("executions", "--json", "--state-machine-log-group", MACHINE_GROUP)
    failed = json.loads(_run(*args, "--status", "failed").output)["executions"]
    assert [r["requestId"] for r in failed] == [RID, THIRD]
    product = json.loads(_run(*args, "--product", "P-1", *_task_args()).output)["executions"]
    assert [r["requestId"] for r in product] == [RID]
    assert _run(*args, "--status", "nope").exit_code == 2


def _task_args() -> list[str]:
    return [arg for group in TASK_GROUPS.values() for arg in ("--task-log-group", group)]


@pytest.mark.usefixtures("populated")
def test_executions_human() -> None:
    result = _run("executions", "--endpoint-url", ENDPOINT)
    assert result.exit_code == 0, result.output
    assert "3 execution(s)" in result.output
    assert RID in result.output
    assert "InternalError" in result.output


def test_since_must_be_a_duration() -> None:
    result = _run("executions", "--since", "yesterday", "--state-machine-log-group", "g")
    assert result.exit_code == 2
