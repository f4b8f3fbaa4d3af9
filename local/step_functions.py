"""``StartSyncExecution`` for the emulated Express state machines, with their execution history
written to CloudWatch Logs as Step Functions writes it."""

from __future__ import annotations

import collections
import copy
import datetime
import json
import logging
import threading
import time
import uuid
from typing import Any

from local.saturation import Saturation
from local.template import ACCOUNT_ID, REGION
from tasks.contract.limits import STATE_PAYLOAD_LIMIT_BYTES

LOG = logging.getLogger("local.step_functions")

# Executions kept per state machine (describe_execution works for the most recent ones).
MAX_EXECUTIONS_KEPT = 200
# Longest a polled execution may run (the fallback path): the API's 29 s, plus margin.
POLL_DEADLINE_SECONDS = 35.0
# One log stream per execution (as AWS writes Express logs); the oldest are deleted beyond this.
MAX_LOG_STREAMS_KEPT = 1_000
# History events logged at each level besides ALL (the Step Functions log levels).
_EXECUTION_FAILURES = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
# The namespace of the error types in the Step Functions API's JSON error bodies.
_SFN_ERROR_PREFIX = "com.amazonaws.swf.service.v2.model#"


class SfnApiError(Exception):
    """An error the Step Functions API itself answers with (before any execution runs)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> dict[str, str]:
        return {"__type": _SFN_ERROR_PREFIX + self.error_type, "message": self.message}


class SyncExecutor:
    """``StartSyncExecution`` for the emulated state machines, which moto lacks as an API.

    Runs moto's own ``SyncExecution`` in the calling thread against the same backend the endpoint
    serves; the execution then shows up in ``describe_execution`` / ``get_execution_history``.
    Keeps the per-machine execution list and moto's thread registry bounded.
    """

    def __init__(
        self,
        logging_configs: dict[str, dict[str, Any]] | None = None,
        saturation: Saturation | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._saturation = saturation or Saturation()
        self._logging_configs = logging_configs or {}
        self._log_streams: collections.deque[tuple[str, str]] = collections.deque()

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._saturation.execution():
            return self._start_sync_execution(request)

    def _start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        machine_arn = request.get("stateMachineArn")
        name = request.get("name") or str(uuid.uuid4())
        execution_input = request.get("input", "{}")
        if not isinstance(machine_arn, str) or not machine_arn:
            raise SfnApiError(400, "ValidationException", "stateMachineArn is required")
        if not isinstance(execution_input, str):
            raise SfnApiError(400, "SerializationException", "input must be a string")
        if len(execution_input.encode()) > STATE_PAYLOAD_LIMIT_BYTES:
            raise SfnApiError(
                400,
                "ValidationException",
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {STATE_PAYLOAD_LIMIT_BYTES}",
            )
        if not isinstance(name, str) or not 1 <= len(name) <= 80:
            raise SfnApiError(400, "InvalidName", f"Invalid Name: '{name}'")
        try:
            json.loads(execution_input)
        except ValueError as exc:
            raise SfnApiError(
                400, "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'"
            ) from None
        try:
            from moto.stepfunctions.parser.backend.execution import SyncExecution
        except ImportError:
            # moto's internal API moved: start + poll through the public one instead.
            return self._publish(self._run_polling(machine_arn, name, execution_input))
        return self._publish(self._run_sync(SyncExecution, machine_arn, name, execution_input))

    def _backend(self) -> Any:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        return stepfunctions_parser_backends[ACCOUNT_ID][REGION]

    def _machine(self, machine_arn: str) -> Any:
        try:
            machine = self._backend().describe_state_machine(machine_arn)
        except Exception:
            raise SfnApiError(
                400, "StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine_arn}'"
            ) from None
        if machine.type != "EXPRESS":
            raise SfnApiError(
                400, "StateMachineTypeNotSupported", "This operation is for EXPRESS machines"
            )
        return machine

    def _run_sync(
        self, execution_class: Any, machine_arn: str, name: str, execution_input: str
    ) -> tuple[Any, dict[str, Any]]:
        from moto.stepfunctions.parser.api import StateMachineType

        machine = self._machine(machine_arn)
        execution_arn = (
            f"arn:aws:states:{REGION}:{ACCOUNT_ID}:express:{machine.name}:{name}:{uuid.uuid4()}"
        )
        execution = execution_class(
            name=name,
            sm_type=StateMachineType.EXPRESS,
            role_arn=machine.roleArn,
            exec_arn=execution_arn,
            account_id=ACCOUNT_ID,
            region_name=REGION,
            state_machine=_snapshot(machine),
            start_date=datetime.datetime.now(tz=datetime.UTC),
            cloud_watch_logging_session=None,  # moto's session is broken: see _publish
            input_data=execution_input,
            activity_store={},
        )
        with self._lock:
            machine.executions.append(execution)
            if len(machine.executions) > MAX_EXECUTIONS_KEPT:
                del machine.executions[: len(machine.executions) - MAX_EXECUTIONS_KEPT]
        execution.start()
        self._reap_threads()
        output = dict(execution.to_start_sync_execution_output())
        status = output.get("status")
        output["status"] = getattr(status, "value", status)
        return execution, _aws_shape(output)

    def _run_polling(
        self, machine_arn: str, name: str, execution_input: str
    ) -> tuple[Any, dict[str, Any]]:
        self._machine(machine_arn)
        unique = f"{name}-{uuid.uuid4().hex[:8]}"[:80]
        execution = self._backend().start_execution(
            machine_arn, name=unique, execution_input=execution_input
        )
        deadline = time.monotonic() + POLL_DEADLINE_SECONDS
        while execution.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.01)
        described = dict(execution.to_describe_output())
        status = described.get("status")
        described["status"] = getattr(status, "value", status)
        if described["status"] == "RUNNING":
            described["status"] = "TIMED_OUT"
        elif described["status"] not in ("SUCCEEDED", "FAILED", "TIMED_OUT"):
            described["status"] = "FAILED"
        return execution, _aws_shape(described)

    def _publish(self, run: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
        """Write the execution's events to the state machine's log group, as Express logs them."""
        execution, output = run
        config = self._logging_configs.get(str(output.get("stateMachineArn", "")))
        if config is not None:
            try:
                self._publish_history(execution, output, config)
            except Exception:  # logging must never fail an execution
                LOG.exception("could not write the execution log")
        return output

    def _publish_history(
        self, execution: Any, output: dict[str, Any], config: dict[str, Any]
    ) -> None:
        """The execution's log events (:func:`_log_events`) to a new stream named as AWS names
        them; the oldest streams beyond :data:`MAX_LOG_STREAMS_KEPT` are deleted."""
        from moto.logs.models import logs_backends

        lines = _log_events(execution, str(output.get("executionArn", "")), config)
        if not lines:
            return
        lines.sort(key=lambda line: int(line["timestamp"]))  # PutLogEvents wants time order
        backend = logs_backends[ACCOUNT_ID][REGION]
        group = config["group"]
        machine_name = str(output.get("stateMachineArn", "")).rsplit(":", 1)[-1]
        minute = datetime.datetime.fromtimestamp(lines[0]["timestamp"] / 1000, datetime.UTC)
        stream = f"states/{machine_name}/{minute:%Y-%m-%d-%H-%M}/{uuid.uuid4().hex[:8]}"
        with self._lock:
            backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, lines)
            self._log_streams.append((group, stream))
            while len(self._log_streams) > MAX_LOG_STREAMS_KEPT:
                backend.delete_log_stream(*self._log_streams.popleft())

    @staticmethod
    def _reap_threads() -> None:
        from moto.stepfunctions.parser.utils import TMP_THREADS

        if len(TMP_THREADS) > 64:
            TMP_THREADS[:] = [t for t in list(TMP_THREADS) if t.is_alive()]


def _log_events(execution: Any, execution_arn: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """One log event per history event the level logs, in the JSON that Step Functions writes for
    Express workflows (see :mod:`ops.history`). An event without a readable time takes the
    previous event's (or now, for the first)."""
    level = str(config["level"])
    fallback_ms = int(time.time() * 1000)
    lines: list[dict[str, Any]] = []
    for event in execution.to_history_output().get("events", []):
        event_type = str(getattr(event.get("type"), "value", event.get("type")))
        if not _logged_at(level, event_type):
            continue
        details = _flat_details(event)
        if not config["include_data"]:
            details = _without_data(details)
        timestamp_ms = _epoch_ms(event.get("timestamp"))
        if timestamp_ms is None:
            timestamp_ms = lines[-1]["timestamp"] if lines else fallback_ms
        lines.append(
            {
                "timestamp": timestamp_ms,
                "message": json.dumps(
                    {
                        "id": str(event.get("id")),
                        "type": event_type,
                        "details": details,
                        "previous_event_id": str(event.get("previousEventId", 0)),
                        "event_timestamp": str(timestamp_ms),
                        "execution_arn": execution_arn,
                        "redrive_count": "0",
                    },
                    default=str,
                ),
            }
        )
    return lines


def _snapshot(machine: Any) -> Any:
    """The machine as this execution sees it (without the list of earlier executions)."""
    clone = copy.copy(machine)
    clone.executions = []
    return clone


def _logged_at(level: str, event_type: str) -> bool:
    if level == "ALL":
        return True
    if level == "FATAL":
        return event_type in _EXECUTION_FAILURES
    return level == "ERROR" and event_type.endswith(("Failed", "TimedOut", "Aborted"))


def _flat_details(event: dict[str, Any]) -> dict[str, Any]:
    """The content of the event's ``*EventDetails`` object, which is what Express logs put in
    ``details`` (GetExecutionHistory wraps it: ``{"stateEnteredEventDetails": {...}}``)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return dict(value)
    return {}


def _epoch_ms(value: object) -> int | None:
    """A history event time (moto hands ISO 8601 strings, boto3 datetimes) -> epoch ms."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1000)  # epoch seconds, as the service's JSON protocol writes dates
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _without_data(details: dict[str, Any]) -> dict[str, Any]:
    """Drop inputs, outputs and parameters (includeExecutionData off: the file stays out)."""
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        if key in ("input", "output", "parameters"):
            continue
        cleaned[key] = _without_data(value) if isinstance(value, dict) else value
    return cleaned


def _aws_shape(output: dict[str, Any]) -> dict[str, Any]:
    """Dates as epoch seconds, like the service's JSON protocol; plus billing details."""
    shaped: dict[str, Any] = {}
    for key, value in output.items():
        if isinstance(value, datetime.datetime):
            shaped[key] = value.timestamp()
        elif value is not None:
            shaped[key] = value
    if "startDate" in shaped and "stopDate" in shaped:
        duration_ms = int((shaped["stopDate"] - shaped["startDate"]) * 1000)
        shaped["billingDetails"] = {
            "billedMemoryUsedInMB": 64,
            "billedDurationInMilliseconds": max(100, -(-duration_ms // 100) * 100),
        }
    return shaped
