"""EventBridge Scheduler, for the one schedule the stack has: the orphan sweep.

On AWS the sweep function runs every few minutes with the grace period the stack was deployed
with (tasks/sweep.py). Local mode runs the same function the same way, through the Lambda
runtime (its logs go to its log group), on a short interval and a short grace period, so that a
file landing late -- a ``--delay`` past a task's timeout -- is caught here as it is on AWS:
``python -m local --sweep-interval 30 --orphan-grace 60``. Tests call :meth:`Sweeper.run_once`.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from local.lambda_runtime import LambdaRuntime
from local.saturation import Saturation
from local.template import FunctionSpec
from tasks.contract import names


class SweepFailed(Exception):
    """The sweep function raised (its error type and message)."""


class Sweeper:
    """Invokes the sweep function as its schedule does, once or on an interval."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        function: FunctionSpec,
        saturation: Saturation,
        *,
        grace_seconds: float | None = None,
        deletes: bool | None = None,
    ) -> None:
        self._runtime = runtime
        self._function = function
        self._saturation = saturation
        self._overrides = _overrides(grace_seconds, deletes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def grace_seconds(self) -> float:
        """The grace period the sweep runs with (local mode's, else the template's)."""
        value = self._overrides.get(names.ORPHAN_GRACE_SECONDS)
        return float(value or self._function.environment[names.ORPHAN_GRACE_SECONDS])

    @property
    def deletes(self) -> bool:
        """Whether the sweep deletes the orphans it finds (the template's
        ``sweepDeletesOrphans``, unless overridden), as tasks/sweep.py reads it."""
        value = self._overrides.get(names.SWEEP_DELETES_ORPHANS)
        if value is None:
            value = self._function.environment.get(names.SWEEP_DELETES_ORPHANS, "")
        return value.lower() == "true"

    def run_once(
        self, *, grace_seconds: float | None = None, deletes: bool | None = None
    ) -> dict[str, Any]:
        """One sweep, now; what it returned (its counts). Raises :class:`SweepFailed`."""
        headers: dict[str, str] = {}
        overrides = {**self._overrides, **_overrides(grace_seconds, deletes)}
        event = json.dumps({"requestId": f"local-sweep-{uuid.uuid4()}"})
        # A run is an execution like the workflow's: no full collection pauses it midway
        # (local.collector), as none pauses a function on AWS.
        with self._saturation.execution():
            payload = self._runtime.invoke(self._function.name, event, headers, overrides)
        result: dict[str, Any] = json.loads(payload)
        if "x-amz-function-error" in headers:
            raise SweepFailed(f"{result.get('errorType')}: {result.get('errorMessage')}")
        return result

    def every(self, interval_seconds: float) -> None:
        """Run the sweep every ``interval_seconds`` in the background until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.run_once()
                except SweepFailed:
                    continue  # logged in its log group; the next run tries again, as on AWS

        self._thread = threading.Thread(target=loop, name="local-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _overrides(grace_seconds: float | None, deletes: bool | None) -> dict[str, str]:
    overrides: dict[str, str] = {}
    if grace_seconds is not None:
        overrides[names.ORPHAN_GRACE_SECONDS] = str(grace_seconds)
    if deletes is not None:
        overrides[names.SWEEP_DELETES_ORPHANS] = str(deletes).lower()
    return overrides
