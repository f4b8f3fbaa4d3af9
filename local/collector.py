"""Python's full garbage collections, run between executions instead of inside a task's clock.

On AWS each Lambda invocation runs in a small process of its own. Local mode keeps every emulated
service's state (every object version, item and log event), the state machine interpreter and the
tasks in one process, and CPython's automatic full (generation 2) collection walks all of it while
holding the interpreter lock: 0.3-0.6 s pauses after a few hundred uploads in one test session.
Such a pause inside a task is time AWS would never charge it -- it blew DynamoDB's 0.35 s read
timeout and the tasks' SDK deadline (tasks.contract.timing) on ordinary uploads.

So while local mode runs, the objects of its start-up are frozen out of every collection
(``gc.freeze``), automatic full collections are off, and a collector thread runs one whenever one
is due (as many young collections as CPython's own threshold asks for) at a moment no execution is
in flight, holding new executions back for the collection only
(:meth:`local.saturation.Saturation.between_executions`). Executions keep overlapping as they
would on AWS: only when no idle moment has come for :data:`PATIENCE_SECONDS` (a steady load) does
the collector also wait for the running executions to end. Young collections (generations 0 and
1: recent objects only, milliseconds) stay automatic.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Final

from local.saturation import Saturation

# How often the collector looks whether a full collection is due and no execution runs.
POLL_SECONDS: Final = 0.1
# How long a due collection waits for an idle moment before it makes one.
PATIENCE_SECONDS: Final = 5.0
# How long it waits for the executions in flight to end (most take well under a second); past that
# it lets the held ones start and tries again later, so a held request loses at most this much of
# API Gateway's 29 s.
DRAIN_SECONDS: Final = 2.0
# Generation 2's threshold while the collector runs: high enough never to trigger by itself.
_NEVER: Final = 1_000_000


class Collector:
    """Runs full collections between executions (module doc) from :meth:`start` to :meth:`stop`."""

    def __init__(
        self,
        saturation: Saturation,
        *,
        collect: Callable[[], object] = gc.collect,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._saturation = saturation
        self._collect = collect
        self._poll_seconds = poll_seconds
        self._due_after = gc.get_threshold()[2]
        self._threshold = gc.get_threshold()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.collections = 0  # full collections run

    def start(self) -> None:
        if gc.get_threshold()[2] == _NEVER:
            # The collector's settings belong to the whole process: a second one would take the
            # first one's as CPython's and never find a collection due.
            raise RuntimeError("a collector already runs in this process")
        gc.collect()
        gc.freeze()
        young, middle, _ = self._threshold
        gc.set_threshold(young, middle, _NEVER)
        self._thread = threading.Thread(target=self._run, name="local-gc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        gc.set_threshold(*self._threshold)
        gc.unfreeze()

    def due(self) -> bool:
        """Whether CPython would have run a full collection by now."""
        return gc.get_count()[2] >= self._due_after

    def collect_between_executions(self, *, drain: bool = True) -> bool:
        """One full collection while no execution runs; False if none could. ``drain``: wait
        (at most DRAIN_SECONDS) for the running ones to end, else collect only if none runs."""
        with self._saturation.between_executions(DRAIN_SECONDS if drain else 0) as idle:
            if idle:
                self._collect()
                self.collections += 1
        return idle

    def _run(self) -> None:
        due_since: float | None = None
        while not self._stopped.wait(self._poll_seconds):
            if not self.due():
                due_since = None
                continue
            due_since = due_since or time.monotonic()
            patient = time.monotonic() - due_since < PATIENCE_SECONDS
            if self.collect_between_executions(drain=not patient):
                due_since = None
