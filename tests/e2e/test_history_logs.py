"""Local mode writes execution history as Step Functions does for Express workflows: one JSON log
event per history event in the state machine's log group, and the tasks' Powertools lines in
their functions' log groups (the format is described in ops/history.py)."""

from __future__ import annotations

import json
from typing import Any

from local.emulator import Emulator
from tests.e2e.conftest import Client, make_upload

EXPRESS_LOG_FIELDS = [
    "id",
    "type",
    "details",
    "previous_event_id",
    "event_timestamp",
    "execution_arn",
    "redrive_count",
]


def _group(emulator: Emulator, prefix: str) -> str:
    names = [
        g["logGroupName"]
        for g in emulator.client("logs").describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
    ]
    assert len(names) == 1, names
    return str(names[0])


def _records(emulator: Emulator, group: str, term: str) -> list[dict[str, Any]]:
    logs = emulator.client("logs")
    paginator = logs.get_paginator("filter_log_events")
    records: list[dict[str, Any]] = []
    for page in paginator.paginate(logGroupName=group, filterPattern=f'"{term}"'):
        records.extend(page["events"])
    return [r for r in records if term in r["message"]]


def test_history_and_task_logs_of_a_compensated_upload(emulator: Emulator, client: Client) -> None:
    upload = make_upload()
    emulator.faults.add("dynamodb", "TransactWriteItems", task="record")
    response = client.post(upload.body)
    assert response.status_code == 500
    request_id = response.json()["requestId"]

    stack = emulator.assembly.stack_name if emulator.assembly else "UploadService"
    # The group the stack's output names, under /aws/vendedlogs/states/ (infra.log_groups).
    machine_group = emulator.outputs["StateMachineLogGroupName"]
    assert machine_group.startswith(f"/aws/vendedlogs/states/{stack}-")
    assert machine_group.endswith("/upload-workflow")
    records = _records(emulator, _group(emulator, machine_group), request_id)
    messages = [json.loads(r["message"]) for r in records]
    assert messages, "no history events were logged"

    # the AWS Express format, field for field, with flat details and decimal strings
    assert all(list(m) == EXPRESS_LOG_FIELDS for m in messages)
    by_id = {int(m["id"]): m for m in messages}
    ids = sorted(by_id)
    assert ids == list(range(1, len(ids) + 1))
    arns = {m["execution_arn"] for m in messages}
    assert len(arns) == 1
    (execution_arn,) = arns
    assert execution_arn.split(":")[5:8] == ["express", "WorkflowStateMachine8F1B1C15", request_id]
    assert {m["redrive_count"] for m in messages} == {"0"}
    assert (by_id[1]["type"], by_id[ids[-1]]["type"]) == ("ExecutionStarted", "ExecutionFailed")
    assert by_id[ids[-1]]["details"] == {
        "error": "InternalError",
        "cause": "The upload failed and nothing was stored. It is safe to retry.",
    }
    entered = [m for m in messages if m["type"] == "TaskStateEntered"]
    assert entered[0]["details"] == {"inputDetails": {"truncated": False}, "name": "Validate"}
    failed = [m["details"]["error"] for m in messages if m["type"] == "LambdaFunctionFailed"]
    assert failed == ["TransientStorageError", "TransientStorageError"]

    # includeExecutionData is off: no input or output anywhere, so never the file
    assert not any({"input", "output"} & set(m["details"]) for m in messages)
    assert upload.body["fileContent"] not in json.dumps(messages)

    # each event points back to an earlier one (0 for the first state, as AWS logs it)
    for event_id, message in by_id.items():
        previous = int(message["previous_event_id"])
        assert 0 <= previous < event_id
        assert previous == 0 or previous in by_id

    # the execution's own event times: in order, not all equal, and the record time is the same
    times = [int(by_id[i]["event_timestamp"]) for i in ids]
    assert times == sorted(times)
    assert times[-1] - times[0] >= 900  # Record's retry waits its interval
    assert len(set(times)) >= 5  # (a warm run puts several events in one millisecond)
    assert sorted(r["timestamp"] for r in records) == times
    streams = {r["logStreamName"] for r in records}
    assert len(streams) == 1
    assert next(iter(streams)).startswith("states/WorkflowStateMachine8F1B1C15/")

    # each task's Powertools lines, in its own group, carry the request id
    for task, count in (("Validate", 1), ("Store", 1), ("Record", 2), ("Compensate", 1)):
        lines = [
            json.loads(r["message"])
            for r in _records(
                emulator, _group(emulator, f"{stack}-Tasks{task}LogGroup"), request_id
            )
            if r["message"].startswith("{")
        ]
        assert len(lines) >= count, (task, lines)
        assert {line["correlation_id"] for line in lines} == {request_id}
        assert {line["task"] for line in lines} == {task.lower()}
