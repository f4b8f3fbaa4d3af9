"""moto's Lambda invocations routed to the arm64 sandboxes, as local mode routes them to its
in-process handlers (:mod:`local.lambda_runtime`): the state machines, and any client of the
emulator's Lambda API, run the guests.

A scenario can make the next invocation of a function fail as Lambda reports a sandbox that
timed out, without running it: how the workflow's failure paths are reached.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from local.lambda_runtime import routed_invocations
from local.template import FunctionSpec
from verify.sandbox import Sandbox, SandboxFailed

TIMED_OUT = "Sandbox.Timedout"


class Router:
    def __init__(
        self, sandboxes: Mapping[str, Sandbox], spec_for: Callable[[str], FunctionSpec | None]
    ) -> None:
        self._sandboxes = sandboxes  # by function name
        self._spec_for = spec_for  # a function name or (qualified) ARN -> its spec
        self._times_out: set[str] = set()
        self._lock = threading.Lock()
        self.label = ""  # the scenario running: each call is recorded under it

    def time_out_next(self, function_name: str) -> None:
        """The next invocation of the function times out without running."""
        with self._lock:
            self._times_out.add(function_name)

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        spec = self._spec_for(function_name)
        sandbox = self._sandboxes.get(spec.name) if spec else None
        if spec is None or sandbox is None:
            return _error(response_headers, "ResourceNotFoundException", function_name)
        with self._lock:
            timed_out = spec.name in self._times_out
            self._times_out.discard(spec.name)
        if timed_out:
            message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
            return _error(response_headers, TIMED_OUT, message)
        raw = body.decode() if isinstance(body, bytes) else (body or "{}")
        try:
            answer = sandbox.invoke(json.loads(raw), self.label)
        except SandboxFailed as exc:  # recorded by the sandbox; Lambda would time it out
            return _error(response_headers, TIMED_OUT, str(exc))
        if "error" in answer:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(answer["error"]).encode()
        return json.dumps(answer["result"]).encode()

    def last_result(self, function_name: str) -> Any:
        """What the function's handler returned last (None: not called, or it failed)."""
        calls = self._sandboxes[function_name].calls
        return calls[-1].result if calls else None

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Replace moto's ``LambdaSimpleBackend.invoke`` (local mode's, while it is installed)."""
        with routed_invocations(self.invoke):
            yield


def _error(response_headers: dict[str, str], error_type: str, message: str) -> bytes:
    response_headers["x-amz-function-error"] = "Unhandled"
    payload = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
    return json.dumps(payload).encode()
