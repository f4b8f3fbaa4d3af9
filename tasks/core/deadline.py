"""The running invocation's SDK deadline (tasks.contract.timing), and local mode's time scale.

:func:`tasks.core.entry.task_input` opens the deadline around a task's work; tasks/core/aws.py
reads it before every attempt of an AWS call and refuses an attempt that could outlive it.
Standard library only: validate, which calls no AWS service, imports this module too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from tasks.contract import names

# Local mode stretches by at most this much, in steps of a half (each distinct scale gets its own
# cached clients, so the steps keep their number small).
MAX_SCALE: Final = 16.0

_deadline: ContextVar[float | None] = ContextVar("sdk_deadline", default=None)


def time_scale(env: Mapping[str, str]) -> float:
    """``SDK_TIMEOUT_SCALE`` from ``env`` (local mode only): 1 when absent or unreadable."""
    try:
        scale = float(env.get(names.SDK_TIMEOUT_SCALE) or 1)
    except ValueError:
        return 1.0
    if not math.isfinite(scale) or scale <= 1:
        return 1.0
    return min(MAX_SCALE, math.ceil(scale * 2) / 2)


@contextmanager
def deadline_after(seconds: float) -> Iterator[None]:
    """Inside the block, AWS calls must end within ``seconds`` of entering it."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_left() -> float | None:
    """Seconds until the deadline (negative once passed); None outside an invocation."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
