"""Runs the real task handlers in-process when the emulated state machine invokes a function.

moto's Lambda backend without Docker (``LambdaSimpleBackend``) only echoes the payload; for the
emulator's lifetime its ``invoke`` is replaced with a call into the handler module named by the
function's ``Handler`` in the template (``tasks.validate.handler`` -> ``tasks.validate``), through
the agreed ``run(event, *, env)`` entry point. ``env`` is the function's own environment from the
template plus the emulator endpoint and dummy credentials; ``os.environ`` is never touched, so
concurrent invocations of different functions cannot see each other's settings.

Like Lambda, each invocation is bounded by the function's timeout (stretched only while more
executions run than there are cores: :mod:`local.saturation`). At the timeout Lambda stops the
sandbox: a request it had already sent may still land, but none of its code runs on. A thread
cannot be stopped, so a timed-out invocation's thread is stopped at its next AWS call instead
(:class:`SandboxStopped`); the call it is in the middle of completes. An unhandled exception comes
back as ``x-amz-function-error: Unhandled`` with ``errorType`` / ``errorMessage`` / ``stackTrace``,
and what the handler logs or prints goes to the function's CloudWatch log group (between
``START``/``END``/``REPORT`` lines), where operators and tests read it through the emulator
endpoint.
"""

from __future__ import annotations

import builtins
import contextvars
import importlib
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

import botocore.client

from local.faults import task_scope
from local.saturation import Saturation
from local.template import ACCOUNT_ID, REGION, FunctionSpec
from tasks.contract import names

LOG = logging.getLogger("local.lambda")

# Keep at most this many events per log stream: a long local run must not grow without bound.
MAX_EVENTS_PER_STREAM = 5_000


class SandboxStopped(BaseException):
    """Raised at the next AWS call of an invocation that timed out: Lambda stopped its sandbox.
    A BaseException, so the tasks' own ``except Exception`` cannot go on past it."""


# Set while the invocation running in this context has timed out.
_sandbox_stopped: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "local_mode_sandbox_stopped", default=None
)


@contextmanager
def _stopped_sandboxes_call_nothing() -> Iterator[None]:
    """Every botocore call made by a timed-out invocation raises :class:`SandboxStopped`."""
    original = botocore.client.BaseClient._make_api_call

    def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
        stopped = _sandbox_stopped.get()
        if stopped is not None and stopped.is_set():
            raise SandboxStopped(operation_name)
        return original(client, operation_name, api_params)

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", _make_api_call):
        yield


@contextmanager
def _prints_captured(capture: _CaptureHandler) -> Iterator[None]:
    """What an invocation's thread prints to stdout goes to its log lines, as Lambda sends a
    function's stdout to its log group: the tasks' metrics are printed (CloudWatch's embedded
    metric format). ``print`` itself is wrapped, not ``sys.stdout``, which test runners swap."""
    original = builtins.print

    def print_(*values: object, sep: str | None = " ", end: str | None = "\n", **kw: Any) -> None:
        invocation = capture.invocation_of(threading.get_ident())
        if invocation is None or kw.get("file") not in (None, sys.stdout):
            original(*values, sep=sep, end=end, **kw)
            return
        text = (" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end)
        invocation.lines.extend(line for line in text.splitlines() if line)

    with mock.patch.object(builtins, "print", print_):
        yield


class TaskModule(Protocol):
    def run(self, event: dict[str, Any], *, env: Mapping[str, str]) -> Any: ...


@dataclass
class Invocation:
    """What one invocation did; kept briefly for callers that want to inspect it."""

    function_name: str
    request_id: str
    started: float
    lines: list[str] = field(default_factory=list)


class _CaptureHandler(logging.Handler):
    """Collects log records emitted by threads that are running an invocation."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._active: dict[int, Invocation] = {}
        self._lock = threading.Lock()

    @contextmanager
    def capturing(self, invocation: Invocation) -> Iterator[None]:
        ident = threading.get_ident()
        with self._lock:
            self._active[ident] = invocation
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(ident, None)

    def invocation_of(self, thread: int) -> Invocation | None:
        return self._active.get(thread)

    def emit(self, record: logging.LogRecord) -> None:
        invocation = self._active.get(record.thread or 0)
        if invocation is None:
            return
        logger = logging.getLogger(record.name)
        formatter = next(
            (h.formatter for h in logger.handlers if h.formatter and h is not self), None
        )
        try:
            text = formatter.format(record) if formatter else self._default_format(record)
        except Exception:  # a broken formatter must not break the task
            text = record.getMessage()
        invocation.lines.append(text)

    @staticmethod
    def _default_format(record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"[{record.levelname}]\t{stamp}\t{record.getMessage()}"


class LambdaRuntime:
    """Routes moto's Lambda invocations to the real handler modules."""

    def __init__(
        self,
        functions: list[FunctionSpec],
        *,
        aws_endpoint: str,
        saturation: Saturation | None = None,
    ) -> None:
        self._by_name: dict[str, FunctionSpec] = {}
        for spec in functions:
            self._by_name[spec.name] = spec
            self._by_name[spec.arn] = spec
        self._aws_endpoint = aws_endpoint
        self._modules: dict[str, TaskModule] = {}
        self._import_lock = threading.Lock()
        self._capture = _CaptureHandler()
        self._streams: dict[str, str] = {}
        self._logs_lock = threading.Lock()
        self._saturation = saturation
        self.invocation_count: dict[str, int] = {spec.name: 0 for spec in functions}

    # -- environment ----------------------------------------------------------------------
    def environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The env mapping handed to ``run``: the template's variables plus the endpoint, and
        how much slower than AWS the emulator is right now (the task stretches its SDK timeouts
        and deadline by it, as the runtime stretches the function's timeout: local.saturation)."""
        env = dict(spec.environment)
        if self._saturation is not None:
            env[names.SDK_TIMEOUT_SCALE] = f"{self._saturation.factor():.2f}"
        env.update(
            {
                "AWS_ENDPOINT_URL": self._aws_endpoint,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            }
        )
        return env

    def module(self, spec: FunctionSpec) -> TaskModule:
        with self._import_lock:
            if spec.module not in self._modules:
                module: Any = importlib.import_module(spec.module)
                if not callable(getattr(module, "run", None)):
                    raise RuntimeError(
                        f"{spec.module} has no run(event, *, env) (handler {spec.handler})"
                    )
                self._modules[spec.module] = module
                self._attach_capture()
            return self._modules[spec.module]

    def _attach_capture(self) -> None:
        """Listen on the root logger and on every logger that does not propagate to it."""
        loggers: list[logging.Logger] = [logging.getLogger()]
        for candidate in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(candidate, logging.Logger) and not candidate.propagate:
                loggers.append(candidate)
        for logger in loggers:
            if self._capture not in logger.handlers:
                logger.addHandler(self._capture)

    def preload(self) -> None:
        """Import every handler module now, so the first request does not pay for it."""
        for spec in {s.module: s for s in self._by_name.values()}.values():
            self.module(spec)

    def detach(self) -> None:
        for candidate in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            if isinstance(candidate, logging.Logger) and self._capture in candidate.handlers:
                candidate.removeHandler(self._capture)

    # -- invocation -----------------------------------------------------------------------
    def spec_for(self, function_name: str) -> FunctionSpec | None:
        name = function_name
        if name not in self._by_name and name.startswith("arn:"):
            # A qualified ARN (":$LATEST" or an alias) names the same function.
            name = ":".join(name.split(":")[:7])
        return self._by_name.get(name)

    def invoke(
        self,
        function_name: str,
        body: Any,
        response_headers: dict[str, str],
        env_overrides: Mapping[str, str] | None = None,
    ) -> bytes:
        """One invocation, as Lambda runs it; ``env_overrides`` replace variables of the
        function's environment for this invocation only (local mode's sweep settings)."""
        spec = self.spec_for(function_name)
        if spec is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("ResourceNotFoundException", f"no function {function_name}", [])
        raw = body.decode() if isinstance(body, bytes) else (body or "{}")
        event = json.loads(raw) if raw else {}
        invocation = Invocation(spec.name, str(uuid.uuid4()), time.time())
        self.invocation_count[spec.name] = self.invocation_count.get(spec.name, 0) + 1
        outcome: dict[str, Any] = {}
        context = contextvars.copy_context()
        stopped = threading.Event()

        def target() -> None:
            task = spec.module.rsplit(".", 1)[-1]
            _sandbox_stopped.set(stopped)  # in the invocation's own context copy
            with self._capture.capturing(invocation), task_scope(spec.name, task):
                try:
                    env = {**self.environment(spec), **(env_overrides or {})}
                    outcome["result"] = self.module(spec).run(event, env=env)
                except BaseException as exc:
                    outcome["error"] = exc
                    outcome["trace"] = traceback.format_exception(exc)

        worker = threading.Thread(
            target=context.run, args=(target,), name=f"lambda-{spec.name}", daemon=True
        )
        worker.start()
        self._wait(worker, spec.timeout_seconds)
        duration_ms = (time.time() - invocation.started) * 1000
        if worker.is_alive():
            # Lambda stops the sandbox here: the thread makes no further call, its result is
            # dropped.
            stopped.set()
            message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
            response_headers["x-amz-function-error"] = "Unhandled"
            lines = [*invocation.lines, f"{_stamp()} {invocation.request_id} {message}"]
            payload = _error_payload("Sandbox.Timedout", message, [])
        elif "error" in outcome:
            exc = outcome["error"]
            response_headers["x-amz-function-error"] = "Unhandled"
            stack = list(outcome["trace"][1:-1])
            lines = [
                *invocation.lines,
                f"[ERROR] {type(exc).__name__}: {exc}\n{''.join(outcome['trace'])}",
            ]
            payload = _error_payload(type(exc).__name__, str(exc), stack)
        else:
            lines = invocation.lines
            try:
                payload = json.dumps(outcome.get("result")).encode()
            except (TypeError, ValueError) as exc:
                response_headers["x-amz-function-error"] = "Unhandled"
                payload = _error_payload(
                    "Runtime.MarshalError", f"Unable to marshal response: {exc}", []
                )
        invocation.lines = [
            f"START RequestId: {invocation.request_id} Version: $LATEST",
            *lines,
            f"END RequestId: {invocation.request_id}",
            f"REPORT RequestId: {invocation.request_id}\tDuration: {duration_ms:.2f} ms",
        ]
        self._publish_logs(spec, invocation)
        return payload

    def _wait(self, worker: threading.Thread, timeout_seconds: float) -> None:
        """Join ``worker`` for the function's timeout, stretched while the emulator is saturated
        (the largest stretch seen during the invocation; see :mod:`local.saturation`)."""
        started = time.monotonic()
        factor = 1.0
        while worker.is_alive():
            if self._saturation is not None:
                factor = max(factor, self._saturation.factor())
            remaining = timeout_seconds * factor - (time.monotonic() - started)
            if remaining <= 0:
                return
            worker.join(timeout=min(remaining, 0.5))

    def _publish_logs(self, spec: FunctionSpec, invocation: Invocation) -> None:
        try:
            from moto.logs.models import logs_backends

            backend = logs_backends[ACCOUNT_ID][REGION]
            with self._logs_lock:
                if spec.log_group not in backend.groups:
                    backend.create_log_group(spec.log_group, tags={})
                stream = self._streams.get(spec.name)
                if stream is None:
                    day = datetime.now(UTC).strftime("%Y/%m/%d")
                    stream = f"{day}/[$LATEST]{uuid.uuid4().hex}"
                    backend.create_log_stream(spec.log_group, stream)
                    self._streams[spec.name] = stream
                now = int(time.time() * 1000)
                backend.put_log_events(
                    spec.log_group,
                    stream,
                    [{"timestamp": now, "message": line} for line in invocation.lines],
                )
                events = backend.groups[spec.log_group].streams[stream].events
                if len(events) > MAX_EVENTS_PER_STREAM:
                    del events[: len(events) - MAX_EVENTS_PER_STREAM]
        except Exception:  # logging must never fail an invocation
            LOG.exception("could not write the log of %s", spec.name)

    # -- moto integration -----------------------------------------------------------------
    @contextmanager
    def installed(self) -> Iterator[None]:
        """Replace moto's LambdaSimpleBackend.invoke for the duration of the block."""
        try:
            with (
                routed_invocations(self.invoke),
                _stopped_sandboxes_call_nothing(),
                _prints_captured(self._capture),
            ):
                yield
        finally:
            self.detach()


@contextmanager
def routed_invocations(invoke: Callable[[str, Any, dict[str, str]], bytes]) -> Iterator[None]:
    """moto's ``LambdaSimpleBackend.invoke`` (which only echoes) answered by
    ``invoke(function_name, body, response_headers)`` for the duration of the block."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def backend_invoke(
        backend: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        return invoke(function_name, body, response_headers)

    with mock.patch.object(LambdaSimpleBackend, "invoke", backend_invoke):
        yield


def runtime_variables(
    *,
    handler: str,
    code_dir: Path,
    runtime_dir: Path,
    memory_mb: int,
    xray_daemon: str,
    path: str,
) -> dict[str, str]:
    """What the Lambda Python 3.13 runtime sets around a handler (the parts the libraries look
    at: Powertools and the X-Ray SDK take their Lambda paths on these), for the sandboxes that run
    a function as shipped (``bench``, ``verify``)."""
    return {
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,
        "LAMBDA_TASK_ROOT": str(code_dir),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "LANG": "en_US.UTF-8",
        "PATH": path,
        "TZ": ":UTC",
    }


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error_payload(error_type: str, message: str, stack: list[str]) -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": stack}
    ).encode()
