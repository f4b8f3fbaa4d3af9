"""Defensive parsing of log records and log group discovery (no AWS)."""

from __future__ import annotations

import json

import pytest

from ops import logs
from ops.history import HistoryEvent, TaskLogLine
from tests.ops.builders import RID, T0, arn, task_line


def _message(**fields: object) -> dict[str, object]:
    return {
        "id": "17",
        "type": "LambdaFunctionFailed",
        "details": {"error": "TransientStorageError", "cause": "c"},
        "previous_event_id": "16",
        "event_timestamp": str(T0 + 5),
        "execution_arn": arn(RID),
        "redrive_count": "0",
        **fields,
    }


def test_record_in_the_express_log_format() -> None:
    record = {"timestamp": T0 + 900, "message": json.dumps(_message())}  # delivered late
    assert logs.parse_history_record(record) == HistoryEvent(
        id=17,
        type="LambdaFunctionFailed",
        timestamp_ms=T0 + 5,  # the event's own time, not the record's
        previous_event_id=16,
        execution_arn=arn(RID),
        details={"error": "TransientStorageError", "cause": "c"},
    )


def test_cut_record_in_aws_field_order_is_skipped() -> None:
    """``details`` comes before ``execution_arn``: cut inside it, the execution is unknown."""
    text = json.dumps(_message(details={"error": "E", "cause": "x" * 300}))
    cut = text[: text.index("x" * 100)]
    assert logs.parse_history_record({"timestamp": T0 + 900, "message": cut}) is None


def test_cut_record_keeps_its_leading_fields_and_falls_back_to_the_record_time() -> None:
    fields = {k: v for k, v in _message().items() if k != "event_timestamp"}
    text = json.dumps({"execution_arn": fields.pop("execution_arn"), **fields})
    cut = text[: text.index('"cause"') + 12]
    event = logs.parse_history_record({"timestamp": T0 + 900, "message": cut})
    assert event is not None
    assert (event.id, event.type, event.timestamp_ms, event.truncated, event.details) == (
        17,
        "LambdaFunctionFailed",
        T0 + 900,
        True,
        {"error": "TransientStorageError"},
    )


def test_details_that_are_not_an_object_are_empty() -> None:
    event = logs.parse_history_record({"timestamp": T0, "message": json.dumps(_message(details=3))})
    assert event is not None
    assert event.details == {}


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


MACHINE = "/aws/vendedlogs/states/UploadService-1c2fa620-982a-11e3-aff7-50e2416294e0/"


def test_discovery_from_names() -> None:
    names = [
        "UploadService-EdgeAccessLogsC159D9EF",
        "UploadService-TasksCompensateLogGroup6FD796EA",
        "UploadService-TasksRecordLogGroup04514878",
        "UploadService-TasksStoreLogGroup07021750",
        "UploadService-TasksValidateLogGroup165A122C",
        f"{MACHINE}sessions-workflow",
        f"{MACHINE}upload-workflow",
        # Another stack's, whose name starts with this one's.
        "/aws/vendedlogs/states/UploadService-Dev-2d3fa620-982a-11e3-aff7-50e2416294e0/"
        "upload-workflow",
    ]
    assert logs.from_log_group_names(names, "UploadService") == logs.LogGroups(
        f"{MACHINE}upload-workflow",
        {
            "Compensate": "UploadService-TasksCompensateLogGroup6FD796EA",
            "Record": "UploadService-TasksRecordLogGroup04514878",
            "Store": "UploadService-TasksStoreLogGroup07021750",
            "Validate": "UploadService-TasksValidateLogGroup165A122C",
        },
    )
    with pytest.raises(logs.DiscoveryError, match="--state-machine-log-group"):
        logs.from_log_group_names(names[:6], "UploadService")


def test_quoted_term() -> None:
    assert logs.quoted_term(RID) == f'"{RID}"'
    with pytest.raises(ValueError, match="cannot search"):
        logs.quoted_term('a"b')
