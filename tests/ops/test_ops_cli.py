"""The CLI end to end against moto's CloudWatch Logs and CloudFormation-free discovery.

The log groups live in the session's local-mode moto server (under a stack name of their own):
entering ``mock_aws`` in this process would reset that server's data under every other test."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from local.emulator import Emulator
from ops.cli import app
from tests.ops import builders as b
from tests.ops.builders import OTHER, RID

STACK = f"OpsCli{uuid.uuid4().hex[:8]}"
MACHINE_GROUP = f"/aws/vendedlogs/states/{STACK}-{uuid.uuid4()}/upload-workflow"
TASK_GROUPS = {
    "Validate": f"{STACK}-TasksValidateLogGroup165A122C",
    "Store": f"{STACK}-TasksStoreLogGroup07021750",
    "Record": f"{STACK}-TasksRecordLogGroup04514878",
    "Compensate": f"{STACK}-TasksCompensateLogGroup6FD796EA",
}
THIRD = "dead0000-1111-2222-3333-444455556666"


def _put(client: Any, group: str, records: list[dict[str, Any]]) -> None:
    client.create_log_stream(logGroupName=group, logStreamName="stream")
    ordered = sorted(records, key=lambda r: r["timestamp"])
    client.put_log_events(
        logGroupName=group,
        logStreamName="stream",
        logEvents=[{"timestamp": r["timestamp"], "message": r["message"]} for r in ordered],
    )


@pytest.fixture(scope="module")
def endpoint(emulator: Emulator) -> str:
    now = int(time.time() * 1000) - 60_000
    client = emulator.client("logs")
    for group in (MACHINE_GROUP, *TASK_GROUPS.values(), f"{STACK}-EdgeAccessLogs1"):
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
    return emulator.aws_endpoint


def _run(*args: str) -> Any:
    # Output to a pipe, whatever terminal width the test session inherited (COLUMNS).
    return CliRunner().invoke(app, [*args, "--stack-name", STACK], env={"COLUMNS": None})


def test_history_json_from_discovered_groups(endpoint: str) -> None:
    result = _run("history", RID, "--json", "--endpoint-url", endpoint)
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


def test_history_by_execution_arn_with_explicit_groups_and_human_output(endpoint: str) -> None:
    result = _run(
        "history",
        b.arn(THIRD),
        "--endpoint-url",
        endpoint,
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


def test_history_of_an_unknown_request_exits_1(endpoint: str) -> None:
    args = ("--json", "--state-machine-log-group", MACHINE_GROUP, "--endpoint-url", endpoint)
    result = _run("history", "nope-0000", *args)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "UNKNOWN"


def test_history_html_writes_one_page(endpoint: str, tmp_path: Path) -> None:
    target = tmp_path / "history.html"
    result = _run("history", RID, "--html", str(target), "--endpoint-url", endpoint)
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == (f"Wrote {target}\n", "")
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert f'<code id="request-id">{RID}</code>' in page
    assert 'data-state="Compensate" data-outcome="compensation"' in page
    assert "Recording failed" in page  # the task logs of the request


@pytest.mark.parametrize(
    ("where", "reason"),
    [("missing/history.html", "No such file or directory"), (".", "Is a directory")],
)
def test_history_html_to_an_unwritable_path_is_one_line(
    endpoint: str, tmp_path: Path, where: str, reason: str
) -> None:
    target = tmp_path / where
    result = _run("history", RID, "--html", str(target), "--endpoint-url", endpoint)
    assert result.exit_code == 2
    assert result.stderr == f"Error: cannot write {target}: {reason}\n"
    assert result.stdout == ""


def test_history_html_of_an_unknown_request_writes_nothing(endpoint: str, tmp_path: Path) -> None:
    target = tmp_path / "history.html"
    args = ("--state-machine-log-group", MACHINE_GROUP, "--endpoint-url", endpoint)
    result = _run("history", "nope-0000", "--html", str(target), *args)
    assert result.exit_code == 1
    assert result.stderr == "No log events of request nope-0000 in the last 24h.\n"
    assert not target.exists()


def test_history_html_or_json_not_both(tmp_path: Path) -> None:
    result = _run("history", RID, "--json", "--html", str(tmp_path / "h.html"))
    assert result.exit_code == 2
    assert result.stderr == "Error: give --json or --html, not both\n"
    assert list(tmp_path.iterdir()) == []


def test_executions_json(endpoint: str) -> None:
    result = _run("executions", "--json", "--since", "1h", "--endpoint-url", endpoint)
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


def test_executions_filters(endpoint: str) -> None:
    args: tuple[str, ...] = ("executions", "--json", "--state-machine-log-group", MACHINE_GROUP)
    args = (*args, "--endpoint-url", endpoint)
    failed = json.loads(_run(*args, "--status", "failed").output)["executions"]
    assert [r["requestId"] for r in failed] == [RID, THIRD]
    product = json.loads(_run(*args, "--product", "P-1", *_task_args()).output)["executions"]
    assert [r["requestId"] for r in product] == [RID]
    assert _run(*args, "--status", "nope").exit_code == 2


def _task_args() -> list[str]:
    return [arg for group in TASK_GROUPS.values() for arg in ("--task-log-group", group)]


def test_executions_human(endpoint: str) -> None:
    result = _run("executions", "--endpoint-url", endpoint)
    assert result.exit_code == 0, result.output
    assert "3 execution(s)" in result.output
    assert RID in result.output
    assert "InternalError" in result.output


def test_since_must_be_a_duration() -> None:
    result = _run("executions", "--since", "yesterday", "--state-machine-log-group", "g")
    assert result.exit_code == 2


@pytest.mark.parametrize("command", [["history", RID], ["executions"], ["orphans"]])
def test_no_region_is_one_line_saying_what_to_do(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = _run(*command)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: no AWS region: pass --region, or set AWS_REGION (or a profile's region)\n"
    )
    assert "Traceback" not in result.output
