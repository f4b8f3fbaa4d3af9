"""How saturated the emulator is, and how much its timeouts stretch because of it.

On AWS every execution's Lambda invocations run in their own sandbox with their own CPU, so a
function's timeout and a Task state's ``TimeoutSeconds`` measure the task's own work. Local mode
runs every execution, every handler and the emulated services in one Python process on this
machine's cores: with more executions in flight than cores, each one gets a fraction of a core,
and wall-clock timeouts fire although no task is slow -- 16 clients on 2 cores made 2-3 s
timeouts fire on ordinary uploads. (The handler's own CPU time is no measure either: most of a
task's time is spent in the emulated AWS calls, served by other threads.)

So, while more executions run than there are cores, or the machine is busy with other work
(its one-minute load average above its cores: a test runner, a build), every task timeout is
stretched by the larger of ``executions in flight / cores`` and ``load average / cores`` (the
share of a core each one gets, at worst), and so are the tasks' own SDK timeouts and deadline
(the Lambda runtime passes the factor as ``SDK_TIMEOUT_SCALE``). On an idle machine with at most
one execution per core -- a single client, as in the tests of timeouts -- the template's
timeouts apply unchanged. The state machine's own ``TimeoutSeconds`` and the API's 29 s are not
stretched.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Saturation:
    """Counts executions in flight; :meth:`factor` is what task timeouts are multiplied by."""

    def __init__(self, cores: int | None = None, load: Callable[[], float] | None = None) -> None:
        self.cores = max(1, cores or os.cpu_count() or 1)
        self.load = load or _one_minute_load
        self._in_flight = 0
        self._held = False  # new executions wait (between_executions)
        self._changed = threading.Condition()

    @contextmanager
    def execution(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._held)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    @contextmanager
    def between_executions(self, timeout: float) -> Iterator[bool]:
        """Hold new executions back and wait (at most ``timeout`` seconds) for the running ones to
        end; yields whether none is running. New executions go on when the block ends."""
        with self._changed:
            self._held = True
            idle = self._changed.wait_for(lambda: self._in_flight == 0, timeout=timeout)
        try:
            yield idle
        finally:
            with self._changed:
                self._held = False
                self._changed.notify_all()

    def factor(self) -> float:
        return max(1.0, self._in_flight / self.cores, self.load() / self.cores)


def _one_minute_load() -> float:
    return os.getloadavg()[0]
