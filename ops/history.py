"""Execution history of the Express workflow, rebuilt from its CloudWatch Logs events.

Express workflows have no ``GetExecutionHistory``: with logging level ALL, Step Functions writes
every history event of an execution as one JSON log event to the state machine's log group (AWS
Step Functions Developer Guide, "Using CloudWatch Logs to log execution history in Step
Functions", https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).

That page describes the fields but shows no complete event, so the example below is a real
event written by local mode (one upload with a failing metadata write; ``includeExecutionData``
off, so there is no ``input``), copied verbatim from its log group and only wrapped to fit (the
ARN is one string). Local mode writes
the format that published output of real Express executions shows: the same seven fields in this
order, ``details`` holding the content of the event's ``*EventDetails`` object directly::

    {"id": "7", "type": "TaskStateEntered",
     "details": {"name": "Store", "inputDetails": {"truncated": false}},
     "previous_event_id": "6", "event_timestamp": "1795651922594",
     "execution_arn": "arn:aws:states:us-east-1:123456789012:express:WorkflowStateMachine8F1B1C15:
                       0519fa19-dc22-4adc-a8a8-da7776983d1d:009f13e7-1785-47c3-8bc8-52f823215800",
     "redrive_count": "0"}

``id`` and ``previous_event_id`` are decimal strings (the first state's ``previous_event_id`` is
"0", as in published AWS output too), ``event_timestamp`` is epoch milliseconds as a string (local
mode also uses it as the log event's own timestamp; the CLI prefers it); ``details`` is ``{}``
for an event without details (e.g. ``LambdaFunctionStarted``), has ``name`` of the state,
``error``/``cause`` of a failure, and ``input``/``output`` only with ``includeExecutionData``
(a payload over 248 KB is cut and its ``*Details.truncated`` is true). An Express execution ARN
is ``...:express:<state machine>:<execution name>:<uuid>``; the execution name is the API
Gateway request id. Local mode puts each execution's events in a stream of its own, named as
AWS names Express log streams (``states/<state machine>/<YYYY-MM-DD-HH-MM>/<id>``); the CLI
ignores streams.

Log delivery is best effort: events can arrive out of order, twice, or not at all, and messages
can be cut. Everything here is pure (no I/O), sorts by event id and tolerates gaps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from tasks.contract.errors import TIMEOUT_ERROR, outcome_of_execution
from tasks.contract.names import COMPENSATE_STATE

STATUS_BY_EVENT: Final = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
STATUSES: Final = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "RUNNING", "UNKNOWN")
# One attempt of a task: Lambda tasks with a function ARN as Resource log LambdaFunction*,
# service integrations (arn:aws:states:::lambda:invoke) log Task*.
SCHEDULED_EVENTS: Final = frozenset({"TaskScheduled", "LambdaFunctionScheduled"})
FAILURE_EVENTS: Final = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
    }
)


@dataclass(frozen=True)
class HistoryEvent:
    id: int
    type: str
    timestamp_ms: int
    previous_event_id: int | None
    execution_arn: str
    details: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False  # the log message was cut; only its leading fields were recovered


@dataclass(frozen=True)
class TaskLogLine:
    timestamp_ms: int
    task: str
    level: str
    message: str
    correlation_id: str
    log_group: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class StateVisit:
    name: str
    type: str
    entered_ms: int
    exited_ms: int | None = None
    attempts: int = 0
    error: str | None = None


@dataclass
class Timeline:
    request_id: str
    execution_arn: str | None
    status: str
    error: str | None
    cause: str | None
    started_ms: int | None
    stopped_ms: int | None
    states: list[StateVisit]
    events: list[HistoryEvent]
    task_logs: list[TaskLogLine]

    @property
    def http_status(self) -> int | None:
        return http_status(self.status, self.error)

    @property
    def duration_ms(self) -> int | None:
        return _duration(self.started_ms, self.stopped_ms)

    @property
    def compensated(self) -> bool:
        return any(s.name == COMPENSATE_STATE for s in self.states)

    @property
    def compensation(self) -> Literal["done", "failed"] | None:
        """How the last compensation ended: ``done`` (it exited without an error), ``failed``,
        or None when none ran."""
        runs = [s for s in self.states if s.name == COMPENSATE_STATE]
        if not runs:
            return None
        last = runs[-1]
        return "done" if last.error is None and last.exited_ms is not None else "failed"


@dataclass(frozen=True)
class ExecutionSummary:
    request_id: str
    execution_arn: str
    started_ms: int | None
    stopped_ms: int | None
    status: str
    error: str | None
    product_id: str | None

    @property
    def duration_ms(self) -> int | None:
        return _duration(self.started_ms, self.stopped_ms)


# -- identities -------------------------------------------------------------------------------
def execution_name(execution_arn: str) -> str | None:
    """``arn:aws:states:r:a:express|execution:<machine>:<name>[:<uuid>]`` -> ``<name>``."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[0] != "arn" or parts[2] != "states":
        return None
    return parts[7] or None


def request_id_of(request_id_or_arn: str) -> str:
    """The request id (= execution name) a user gave directly or inside an execution ARN."""
    value = request_id_or_arn.strip()
    if value.startswith("arn:"):
        name = execution_name(value)
        if name is None:
            raise ValueError(f"not a Step Functions execution ARN: {value}")
        return name
    if not value:
        raise ValueError("empty request id")
    return value


def http_status(status: str, error: str | None) -> int | None:
    """What the client got, by the response template's rules (tasks.contract.errors.OUTCOMES);
    None while the outcome is unknown."""
    if status in ("RUNNING", "UNKNOWN"):
        return None
    outcome = outcome_of_execution(status, error)
    return 200 if outcome is None else outcome.status


# -- building ---------------------------------------------------------------------------------
def events_of(events: Iterable[HistoryEvent], request_id: str) -> list[HistoryEvent]:
    """The events of the execution named ``request_id``: deduplicated by (execution, id), in id
    order. If several executions share the name (a re-driven or repeated name), all are kept."""
    unique: dict[tuple[str, int], HistoryEvent] = {}
    for event in events:
        if execution_name(event.execution_arn) != request_id:
            continue
        key = (event.execution_arn, event.id)
        kept = unique.get(key)
        if kept is None or (kept.truncated and not event.truncated):
            unique[key] = event
    return sorted(unique.values(), key=lambda e: (e.execution_arn, e.id))


def build_timeline(
    events: Iterable[HistoryEvent],
    request_id: str,
    task_logs: Iterable[TaskLogLine] = (),
) -> Timeline:
    ordered = events_of(events, request_id)
    if ordered:  # a repeated execution name: the latest execution is the one the client saw
        latest = max(ordered, key=lambda e: (e.type == "ExecutionStarted", e.timestamp_ms))
        arn: str | None = latest.execution_arn
        ordered = [e for e in ordered if e.execution_arn == arn]
    else:
        arn = None
    states: list[StateVisit] = []
    open_visits: list[StateVisit] = []
    status, error, cause = "UNKNOWN", None, None
    started = stopped = None
    for event in ordered:
        details = event.details
        name = details.get("name")
        if event.type == "ExecutionStarted":
            started = event.timestamp_ms
            status = "RUNNING" if status == "UNKNOWN" else status
        elif event.type in STATUS_BY_EVENT:
            status = STATUS_BY_EVENT[event.type]
            stopped = event.timestamp_ms
            error = _text(details.get("error")) or (
                TIMEOUT_ERROR if status == "TIMED_OUT" else None
            )
            cause = _text(details.get("cause"))
        elif event.type.endswith("StateEntered") and isinstance(name, str):
            visit = StateVisit(name, event.type.removesuffix("StateEntered"), event.timestamp_ms)
            states.append(visit)
            open_visits.append(visit)
        elif event.type.endswith("StateExited") and isinstance(name, str):
            for visit in reversed(open_visits):
                if visit.name == name:
                    visit.exited_ms = event.timestamp_ms
                    open_visits.remove(visit)
                    break
        elif event.type in SCHEDULED_EVENTS and open_visits:
            open_visits[-1].attempts += 1
        elif event.type in FAILURE_EVENTS and open_visits:
            open_visits[-1].error = _text(details.get("error")) or (
                TIMEOUT_ERROR if event.type.endswith("TimedOut") else event.type
            )
    if started is None and ordered:
        started = ordered[0].timestamp_ms
    lines = sorted(
        (line for line in task_logs if line.correlation_id == request_id),
        key=lambda line: line.timestamp_ms,
    )
    return Timeline(
        request_id=request_id,
        execution_arn=arn,
        status=status,
        error=error,
        cause=cause,
        started_ms=started,
        stopped_ms=stopped,
        states=states,
        events=ordered,
        task_logs=lines,
    )


def summarize(
    events: Iterable[HistoryEvent], product_ids: Mapping[str, str] | None = None
) -> list[ExecutionSummary]:
    """One summary per execution seen in ``events``, oldest first. The product id comes from the
    execution input when it was logged (``includeExecutionData``), else from ``product_ids``
    (request id -> product id, from the tasks' log lines)."""
    by_arn: dict[str, list[HistoryEvent]] = {}
    for event in events:
        by_arn.setdefault(event.execution_arn, []).append(event)
    summaries = []
    for arn, group in by_arn.items():
        name = execution_name(arn)
        if name is None:
            continue
        timeline = build_timeline(group, name)
        product = _product_from_input(group) or (product_ids or {}).get(name)
        summaries.append(
            ExecutionSummary(
                request_id=name,
                execution_arn=arn,
                started_ms=timeline.started_ms,
                stopped_ms=timeline.stopped_ms,
                status=timeline.status,
                error=timeline.error,
                product_id=product,
            )
        )
    return sorted(summaries, key=lambda s: (s.started_ms or 0, s.request_id))


def product_ids_from(lines: Iterable[TaskLogLine]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        product = line.fields.get("productId")
        if isinstance(product, str) and product:
            found.setdefault(line.correlation_id, product)
    return found


def _product_from_input(events: Iterable[HistoryEvent]) -> str | None:
    for event in events:
        if event.type != "ExecutionStarted":
            continue
        raw = event.details.get("input")
        try:
            document = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:  # cut at 248 KB: not JSON any more
            return None
        body = document.get("body") if isinstance(document, dict) else None
        if isinstance(body, str):  # the client's JSON text, as the API passes it
            try:
                body = json.loads(body)
            except ValueError:
                return None
        product = body.get("productId") if isinstance(body, dict) else None
        return product if isinstance(product, str) else None
    return None


# -- JSON model -------------------------------------------------------------------------------
def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def timeline_model(timeline: Timeline) -> dict[str, Any]:
    return {
        "requestId": timeline.request_id,
        "executionArn": timeline.execution_arn,
        "status": timeline.status,
        "httpStatus": timeline.http_status,
        "error": timeline.error,
        "cause": timeline.cause,
        "startedAt": iso(timeline.started_ms),
        "stoppedAt": iso(timeline.stopped_ms),
        "durationMs": timeline.duration_ms,
        "compensated": timeline.compensated,
        "states": [
            {
                "name": s.name,
                "type": s.type,
                "enteredAt": iso(s.entered_ms),
                "exitedAt": iso(s.exited_ms),
                "durationMs": _duration(s.entered_ms, s.exited_ms),
                "attempts": s.attempts,
                "error": s.error,
            }
            for s in timeline.states
        ],
        "events": [event_model(e) for e in timeline.events],
        "taskLogs": [task_log_model(line) for line in timeline.task_logs],
    }


def event_model(event: HistoryEvent) -> dict[str, Any]:
    details = event.details
    return {
        "id": event.id,
        "previousEventId": event.previous_event_id,
        "timestamp": iso(event.timestamp_ms),
        "type": event.type,
        "state": _text(details.get("name")),
        "error": _text(details.get("error")),
        "cause": _text(details.get("cause")),
        "truncated": event.truncated,
    }


def task_log_model(line: TaskLogLine) -> dict[str, Any]:
    return {
        "timestamp": iso(line.timestamp_ms),
        "task": line.task,
        "level": line.level,
        "message": line.message,
        "logGroup": line.log_group,
        "fields": line.fields,
    }


def summary_model(summary: ExecutionSummary) -> dict[str, Any]:
    return {
        "requestId": summary.request_id,
        "executionArn": summary.execution_arn,
        "startedAt": iso(summary.started_ms),
        "stoppedAt": iso(summary.stopped_ms),
        "durationMs": summary.duration_ms,
        "status": summary.status,
        "httpStatus": http_status(summary.status, summary.error),
        "error": summary.error,
        "productId": summary.product_id,
    }


def _duration(start: int | None, stop: int | None) -> int | None:
    return None if start is None or stop is None else stop - start


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
