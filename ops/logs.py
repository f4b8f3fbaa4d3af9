"""CloudWatch Logs access for the CLI: where the logs are, fetching them page by page, and turning
raw log records into typed values without ever failing on a malformed or truncated message.

Works against AWS and against local mode alike (``endpoint_url``). Which log groups to read:

1. ``--state-machine-log-group`` / ``--task-log-group`` given: exactly those.
2. Otherwise, against AWS: the CloudFormation stack's outputs (``StateMachineLogGroupName`` and
   ``<Task>LogGroupName`` for Validate, Store, Record, Compensate).
3. Otherwise, with ``--endpoint-url`` (local mode has no CloudFormation): the state machine's log
   group by the name the template gives it, ``/aws/vendedlogs/states/<stack>-<stack id's
   UUID>/upload-workflow`` (infra.log_groups), and the tasks' by the names CloudFormation and local
   mode derive from the construct paths, ``<stack>-Tasks<Task>LogGroup...``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ops.history import HistoryEvent, TaskLogLine
from tasks.contract import names

TASK_TITLES: Final = tuple(names.task_title(task) for task in names.TASKS)
STATE_MACHINE_OUTPUT: Final = "StateMachineLogGroupName"
_UUID: Final = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LOCAL_REGION: Final = "us-east-1"
# FilterLogEvents: a terse OR of terms (events carry other text too; the type is checked after
# parsing). moto treats a pattern it does not understand as "match everything", which is also fine.
EXECUTION_BOUNDARY_PATTERN: Final = (
    "?ExecutionStarted ?ExecutionSucceeded ?ExecutionFailed ?ExecutionTimedOut ?ExecutionAborted"
)
PRODUCT_PATTERN: Final = '"productId"'

# Powertools' own keys; what remains of a log line is what the task chose to log.
_STANDARD_KEYS: Final = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "correlation_id",
        "requestId",
        "task",
        "xray_trace_id",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "sampling_rate",
    }
)
_SALVAGE: Final = {
    name: re.compile(rf'"{name}"\s*:\s*"?([^",}}]*)"?')
    for name in ("id", "type", "previous_event_id", "event_timestamp", "execution_arn", "error")
}
_CORRELATION: Final = re.compile(r'"correlation_id"\s*:\s*"([^"]*)"')


class DiscoveryError(Exception):
    """The log groups to read could not be determined."""


@dataclass(frozen=True)
class LogGroups:
    state_machine: str
    tasks: dict[str, str] = field(default_factory=dict)  # task title -> log group name


# -- clients ----------------------------------------------------------------------------------
def aws_session(region: str | None, endpoint_url: str | None) -> boto3.session.Session:
    """A session; against a local endpoint any credentials do, so placeholders fill any gap."""
    session = boto3.session.Session(region_name=region)
    if endpoint_url is None:
        return session
    if session.region_name is None or session.get_credentials() is None:
        return boto3.session.Session(
            region_name=region or session.region_name or LOCAL_REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - local mode accepts any credentials
        )
    return session


def logs_client(session: boto3.session.Session, endpoint_url: str | None) -> Any:
    return session.client(
        "logs", endpoint_url=endpoint_url, config=Config(retries={"mode": "standard"})
    )


# -- discovery --------------------------------------------------------------------------------
def discover(
    session: boto3.session.Session,
    logs: Any,
    *,
    stack_name: str,
    endpoint_url: str | None,
    state_machine_log_group: str | None,
    task_log_groups: Sequence[str],
) -> LogGroups:
    if state_machine_log_group:
        return LogGroups(
            state_machine_log_group, _tasks_from_names(task_log_groups, keep_others=True)
        )
    if endpoint_url is None:
        found = from_stack_outputs(stack_outputs(session, stack_name))
    else:
        group_names = [
            *_log_group_names(logs, f"{names.STATES_LOG_GROUP_PREFIX}{stack_name}-"),
            *_log_group_names(logs, f"{stack_name}-"),
        ]
        found = from_log_group_names(group_names, stack_name)
    if task_log_groups:
        return LogGroups(found.state_machine, _tasks_from_names(task_log_groups, keep_others=True))
    return found


def from_stack_outputs(outputs: Mapping[str, str]) -> LogGroups:
    if STATE_MACHINE_OUTPUT not in outputs:
        raise DiscoveryError(f"the stack has no output {STATE_MACHINE_OUTPUT}")
    tasks = {
        title: outputs[f"{title}LogGroupName"]
        for title in TASK_TITLES
        if f"{title}LogGroupName" in outputs
    }
    return LogGroups(outputs[STATE_MACHINE_OUTPUT], tasks)


def state_machine_log_group_pattern(stack_name: str) -> re.Pattern[str]:
    """The upload workflow's log group of the stack (not of another whose name extends it)."""
    return re.compile(
        re.escape(f"{names.STATES_LOG_GROUP_PREFIX}{stack_name}-")
        + _UUID
        + re.escape(f"/{names.UPLOAD_WORKFLOW_LOG_NAME}")
    )


def from_log_group_names(group_names: Iterable[str], stack_name: str) -> LogGroups:
    unique = sorted(set(group_names))
    pattern = state_machine_log_group_pattern(stack_name)
    machines = [n for n in unique if pattern.fullmatch(n)]
    if len(machines) != 1:
        expected = (
            f"{names.STATES_LOG_GROUP_PREFIX}{stack_name}-<UUID>/{names.UPLOAD_WORKFLOW_LOG_NAME}"
        )
        raise DiscoveryError(
            f"expected one log group named {expected}, found "
            f"{machines or 'none'}; pass --state-machine-log-group"
        )
    own = [n for n in unique if n.startswith(f"{stack_name}-Tasks")]
    return LogGroups(machines[0], _tasks_from_names(own, keep_others=False))


def _tasks_from_names(names: Iterable[str], *, keep_others: bool) -> dict[str, str]:
    """Task title -> group, recognised by ``Tasks<Title>LogGroup`` in the name; an explicitly
    given group of another name is kept under its own name."""
    tasks: dict[str, str] = {}
    for name in names:
        title = next((t for t in TASK_TITLES if f"Tasks{t}LogGroup" in name), None)
        if title is not None:
            tasks.setdefault(title, name)
        elif keep_others:
            tasks.setdefault(name, name)
    return tasks


def stack_outputs(session: boto3.session.Session, stack_name: str) -> dict[str, str]:
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise DiscoveryError(f"cannot read the outputs of stack {stack_name}: {exc}") from None
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs}


def function_environments(lambda_client: Any) -> list[dict[str, str]]:
    """Every function's environment variables: local mode has no CloudFormation, and its
    functions' environments name the stack's resources."""
    try:
        pages = lambda_client.get_paginator("list_functions").paginate()
        functions = [f for page in pages for f in page.get("Functions", [])]
    except (ClientError, BotoCoreError) as exc:
        raise DiscoveryError(f"cannot list the emulated functions: {exc}") from None
    return [dict(f.get("Environment", {}).get("Variables", {})) for f in functions]


def _log_group_names(logs: Any, prefix: str) -> list[str]:
    names: list[str] = []
    try:
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            names.extend(str(g["logGroupName"]) for g in page.get("logGroups", []))
    except (ClientError, BotoCoreError) as exc:
        raise DiscoveryError(f"cannot list log groups: {exc}") from None
    return names


# -- fetching ---------------------------------------------------------------------------------
def fetch(
    logs: Any,
    log_group: str,
    *,
    start_ms: int,
    end_ms: int | None = None,
    filter_pattern: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every record of the group in the window that matches, following ``nextToken``."""
    arguments: dict[str, Any] = {"logGroupName": log_group, "startTime": start_ms}
    if end_ms is not None:
        arguments["endTime"] = end_ms
    if filter_pattern:
        arguments["filterPattern"] = filter_pattern
    for page in logs.get_paginator("filter_log_events").paginate(**arguments):
        yield from page.get("events", [])


def quoted_term(value: str) -> str:
    """A FilterLogEvents pattern matching ``value`` literally."""
    if '"' in value or "\\" in value:
        raise ValueError(f"cannot search for {value!r}")
    return f'"{value}"'


# -- parsing ----------------------------------------------------------------------------------
def parse_history_record(record: Mapping[str, Any]) -> HistoryEvent | None:
    """One state machine log record -> :class:`HistoryEvent`; None if nothing usable is in it.

    One format, the one Step Functions writes for Express workflows (and local mode with it; see
    :mod:`ops.history`). A message CloudWatch cut short is not JSON: its leading fields are
    recovered by pattern (``truncated`` = True). The time is ``event_timestamp`` (ms) when it is
    there (it can be cut off), else the record's own timestamp.
    """
    message = record.get("message")
    if not isinstance(message, str):
        return None
    truncated = False
    try:
        document = json.loads(message)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        truncated = True
        document = {k: m.group(1) for k, p in _SALVAGE.items() if (m := p.search(message))}
        error = document.pop("error", None)
        document["details"] = {"error": error} if error else {}
    event_id = _int(document.get("id"))
    event_type = document.get("type")
    arn = document.get("execution_arn")
    if event_id is None or not isinstance(event_type, str) or not isinstance(arn, str):
        return None
    timestamp = _int(document.get("event_timestamp"))
    if timestamp is None:
        timestamp = _int(record.get("timestamp")) or 0
    return HistoryEvent(
        id=event_id,
        type=event_type,
        timestamp_ms=timestamp,
        previous_event_id=_int(document.get("previous_event_id")),
        execution_arn=arn,
        details=_details(document.get("details")),
        truncated=truncated,
    )


def _details(details: object) -> dict[str, Any]:
    return dict(details) if isinstance(details, dict) else {}


def parse_task_record(
    record: Mapping[str, Any], *, log_group: str, task: str, request_id: str | None = None
) -> TaskLogLine | None:
    """A Powertools JSON line (of ``request_id`` if given) -> :class:`TaskLogLine`; else None.

    Lambda's own START/END/REPORT lines and other plain text are skipped. A line cut short keeps
    its correlation id when that can be recovered, and is shown as the raw text."""
    message = record.get("message")
    if not isinstance(message, str):
        return None
    try:
        document = json.loads(message)
    except ValueError:
        match = _CORRELATION.search(message)
        if match is None or (request_id is not None and match.group(1) != request_id):
            return None
        document = {"correlation_id": match.group(1), "message": message, "truncated": True}
    if not isinstance(document, dict):
        return None
    correlation = document.get("correlation_id")
    if not isinstance(correlation, str) or (request_id is not None and correlation != request_id):
        return None
    return TaskLogLine(
        timestamp_ms=_int(record.get("timestamp")) or 0,
        task=str(document.get("task") or task.lower()),
        level=str(document.get("level") or ""),
        message=str(document.get("message") or ""),
        correlation_id=correlation,
        log_group=log_group,
        fields={k: v for k, v in document.items() if k not in _STANDARD_KEYS},
    )


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
