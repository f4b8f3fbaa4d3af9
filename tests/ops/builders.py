"""Realistic Express workflow log records (the AWS format: flat ``details``, ``event_timestamp``)
for the workflow in infra/state_machine.py, and Powertools task log lines."""

from __future__ import annotations

import json
from typing import Any

ACCOUNT_PREFIX = "arn:aws:states:us-east-1:123456789012:express:WorkflowStateMachine8F1B1C15"
FUNCTION_PREFIX = "arn:aws:lambda:us-east-1:123456789012:function:UploadService-Tasks"
T0 = 1_795_651_200_000  # 2026-11-26T00:00:00.000Z
RID = "c0ffee00-1111-2222-3333-444455556666"
OTHER = "beef0000-aaaa-bbbb-cccc-ddddeeeeffff"
VALIDATION_CAUSE = json.dumps(
    {
        "errorMessage": json.dumps(
            {
                "message": "The request body is invalid.",
                "details": [{"field": "fileContent", "message": "must be standard base64"}],
            }
        ),
        "errorType": "ValidationError",
        "stackTrace": ['  File "/var/task/tasks/validate.py", line 38, in run\n'],
    }
)
TRANSIENT_CAUSE = json.dumps(
    {
        "errorMessage": "Recording the metadata failed temporarily.",
        "errorType": "TransientStorageError",
    }
)
INTERNAL_CAUSE = "The upload failed and nothing was stored. It is safe to retry."


def arn(request_id: str) -> str:
    return f"{ACCOUNT_PREFIX}:{request_id}:8a4f9e2c-5b1d-4f7e-9c3a-{request_id[-12:]}"


class Run:
    """Appends the log records of one execution, event ids and times in order."""

    def __init__(self, request_id: str = RID, start_ms: int = T0) -> None:
        self.request_id = request_id
        self.arn = arn(request_id)
        self.now = start_ms
        self.records: list[dict[str, Any]] = []
        self.add(
            "ExecutionStarted", inputDetails={"truncated": False}, roleArn="arn:aws:iam::1:role/R"
        )

    def add(self, event_type: str, after_ms: int = 0, **details: Any) -> Run:
        self.now += after_ms
        event_id = len(self.records) + 1
        message = {
            "id": str(event_id),
            "type": event_type,
            "details": details,
            "previous_event_id": str(event_id - 1),
            "event_timestamp": str(self.now),
            "execution_arn": self.arn,
            "redrive_count": "0",
        }
        self.records.append(
            {"timestamp": self.now, "message": json.dumps(message), "logStreamName": "s"}
        )
        return self

    def task(
        self, name: str, ms: int, *, failures: tuple[tuple[str, str], ...] = (), ok: bool = True
    ) -> Run:
        """A Lambda task state: one attempt per failure (error, cause) and a last good attempt."""
        self.add("TaskStateEntered", 1, name=name, inputDetails={"truncated": False})
        for error, cause in failures:
            self._attempt(name)
            self.add("LambdaFunctionFailed", ms, error=error, cause=cause)
        if ok:
            self._attempt(name)
            self.add("LambdaFunctionSucceeded", ms, outputDetails={"truncated": False})
        return self.add("TaskStateExited", 1, name=name, outputDetails={"truncated": False})

    def _attempt(self, name: str) -> None:
        self.add(
            "LambdaFunctionScheduled",
            1,
            resource=f"{FUNCTION_PREFIX}{name}Function",
            inputDetails={"truncated": False},
            timeoutInSeconds=2,
        )
        self.add("LambdaFunctionStarted", 1)

    def passed(self, name: str) -> Run:
        self.add("PassStateEntered", 1, name=name, inputDetails={"truncated": False})
        return self.add("PassStateExited", 1, name=name, outputDetails={"truncated": False})

    def choice(self, name: str) -> Run:
        self.add("ChoiceStateEntered", 1, name=name, inputDetails={"truncated": False})
        return self.add("ChoiceStateExited", 1, name=name, outputDetails={"truncated": False})

    def fail_state(self, name: str, error: str, cause: str) -> Run:
        self.add("FailStateEntered", 1, name=name, inputDetails={"truncated": False})
        return self.add("ExecutionFailed", 1, error=error, cause=cause)

    def succeed(self) -> Run:
        self.add("SucceedStateEntered", 1, name="Uploaded", inputDetails={"truncated": False})
        self.add("SucceedStateExited", 1, name="Uploaded", outputDetails={"truncated": False})
        return self.add("ExecutionSucceeded", 1, outputDetails={"truncated": False})


def success(request_id: str = RID, start_ms: int = T0) -> Run:
    return (
        Run(request_id, start_ms)
        .task("Validate", 10)
        .task("Store", 50)
        .passed("DiscardFileContent")
        .task("Record", 20)
        .succeed()
    )


def validation_failure(request_id: str = RID, start_ms: int = T0) -> Run:
    run = Run(request_id, start_ms).task(
        "Validate", 5, failures=(("ValidationError", VALIDATION_CAUSE),), ok=False
    )
    return run.fail_state("Rejected", "ValidationError", VALIDATION_CAUSE)


def compensated(request_id: str = RID, start_ms: int = T0) -> Run:
    transient = ("TransientStorageError", TRANSIENT_CAUSE)
    run = (
        Run(request_id, start_ms)
        .task("Validate", 10)
        .task("Store", 50)
        .passed("DiscardFileContent")
        .task("Record", 20, failures=(transient, transient), ok=False)
        .task("Compensate", 30)
    )
    return run.fail_state("UploadFailed", "InternalError", INTERNAL_CAUSE)


def retried(request_id: str = RID, start_ms: int = T0) -> Run:
    transient = ("TransientStorageError", TRANSIENT_CAUSE)
    return (
        Run(request_id, start_ms)
        .task("Validate", 10)
        .task("Store", 50)
        .passed("DiscardFileContent")
        .task("Record", 20, failures=(transient,))
        .succeed()
    )


def timed_out(request_id: str = RID, start_ms: int = T0) -> Run:
    run = Run(request_id, start_ms).task("Validate", 10)
    run.add("TaskStateEntered", 1, name="Store", inputDetails={"truncated": False})
    run.add("LambdaFunctionScheduled", 1, resource=f"{FUNCTION_PREFIX}StoreFunction")
    run.add("LambdaFunctionStarted", 1)
    return run.add("ExecutionTimedOut", 24_985, error="States.Timeout")


def task_line(
    request_id: str, task: str, message: str, at_ms: int, level: str = "INFO", **fields: Any
) -> dict[str, Any]:
    document = {
        "level": level,
        "location": f"{task}:1",
        "message": message,
        "timestamp": "2026-11-26 00:00:00,000+0000",
        "service": "upload",
        "correlation_id": request_id,
        "requestId": request_id,
        "task": task,
        **fields,
    }
    return {"timestamp": at_ms, "message": json.dumps(document), "logStreamName": "t"}
