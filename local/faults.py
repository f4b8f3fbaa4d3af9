"""Fault and delay injection at the AWS-call level, for the tasks' calls only.

While the emulator runs, every botocore client's API call passes through :meth:`Faults.installed`'s
wrapper of ``BaseClient._make_api_call`` (so clients the tasks created and cached before a fault
was set are covered too). A call is affected only when it is made inside a task invocation (a
context variable set by the Lambda runtime) and a fault or delay names its service and operation:

- a fault fails the call with the ``ClientError`` botocore itself would raise for that error code,
  so the tasks' real error handling runs;
- either may name one task (``record/dynamodb:TransactWriteItems``): only that task's calls are
  affected (several tasks call the same operation);
- a delay holds each HTTP attempt of the call just before it is sent (a wrapper of
  ``Endpoint._send``), after the client's ``before-send`` hooks: a call started in time can land
  after its task timed out, as a request already sent can on AWS after the sandbox was stopped.

Targets are checked against botocore's service models, so a misspelt one is refused instead of
never firing. The test clients and the emulator's own clients are never affected.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from unittest import mock

import botocore.client
import botocore.endpoint
import botocore.session
from botocore.exceptions import ClientError

from tasks.contract import names

DEFAULT_ERROR_CODE = "InternalServerError"

# The AWS operations the tasks call, as SERVICE:Operation (ListObjectVersions through a
# paginator). tests/unit/test_fault_targets.py derives them from tasks/ and keeps this in step.
TASK_OPERATIONS: Final = (
    "s3:PutObject",
    "s3:ListObjectVersions",
    "s3:HeadObject",
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:CreateMultipartUpload",
    "s3:ListParts",
    "s3:CompleteMultipartUpload",
    "s3:AbortMultipartUpload",
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)

# HTTP status AWS answers with for well-known error codes (the default is 400).
_STATUS_BY_CODE: dict[str, int] = {
    "InternalServerError": 500,
    "InternalError": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "SlowDown": 503,
    "RequestLimitExceeded": 400,
    "ThrottlingException": 400,
    "Throttling": 400,
    "ProvisionedThroughputExceededException": 400,
    "TooManyRequestsException": 429,
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "ResourceNotFoundException": 400,
    "KMS.KMSInvalidStateException": 400,
}

_current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "local_mode_current_task", default=None
)
# The task (tasks.contract.names: "record") whose invocation is running.
_current_task_name: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "local_mode_current_task_name", default=None
)


@contextlib.contextmanager
def task_scope(function_name: str, task: str | None = None) -> Iterator[None]:
    """Marks the calls made in this context as the calls of ``task``'s function."""
    token = _current_task.set(function_name)
    name_token = _current_task_name.set(task)
    try:
        yield
    finally:
        _current_task_name.reset(name_token)
        _current_task.reset(token)


# -- targets --------------------------------------------------------------------------------
@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def _operations(service: str) -> tuple[str, ...]:
    return tuple(_session().get_service_model(service).operation_names)


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """A suggestion: the candidate spelt alike but for case and ``_``/``-``, else a close one."""

    def folded(name: str) -> str:
        return name.lower().replace("_", "").replace("-", "")

    close = [c for c in candidates if folded(c) == folded(word)]
    close = close or difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_target(service: str, operation: str) -> None:
    """Raise ValueError (one line: why) unless botocore's models have ``service:operation``."""
    services = _session().get_available_services()
    if service not in services:
        raise ValueError(f"{service!r} is not an AWS service{_did_you_mean(service, services)}")
    operations = _operations(service)
    if operation not in operations:
        raise ValueError(
            f"{service} has no operation {operation}{_did_you_mean(operation, operations)}"
        )


def _target(service: str, operation: str, spec: str) -> tuple[str, str]:
    """The checked (service, operation); a ValueError names ``spec``, the value as given."""
    service, operation = service.strip().lower(), operation.strip()
    try:
        check_target(service, operation)
    except ValueError as exc:
        raise ValueError(f"{spec}: {exc}") from None
    return service, operation


def _task(task: str | None, spec: str) -> str | None:
    """The checked task name (None: every task)."""
    if task is None or task in names.TASKS:
        return task
    raise ValueError(f"{spec}: {task!r} is not a task{_did_you_mean(task, names.TASKS)}")


def _split(spec: str, form: str, *, value_required: bool) -> tuple[str | None, str, str, str]:
    """``[TASK/]SERVICE:Operation[=VALUE]`` -> its parts (TASK None and VALUE empty when
    absent)."""
    target, _, value = spec.partition("=")
    task, slash, target = target.rpartition("/") if "/" in target else ("", "", target)
    service, sep, operation = target.partition(":")
    if not sep or not service.strip() or not operation.strip() or (value_required and not value):
        raise ValueError(f"{spec}: not {form}")
    if slash and not task.strip():
        raise ValueError(f"{spec}: not {form}")
    return _task(task.strip() if slash else None, spec), service, operation, value.strip()


def _seconds(value: str | float, spec: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{spec}: SECONDS must be a positive number, not {value!r}")
    return seconds


# -- injections -----------------------------------------------------------------------------
@dataclass
class Injection:
    """Something done to the tasks' calls of one operation: every call, or the first few."""

    service: str  # botocore service name, lower case: "s3", "dynamodb"
    operation: str  # API operation name: "PutObject"
    remaining: int | None = field(default=None, kw_only=True)  # None: every call
    injected: int = field(default=0, kw_only=True)  # the calls it applied to
    task: str | None = field(default=None, kw_only=True)  # None: every task's calls

    @property
    def target(self) -> str:
        return f"{self.task + '/' if self.task else ''}{self.service}:{self.operation}"

    def take(self, service: str, operation: str, task: str | None) -> bool:
        """Whether it applies to this call (then the call is counted)."""
        if (service, operation) != (self.service, self.operation):
            return False
        if self.task is not None and task != self.task:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        self.injected += 1
        return True


@dataclass
class Fault(Injection):
    error_code: str = DEFAULT_ERROR_CODE

    @property
    def spec(self) -> str:
        return f"{self.target}={self.error_code}"


@dataclass
class Delay(Injection):
    seconds: float

    @property
    def spec(self) -> str:
        return f"{self.target}={self.seconds:g}"


def parse_fault(spec: str) -> Fault:
    """``[TASK/]SERVICE:Operation[=ErrorCode]`` -> :class:`Fault` (every call fails)."""
    task, service, operation, code = _split(
        spec, "[TASK/]SERVICE:Operation[=ErrorCode]", value_required=False
    )
    service, operation = _target(service, operation, spec)
    return Fault(service, operation, error_code=code or DEFAULT_ERROR_CODE, task=task)


def parse_delay(spec: str) -> Delay:
    """``[TASK/]SERVICE:Operation=SECONDS`` -> :class:`Delay` (every call)."""
    task, service, operation, value = _split(
        spec, "[TASK/]SERVICE:Operation=SECONDS", value_required=True
    )
    service, operation = _target(service, operation, spec)
    return Delay(service, operation, seconds=_seconds(value, spec), task=task)


_I = TypeVar("_I", bound=Injection)


class Faults:
    """The active faults and delays; thread-safe. Tests use :meth:`add`, :meth:`delay` and
    :meth:`clear`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._delays: list[Delay] = []

    def add(
        self,
        service: str,
        operation: str,
        error_code: str = DEFAULT_ERROR_CODE,
        *,
        count: int | None = None,
        task: str | None = None,
    ) -> Fault:
        """Make the tasks' ``service:operation`` calls fail (the first ``count`` ones, or all;
        only ``task``'s, when given)."""
        spec = f"{task + '/' if task else ''}{service}:{operation}"
        service, operation = _target(service, operation, spec)
        fault = Fault(service, operation, error_code, remaining=count, task=_task(task, spec))
        return self._append(self._faults, fault)

    def add_spec(self, spec: str) -> Fault:
        return self._append(self._faults, parse_fault(spec))

    def delay(
        self,
        service: str,
        operation: str,
        seconds: float,
        count: int | None = None,
        *,
        task: str | None = None,
    ) -> Delay:
        """Make the tasks' ``service:operation`` calls (the first ``count`` ones, or all; only
        ``task``'s, when given) take ``seconds`` longer: each HTTP attempt waits that long
        before it is sent."""
        spec = f"{task + '/' if task else ''}{service}:{operation}={seconds}"
        service, operation = _target(service, operation, spec)
        delay = Delay(
            service,
            operation,
            seconds=_seconds(seconds, spec),
            remaining=count,
            task=_task(task, spec),
        )
        return self._append(self._delays, delay)

    def add_delay_spec(self, spec: str) -> Delay:
        return self._append(self._delays, parse_delay(spec))

    def _append(self, injections: list[_I], injection: _I) -> _I:
        with self._lock:
            injections.append(injection)
        return injection

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def active_delays(self) -> list[Delay]:
        with self._lock:
            return list(self._delays)

    def take(self, service: str, operation: str, task: str | None = None) -> Fault | None:
        """The fault that applies to this call, counting it; None when the call may proceed."""
        with self._lock:
            return next((f for f in self._faults if f.take(service, operation, task)), None)

    def take_delay(self, service: str, operation: str, task: str | None = None) -> Delay | None:
        """The delay that applies to this call, counting it; None when it runs at full speed."""
        with self._lock:
            return next((d for d in self._delays if d.take(service, operation, task)), None)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap botocore's API call entry point and HTTP send for the duration of the block."""
        make_api_call = botocore.client.BaseClient._make_api_call
        send = botocore.endpoint.Endpoint._send
        faults = self
        # The delay taken for the task's API call in progress; each of its HTTP attempts waits it
        # out. One per installation, so an installation inside another takes only its own.
        call_delay: contextvars.ContextVar[Delay | None] = contextvars.ContextVar(
            f"local_mode_call_delay_{id(self)}", default=None
        )

        def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            task = _current_task.get()
            if task is None:
                return make_api_call(client, operation_name, api_params)
            service = client.meta.service_model.service_name
            name = _current_task_name.get()
            fault = faults.take(service, operation_name, name)
            if fault is not None:
                raise _client_error(client, operation_name, fault, task)
            token = call_delay.set(faults.take_delay(service, operation_name, name))
            try:
                return make_api_call(client, operation_name, api_params)
            finally:
                call_delay.reset(token)

        def _send(endpoint: Any, request: Any) -> Any:
            delay = call_delay.get()
            if delay is not None and _current_task.get() is not None:
                time.sleep(delay.seconds)  # past the before-send hooks: the request is going out
            return send(endpoint, request)

        with (
            mock.patch.object(botocore.client.BaseClient, "_make_api_call", _make_api_call),
            mock.patch.object(botocore.endpoint.Endpoint, "_send", _send),
        ):
            yield


def _client_error(client: Any, operation_name: str, fault: Fault, task: str) -> ClientError:
    status = _STATUS_BY_CODE.get(fault.error_code, 400)
    response: dict[str, Any] = {
        "Error": {
            "Code": fault.error_code,
            "Message": f"Injected fault {fault.spec} (local mode, function {task})",
        },
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    error_class = client.exceptions.from_code(fault.error_code)
    error: ClientError = error_class(response, operation_name)
    return error
