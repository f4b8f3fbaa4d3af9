"""Events -> timeline model, with realistic event lists (pure functions, no AWS)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import pytest

from ops import history
from ops.logs import parse_history_record, parse_task_record
from tests.ops import builders as b
from tests.ops.builders import OTHER, RID, T0


def events(*runs: b.Run) -> list[history.HistoryEvent]:
    parsed = [parse_history_record(r) for run in runs for r in run.records]
    return [e for e in parsed if e is not None]


def model(*runs: b.Run, logs: Sequence[history.TaskLogLine] = ()) -> dict[str, Any]:
    return history.timeline_model(history.build_timeline(events(*runs), RID, logs))


def at(offset_ms: int) -> str:
    return history.iso(T0 + offset_ms) or ""


def states(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (s["name"], s["type"], s["durationMs"], s["attempts"], s["error"])
        for s in document["states"]
    ]


def test_success_exact_model() -> None:
    line = parse_task_record(
        b.task_line(RID, "validate", "Request valid", T0 + 5, productId="PROD-001", size=18),
        log_group="UploadService-TasksValidateLogGroup165A122C",
        task="Validate",
        request_id=RID,
    )
    assert line is not None
    document = model(b.success(), logs=[line])
    assert {k: v for k, v in document.items() if k not in ("events",)} == {
        "requestId": RID,
        "executionArn": b.arn(RID),
        "status": "SUCCEEDED",
        "httpStatus": 200,
        "error": None,
        "cause": None,
        "startedAt": at(0),
        "stoppedAt": at(97),
        "durationMs": 97,
        "compensated": False,
        "states": [
            {
                "name": "Validate",
                "type": "Task",
                "enteredAt": at(1),
                "exitedAt": at(14),
                "durationMs": 13,
                "attempts": 1,
                "error": None,
            },
            {
                "name": "Store",
                "type": "Task",
                "enteredAt": at(15),
                "exitedAt": at(68),
                "durationMs": 53,
                "attempts": 1,
                "error": None,
            },
            {
                "name": "DiscardFileContent",
                "type": "Pass",
                "enteredAt": at(69),
                "exitedAt": at(70),
                "durationMs": 1,
                "attempts": 0,
                "error": None,
            },
            {
                "name": "Record",
                "type": "Task",
                "enteredAt": at(71),
                "exitedAt": at(94),
                "durationMs": 23,
                "attempts": 1,
                "error": None,
            },
            {
                "name": "Uploaded",
                "type": "Succeed",
                "enteredAt": at(95),
                "exitedAt": at(96),
                "durationMs": 1,
                "attempts": 0,
                "error": None,
            },
        ],
        "taskLogs": [
            {
                "timestamp": at(5),
                "task": "validate",
                "level": "INFO",
                "message": "Request valid",
                "logGroup": "UploadService-TasksValidateLogGroup165A122C",
                "fields": {"productId": "PROD-001", "size": 18},
            }
        ],
    }
    assert [e["id"] for e in document["events"]] == list(range(1, 22))
    assert document["events"][0] == {
        "id": 1,
        "previousEventId": 0,
        "timestamp": at(0),
        "type": "ExecutionStarted",
        "state": None,
        "error": None,
        "cause": None,
        "truncated": False,
    }
    assert document["events"][-1]["type"] == "ExecutionSucceeded"


def test_validation_failure() -> None:
    document = model(b.validation_failure())
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "FAILED",
        400,
        "ValidationError",
    )
    assert document["cause"] == b.VALIDATION_CAUSE
    assert document["compensated"] is False
    assert states(document) == [
        ("Validate", "Task", 8, 1, "ValidationError"),
        ("Rejected", "Fail", None, 0, None),
    ]
    failed = [e for e in document["events"] if e["type"] == "LambdaFunctionFailed"]
    assert [(e["id"], e["error"]) for e in failed] == [(5, "ValidationError")]


def test_record_failure_is_compensated() -> None:
    document = model(b.compensated())
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "FAILED",
        500,
        "InternalError",
    )
    assert document["cause"] == b.INTERNAL_CAUSE
    assert document["compensated"] is True
    assert states(document) == [
        ("Validate", "Task", 13, 1, None),
        ("Store", "Task", 53, 1, None),
        ("DiscardFileContent", "Pass", 1, 0, None),
        ("Record", "Task", 45, 2, "TransientStorageError"),
        ("Compensate", "Task", 33, 1, None),
        ("UploadFailed", "Fail", None, 0, None),
    ]


def test_retry_that_succeeds_counts_two_attempts() -> None:
    document = model(b.retried())
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "SUCCEEDED",
        200,
        None,
    )
    record = next(s for s in document["states"] if s["name"] == "Record")
    assert (record["attempts"], record["error"], record["durationMs"]) == (
        2,
        "TransientStorageError",
        45,
    )


def test_timed_out_is_504_and_the_open_state_never_exits() -> None:
    document = model(b.timed_out())
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "TIMED_OUT",
        504,
        "States.Timeout",
    )
    assert document["durationMs"] == 25_002
    assert states(document) == [("Validate", "Task", 13, 1, None), ("Store", "Task", None, 1, None)]


def test_compensation_failure_maps_through_workflow_errors() -> None:
    run = b.Run().task("Validate", 1).task("Store", 1).passed("DiscardFileContent")
    run.task("Record", 1, failures=(("StorageError", "x"),), ok=False)
    run.task("Compensate", 1, failures=(("CompensationFailed", "y"),), ok=False)
    run.fail_state("CompensationFailed", "CompensationFailed", "reported")
    document = model(run)
    assert (document["httpStatus"], document["error"]) == (500, "CompensationFailed")
    assert states(document)[-2:] == [
        ("Compensate", "Task", 4, 1, "CompensationFailed"),
        ("CompensationFailed", "Fail", None, 0, None),
    ]


def test_unknown_error_is_500_and_missing_end_is_running() -> None:
    assert history.http_status("FAILED", "States.Runtime") == 500
    assert history.http_status("FAILED", "PayloadTooLarge") == 413
    assert history.http_status("FAILED", "IdempotencyConflict") == 409
    assert history.http_status("RUNNING", None) is None
    run = b.Run().task("Validate", 1)
    document = model(run)
    assert (document["status"], document["httpStatus"], document["stoppedAt"]) == (
        "RUNNING",
        None,
        None,
    )


def test_out_of_order_duplicated_and_mixed_events_give_the_same_model() -> None:
    expected = model(b.compensated())
    mine, other = b.compensated(), b.success(OTHER, T0 + 3)
    records = mine.records + mine.records[3:9] + other.records  # duplicates and another execution
    random.Random(7).shuffle(records)
    parsed = [e for r in records if (e := parse_history_record(r)) is not None]
    assert history.timeline_model(history.build_timeline(parsed, RID)) == expected


def _cut(run: b.Run, event_type: str, length: int | None = None) -> None:
    """Replace the record of ``event_type`` by its message cut short (no longer JSON)."""
    record = next(r for r in run.records if f'"type": "{event_type}"' in r["message"])
    message = record["message"]
    end = length if length is not None else message.index(', "redrive_count"')
    run.records[run.records.index(record)] = dict(record, message=message[:end])
    with pytest.raises(json.JSONDecodeError):
        json.loads(message[:end])


def test_truncated_message_keeps_its_leading_fields() -> None:
    run = b.validation_failure()
    _cut(run, "LambdaFunctionFailed")
    document = model(run)
    event = next(e for e in document["events"] if e["type"] == "LambdaFunctionFailed")
    assert event == {
        "id": 5,
        "previousEventId": 4,
        "timestamp": at(8),
        "type": "LambdaFunctionFailed",
        "state": None,
        "error": "ValidationError",
        "cause": None,
        "truncated": True,
    }
    assert states(document)[0] == ("Validate", "Task", 8, 1, "ValidationError")
    assert document["httpStatus"] == 400


def test_message_cut_before_its_execution_arn_is_left_out() -> None:
    run = b.compensated()
    _cut(run, "TaskStateEntered", 120)  # Validate's: the first one
    document = model(run)
    assert [e["id"] for e in document["events"]] == [1, *range(3, len(run.records) + 1)]
    assert states(document)[0][0] == "Store"
    assert (document["status"], document["httpStatus"]) == ("FAILED", 500)


def test_step_functions_truncated_input_is_no_product() -> None:
    run = b.Run()
    run.records[0]["message"] = run.records[0]["message"].replace(
        '"details": {', '"details": {"input": "{\\"body\\": {\\"productId\\": \\"P", '
    )
    summary = history.summarize(events(run), {RID: "FROM-LOGS"})
    assert [s.product_id for s in summary] == ["FROM-LOGS"]


def test_summaries_take_product_from_input_then_logs() -> None:
    with_input = b.success()
    # The execution's input as the API sends it: the client's JSON text under "body".
    execution_input = json.dumps({"body": json.dumps({"productId": "IN-1", "price": 1.10})})
    with_input.records[0]["message"] = with_input.records[0]["message"].replace(
        '"details": {', f'"details": {{"input": {json.dumps(execution_input)}, '
    )
    rows = history.summarize(
        events(with_input, b.validation_failure(OTHER, T0 - 1000)), {OTHER: "LOG-2", RID: "X"}
    )
    assert [history.summary_model(r) for r in rows] == [
        {
            "requestId": OTHER,
            "executionArn": b.arn(OTHER),
            "startedAt": history.iso(T0 - 1000),
            "stoppedAt": history.iso(T0 - 1000 + 11),
            "durationMs": 11,
            "status": "FAILED",
            "httpStatus": 400,
            "error": "ValidationError",
            "productId": "LOG-2",
        },
        {
            "requestId": RID,
            "executionArn": b.arn(RID),
            "startedAt": at(0),
            "stoppedAt": at(97),
            "durationMs": 97,
            "status": "SUCCEEDED",
            "httpStatus": 200,
            "error": None,
            "productId": "IN-1",
        },
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (RID, RID),
        (b.arn(RID), RID),
        (f"arn:aws:states:us-east-1:1:execution:Machine:{RID}", RID),
    ],
)
def test_request_id_of(given: str, expected: str) -> None:
    assert history.request_id_of(given) == expected


def test_request_id_of_rejects_other_arns() -> None:
    with pytest.raises(ValueError, match="not a Step Functions execution ARN"):
        history.request_id_of("arn:aws:lambda:us-east-1:1:function:f")
