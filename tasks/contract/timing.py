"""The time budget: every task's timeouts, its retries, and how long its AWS calls may take.

Three clocks nest, each ending strictly inside the next:

- the **SDK deadline**: no attempt of an AWS call starts unless its connect and read timeouts
  can run out before it (tasks/core/aws.py refuses a late attempt), so every call has ended
  :data:`SDK_END_MARGIN_SECONDS` before
- the **function's timeout** (Lambda stops the sandbox there), which ends
  :data:`START_MARGIN_SECONDS` before
- the **Task state's TimeoutSeconds** (Step Functions' clock, which also counts the invoke and a
  cold start).

A request that was already sent when a clock ran out can still land afterwards (Lambda stops the
sandbox, not the network): the workflow fences a late metadata write (tasks/core/ledger.py), and
the sweep finds a late file (tasks/core/sweep.py). The state machine builds every Retry from
:data:`TASK_RETRY`; ``worst_case_seconds`` and :func:`workflow_worst_case_seconds` are what
infra/state_machine.py writes down and tests/infrastructure recomputes from the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tasks.contract import names


@dataclass(frozen=True)
class RetryPolicy:
    """A Step Functions ``Retry``: ``max_attempts`` retries after the first attempt."""

    max_attempts: int
    interval_seconds: int
    backoff_rate: float

    def waits_seconds(self) -> list[float]:
        """The pause before each retry."""
        return [self.interval_seconds * self.backoff_rate**n for n in range(self.max_attempts)]


# Every retried task state's Retry: one retry after 1 s (the backoff rate only matters for a
# second retry, which never happens).
TASK_RETRY: Final = RetryPolicy(max_attempts=1, interval_seconds=1, backoff_rate=2.0)

# botocore's standard retry mode sleeps up to 2 ** (n - 1) seconds (capped at 20) before retry n.
_STANDARD_MAX_BACKOFF_SECONDS: Final = 20.0


@dataclass(frozen=True)
class SdkBudget:
    """One AWS client's timeouts and attempts (botocore's standard retry mode)."""

    connect_timeout: float
    read_timeout: float
    total_max_attempts: int

    @property
    def attempt_seconds(self) -> float:
        """The longest one attempt can take: its connect and read timeouts."""
        return self.connect_timeout + self.read_timeout

    def worst_case_seconds(self) -> float:
        """The longest one SDK call can take without a deadline: every attempt waiting its full
        timeouts, plus the largest back-off before each retry."""
        backoff = sum(
            min(2.0 ** (n - 1), _STANDARD_MAX_BACKOFF_SECONDS)
            for n in range(1, self.total_max_attempts)
        )
        return self.total_max_attempts * self.attempt_seconds + backoff


# DynamoDB: milliseconds per call; a second attempt for a throttle, when the deadline allows it.
# One attempt (0.5 s) fits a 1 s function's deadline even after a cold start created its client.
DYNAMODB_SDK: Final = SdkBudget(connect_timeout=0.15, read_timeout=0.35, total_max_attempts=2)
# S3: one attempt. A write whose attempt timed out may still land; a second attempt inside the
# SDK would hide that from the task, which must know (it reports WriteOutcomeUnknown). The read
# timeout is S3's answer to a PUT of at most MAX_FILE_BYTES, usually well under 0.1 s.
S3_SDK: Final = SdkBudget(connect_timeout=0.25, read_timeout=0.75, total_max_attempts=1)
# An upload session's commit, both services. Validate's reads (the session, its parts: a page of
# up to 1,000) and Store's read of the stored file's first bytes: one short attempt each, so that
# two fit a 1 s function's deadline.
SESSION_READ_SDK: Final = SdkBudget(connect_timeout=0.15, read_timeout=0.35, total_max_attempts=1)
# Store's CompleteMultipartUpload: S3 assembles the parts while the call waits (longer for more
# parts), so it gets most of Store's deadline; one attempt (a write, like the PUT).
COMPLETE_SDK: Final = SdkBudget(connect_timeout=0.25, read_timeout=1.25, total_max_attempts=1)
# The scheduled sweep, both services: no client waits on it, a page of versions may take S3 a
# while to list, and its writes (closing an intent, deleting by version id) are safe to repeat.
# Patient timeouts and retries; the 60 s deadline still bounds the run.
SWEEP_SDK: Final = SdkBudget(connect_timeout=1.0, read_timeout=5.0, total_max_attempts=3)

# Step Functions' clock starts at the invoke: the call itself and a cold start (init is not part
# of the function's timeout) come before the function's own clock starts.
START_MARGIN_SECONDS: Final = 1
# After its last AWS call a task still builds its result and logs it.
SDK_END_MARGIN_SECONDS: Final = 0.25


@dataclass(frozen=True)
class TaskTiming:
    """One task's clocks (see the module doc)."""

    lambda_timeout_seconds: int
    retry: RetryPolicy | None = TASK_RETRY

    @property
    def task_timeout_seconds(self) -> int:
        """The Task state's TimeoutSeconds."""
        return self.lambda_timeout_seconds + START_MARGIN_SECONDS

    @property
    def sdk_deadline_seconds(self) -> float:
        """How long after the invocation starts its last AWS attempt must have ended."""
        return self.lambda_timeout_seconds - SDK_END_MARGIN_SECONDS

    def worst_case_seconds(self) -> float:
        """The longest the Task state can take: every attempt running into its timeout."""
        waits = self.retry.waits_seconds() if self.retry is not None else []
        return self.task_timeout_seconds + sum(wait + self.task_timeout_seconds for wait in waits)


TIMINGS: Final[dict[str, TaskTiming]] = {
    # Pure CPU over at most MAX_FILE_BYTES: a few milliseconds warm.
    names.VALIDATE: TaskTiming(lambda_timeout_seconds=1),
    # One DynamoDB transaction (claim, intent, lease) and one S3 PUT of up to MAX_FILE_BYTES.
    names.STORE: TaskTiming(lambda_timeout_seconds=2),
    # One DynamoDB transaction.
    names.RECORD: TaskTiming(lambda_timeout_seconds=1),
    # A few DynamoDB writes, an S3 listing, a HEAD and a DELETE per version of the request.
    names.COMPENSATE: TaskTiming(lambda_timeout_seconds=2),
    # A DynamoDB write, an S3 listing and a HEAD per version; no retry: if it fails, the sweep
    # still reports.
    names.REPORT: TaskTiming(lambda_timeout_seconds=2, retry=None),
    # The sessions workflow (its only task): a DynamoDB query and write and an S3 call, or up to
    # 100 presigned URLs (signed locally) or a few pages of parts.
    names.SESSION: TaskTiming(lambda_timeout_seconds=2),
    # Scheduled, outside the workflow: a page of open intents per run.
    names.SWEEP: TaskTiming(lambda_timeout_seconds=60, retry=None),
}
# The tasks of the upload workflow, in the order of its longest path (validate, store, record
# fails, compensate fails, report).
WORKFLOW_PATH: Final = (
    names.VALIDATE,
    names.STORE,
    names.RECORD,
    names.COMPENSATE,
    names.REPORT,
)
# The state machine's own TimeoutSeconds: a backstop above the longest path, below API Gateway's
# 29 s integration timeout.
STATE_MACHINE_TIMEOUT_SECONDS: Final = 28
API_GATEWAY_TIMEOUT_SECONDS: Final = 29


def workflow_worst_case_seconds() -> float:
    """The longest path through the workflow, every task at its worst (Pass, Choice and Fail
    states take no time)."""
    return sum(TIMINGS[task].worst_case_seconds() for task in WORKFLOW_PATH)
