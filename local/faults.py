"""Fault injection at the AWS-call level, for the tasks' calls only.

While the emulator runs, every botocore client's API call passes through :meth:`Faults.check`
(``BaseClient._make_api_call`` is wrapped for the emulator's lifetime, so clients the tasks created
and cached before the fault was set are covered too). A call fails only when it is made inside a
task invocation (a context variable set by the Lambda runtime) and a fault matches its service and
operation; the error is the ``ClientError`` botocore itself would raise for that error code, so the
tasks' real error handling runs. The test clients and the emulator's own clients are never
affected.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.client
from botocore.exceptions import ClientError

DEFAULT_ERROR_CODE = "InternalServerError"

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


@contextlib.contextmanager
def task_scope(function_name: str) -> Iterator[None]:
    """Marks the calls made in this context as a task's calls."""
    token = _current_task.set(function_name)
    try:
        yield
    finally:
        _current_task.reset(token)


@dataclass
class Fault:
    service: str  # botocore service name, lower case: "s3", "dynamodb"
    operation: str  # API operation name: "PutObject"
    error_code: str = DEFAULT_ERROR_CODE
    remaining: int | None = None  # None: every call fails
    injected: int = 0

    @property
    def spec(self) -> str:
        return f"{self.service}:{self.operation}={self.error_code}"


def parse_fault(spec: str) -> Fault:
    """``SERVICE:Operation[=ErrorCode]`` -> :class:`Fault` (every call fails)."""
    target, _, code = spec.partition("=")
    service, sep, operation = target.partition(":")
    if not sep or not service.strip() or not operation.strip():
        raise ValueError(f"fault {spec!r} is not SERVICE:Operation[=ErrorCode]")
    return Fault(service.strip().lower(), operation.strip(), code.strip() or DEFAULT_ERROR_CODE)


class Faults:
    """The active faults; thread-safe. Tests use :meth:`add` / :meth:`clear`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        service: str,
        operation: str,
        error_code: str = DEFAULT_ERROR_CODE,
        *,
        count: int | None = None,
    ) -> Fault:
        """Make the tasks' ``service:operation`` calls fail (the first ``count`` ones, or all)."""
        fault = Fault(service.lower(), operation, error_code, count)
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_spec(self, spec: str) -> Fault:
        fault = parse_fault(spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, service: str, operation: str) -> Fault | None:
        """The fault that applies to this call, counting it; None when the call may proceed."""
        with self._lock:
            for fault in self._faults:
                if fault.service != service or fault.operation != operation:
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                fault.injected += 1
                return fault
        return None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap botocore's API call entry point for the duration of the block."""
        original = botocore.client.BaseClient._make_api_call
        faults = self

        def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            task = _current_task.get()
            if task is not None:
                service = client.meta.service_model.service_name
                fault = faults.take(service, operation_name)
                if fault is not None:
                    raise _client_error(client, operation_name, fault, task)
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = _make_api_call
        try:
            yield
        finally:
            botocore.client.BaseClient._make_api_call = original


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
