"""Retries and the SDK's time budget: how long each attempt may take, and how often it is made.

The state machine builds every task's ``Retry`` from :data:`TASK_RETRY` (infra/state_machine.py
writes down the worst-case time it implies), and compensate reads it too: an attempt below
``TASK_RETRY.max_attempts`` still has a retry coming, so a transient failure is left to it.
The tasks' AWS clients (tasks/core/aws.py) are configured from the :class:`SdkBudget` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class RetryPolicy:
    """A Step Functions ``Retry``: ``max_attempts`` retries after the first attempt."""

    max_attempts: int
    interval_seconds: int
    backoff_rate: float

    def waits_seconds(self) -> list[float]:
        """The pause before each retry."""
        return [self.interval_seconds * self.backoff_rate**n for n in range(self.max_attempts)]


# Every task state's Retry: one retry after 1 s (the backoff rate only matters for a second
# retry, which never happens).
TASK_RETRY: Final = RetryPolicy(max_attempts=1, interval_seconds=1, backoff_rate=2.0)

# botocore's standard retry mode sleeps up to 2 ** (n - 1) seconds (capped at 20) before retry n.
_STANDARD_MAX_BACKOFF_SECONDS: Final = 20.0


@dataclass(frozen=True)
class SdkBudget:
    """One AWS client's timeouts and attempts (botocore's standard retry mode)."""

    connect_timeout: float
    read_timeout: float
    total_max_attempts: int

    def worst_case_seconds(self) -> float:
        """The longest one SDK call can take: every attempt waiting its full connect and read
        timeouts, plus the largest back-off before each retry."""
        per_attempt = self.connect_timeout + self.read_timeout
        backoff = sum(
            min(2.0 ** (n - 1), _STANDARD_MAX_BACKOFF_SECONDS)
            for n in range(1, self.total_max_attempts)
        )
        return self.total_max_attempts * per_attempt + backoff


# Store and compensate: one SDK retry of a throttled or failed call.
DEFAULT_SDK: Final = SdkBudget(connect_timeout=1, read_timeout=2, total_max_attempts=2)
# Record: its whole SDK budget (one attempt, 0.5 s to connect, 1 s per read) stays strictly below
# Record's 2 s Lambda timeout, so a slow DynamoDB ends the task with a named error rather than a
# Lambda timeout. A throttle is retried by the state machine (Retry on TransientStorageError), not
# by the SDK: a retry inside the task would not fit.
RECORD_SDK: Final = SdkBudget(connect_timeout=0.5, read_timeout=1, total_max_attempts=1)
