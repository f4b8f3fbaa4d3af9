"""One function's sandbox: an emulated arm64 Python (:mod:`verify.guest`) that imports the
handler once and answers invocations over JSON lines, one at a time, as a Lambda sandbox does.

The process gets only the function's Lambda environment (nothing of this process's) and runs in
its code asset, as Lambda runs in ``/var/task``. What the handler logs arrives on the process's
stderr; the last lines are kept to explain a crash.
"""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from verify import guest
from verify.functions import GuestFunction
from verify.rootfs import Target

GUEST_SCRIPT = Path(guest.__file__).resolve()
# This process's Python (its virtualenv, its installation): a sandbox imports nothing from there.
HOST_PYTHON = sorted({sys.prefix, sys.base_prefix})
LOG_LINES_KEPT = 20
# The tasks' SDK module and the services they call: their clients are created during init
# (verify.guest says why).
SDK_WARM_UP: guest.WarmUp = {
    "module": "tasks.core.aws",
    "factory": "client",
    "services": ["dynamodb", "s3"],
}


class SandboxFailed(Exception):
    """The sandbox did not start, died, or did not answer in time (one line)."""


@dataclass(frozen=True)
class Call:
    """One invocation, for the report."""

    label: str  # the scenario that made it
    seconds: float
    result: Any  # what the handler returned
    error: str | None  # "errorType: errorMessage" of an unhandled error


class Sandbox:
    def __init__(self, function: GuestFunction, target: Target, env: dict[str, str]) -> None:
        self.function = function
        self.target = target
        self.env = env
        self.ready: dict[str, Any] = {}  # the guest's ready message: init seconds, Python...
        self.start_failure: str | None = None
        self.calls: list[Call] = []
        self._process: subprocess.Popen[str] | None = None
        self._log_pump: threading.Thread | None = None
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self._lock = threading.Lock()
        self._next_id = 0

    @property
    def config(self) -> guest.Config:
        return {
            "handler": self.function.spec.handler,
            "function_arn": self.function.spec.arn,
            "timeout_seconds": self.timeout_seconds,
            "rootfs": str(self.target.rootfs),
            "front": self.function.import_path,
            "back": [str(self.target.runtime_sdk)],
            "host": HOST_PYTHON,
            "warm_up": SDK_WARM_UP,
        }

    @property
    def timeout_seconds(self) -> float:
        """The function's timeout, stretched as its SDK timeouts are (``SDK_TIMEOUT_SCALE``)."""
        return self.function.spec.timeout_seconds * float(self.env.get("SDK_TIMEOUT_SCALE", 1))

    @property
    def init_seconds(self) -> float | None:
        return float(self.ready["seconds"]) if self.ready else None

    def start(self) -> None:
        # -I: no PYTHON* variables, no user site; -S: no site-packages; -B: the assets stay as
        # synthesized.
        args = ("-I", "-S", "-B", str(GUEST_SCRIPT), json.dumps(self.config))
        process = subprocess.Popen(  # noqa: S603
            self.target.command(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.function.code,
        )
        self._process = process
        _drain(process.stdout, self._read_answer)
        self._log_pump = _drain(process.stderr, self._read_log)

    def wait_ready(self, timeout: float) -> None:
        """Wait for the handler's import (Lambda's init); SandboxFailed if it failed."""
        first = self._answer(timeout, "importing the handler")
        if "ready" not in first:
            raise SandboxFailed(str(first.get("failed")))
        self.ready = first["ready"]

    def invoke(self, event: Any, label: str) -> dict[str, Any]:
        """The handler's answer to ``event``: ``{"result": ...}`` or ``{"error": payload}``;
        SandboxFailed (recorded as the call's error too) if the guest died or did not answer."""
        started = time.monotonic()
        with self._lock:
            try:
                answer = self._exchange(event)
            except SandboxFailed as exc:
                seconds = time.monotonic() - started
                self.calls.append(Call(label, seconds, None, f"{type(exc).__name__}: {exc}"))
                raise
        error = answer.get("error")
        reason = f"{error['errorType']}: {error['errorMessage']}" if error else None
        self.calls.append(Call(label, float(answer["seconds"]), answer.get("result"), reason))
        return answer

    def _exchange(self, event: Any) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdin is not None
        self._next_id += 1
        request_id = self._next_id
        try:
            self._process.stdin.write(json.dumps({"id": request_id, "event": event}) + "\n")
            self._process.stdin.flush()
        except OSError:
            raise SandboxFailed(self._death()) from None
        answer = self._answer(self.timeout_seconds * 2, "answering")
        while answer.get("id") != request_id:  # the late answer of a call that timed out
            answer = self._answer(self.timeout_seconds * 2, "answering")
        return answer

    def _read_answer(self, line: str | None) -> None:
        self._answers.put(None if line is None else json.loads(line))

    def _read_log(self, line: str | None) -> None:
        if line:
            self._log.append(line)

    def _answer(self, timeout: float, doing: str) -> dict[str, Any]:
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise SandboxFailed(f"no answer after {timeout:.0f} s {doing}") from None
        if answer is None:
            raise SandboxFailed(self._death())
        return answer

    def _death(self) -> str:
        assert self._process is not None
        status = self._process.wait()
        if self._log_pump is not None:  # its last lines say why
            self._log_pump.join(timeout=5)
        last = self._log[-1] if self._log else "no output"
        return f"the guest exited with status {status}: {last}"

    def close(self) -> None:
        """End the guest (end of stdin ends its loop), killing it if it does not end."""
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # a guest that died took its stdin with it
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drain(stream: IO[str] | None, sink: Callable[[str | None], None]) -> threading.Thread:
    """Feed each line of ``stream`` to ``sink`` on a thread of its own, then None."""
    assert stream is not None

    def pump() -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        sink(None)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread
