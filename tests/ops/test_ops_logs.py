"""Defensive parsing of log records and log group discovery (no AWS)."""

from __future__ import annotations

import json

import pytest

from ops import logs
from ops.history import HistoryEvent, TaskLogLine
from tests.ops.builders import RID, T0, arn, task_line


def test_local_mode_record_with_wrapped_details_and_no_event_timestamp() -> None:
    message = {
        "id": "17",
        "type": "LambdaFunctionFailed",
        "details": {
            "lambdaFunctionFailedEventDetails": {"error": "TransientStorageError", "cause": "c"}
        },
        "previous_event_id": "16",
        "execution_arn": arn(RID),
        "redrive_count": "0",
    }
    record = {"timestamp": T0, "message": json.dumps(message)}
    assert logs.parse_history_record(record) == HistoryEvent(
        id=17,
        type="LambdaFunctionFailed",
        timestamp_ms=T0,
        previous_event_id=16,
        execution_arn=arn(RID),
        details={"error": "TransientStorageError", "cause": "c"},
    )


@pytest.mark.parametrize(
    "message",
    ["", "not json", "[1, 2]", '{"id": "x", "type": "T", "execution_arn": "a"}', '{"id": "1"}'],
)
def test_unusable_history_records_are_skipped(message: str) -> None:
    assert logs.parse_history_record({"timestamp": T0, "message": message}) is None


def test_task_lines_of_the_request_only() -> None:
    group = "UploadService-TasksRecordLogGroup04514878"
    start = {"timestamp": T0, "message": f"START RequestId: {RID} Version: $LATEST"}
    other = task_line("someone-else", "record", "Metadata recorded", T0)
    mine = task_line(RID, "record", "Recording failed", T0 + 1, "ERROR", errorCode="Boom")
    parsed = [
        logs.parse_task_record(r, log_group=group, task="Record", request_id=RID)
        for r in (start, other, mine)
    ]
    assert parsed == [
        None,
        None,
        TaskLogLine(
            timestamp_ms=T0 + 1,
            task="record",
            level="ERROR",
            message="Recording failed",
            correlation_id=RID,
            log_group=group,
            fields={"errorCode": "Boom"},
        ),
    ]


def test_cut_task_line_keeps_its_correlation_id() -> None:
    record = task_line(RID, "store", "File stored", T0)
    cut = dict(record, message=record["message"][: record["message"].index('"task"')])
    line = logs.parse_task_record(cut, log_group="g", task="Store", request_id=RID)
    assert line is not None
    assert (line.task, line.message, line.fields) == ("store", cut["message"], {"truncated": True})


def test_discovery_from_stack_outputs() -> None:
    outputs = {
        "StateMachineLogGroupName": "UploadService-WorkflowLogGroupC1B3E9D3-Ab12",
        "ValidateLogGroupName": "v",
        "StoreLogGroupName": "s",
        "RecordLogGroupName": "r",
        "CompensateLogGroupName": "c",
        "ApiAccessLogGroupName": "api",
    }
    assert logs.from_stack_outputs(outputs) == logs.LogGroups(
        "UploadService-WorkflowLogGroupC1B3E9D3-Ab12",
        {"Validate": "v", "Store": "s", "Record": "r", "Compensate": "c"},
    )
    with pytest.raises(logs.DiscoveryError, match="StateMachineLogGroupName"):
        logs.from_stack_outputs({})


def test_discovery_from_names() -> None:
    names = [
        "UploadService-EdgeAccessLogsC159D9EF",
        "UploadService-TasksCompensateLogGroup6FD796EA",
        "UploadService-TasksRecordLogGroup04514878",
        "UploadService-TasksStoreLogGroup07021750",
        "UploadService-TasksValidateLogGroup165A122C",
        "UploadService-WorkflowLogGroupC1B3E9D3",
        "Other-WorkflowLogGroupAAAA",
    ]
    assert logs.from_log_group_names(names, "UploadService") == logs.LogGroups(
        "UploadService-WorkflowLogGroupC1B3E9D3",
        {
            "Compensate": "UploadService-TasksCompensateLogGroup6FD796EA",
            "Record": "UploadService-TasksRecordLogGroup04514878",
            "Store": "UploadService-TasksStoreLogGroup07021750",
            "Validate": "UploadService-TasksValidateLogGroup165A122C",
        },
    )
    with pytest.raises(logs.DiscoveryError, match="--state-machine-log-group"):
        logs.from_log_group_names(names[:5], "UploadService")


def test_quoted_term() -> None:
    assert logs.quoted_term(RID) == f'"{RID}"'
    with pytest.raises(ValueError, match="cannot search"):
        logs.quoted_term('a"b')
