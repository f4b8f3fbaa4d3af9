"""Bounded retries with full-jitter exponential backoff, shared by the API calls and the part PUTs.

A throttled (429) or failing (500, 502, 503, 504) answer, a refused connection or a timeout is
tried again, at most ``attempts`` times in all, after a wait drawn uniformly from
``[0, min(cap, base * 2**(retry - 1))]`` ("full jitter": many clients retrying at once spread out
instead of hitting the service together again). A ``Retry-After`` header sets the least wait, up
to ``cap``, so that a call's total wait stays bounded. ``sleep`` and ``random`` are injectable so
tests run without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from random import random as uniform
from typing import Final

import requests

from upload_client.errors import ServiceFailed

RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
# No answer at all: the request may or may not have arrived. Every call the client retries is
# safe to repeat (reads, presigned PUTs of the same bytes, writes under an Idempotency-Key).
TRANSPORT_ERRORS: Final = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base: float = 0.5
    cap: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = uniform  # in [0, 1)

    def delay(self, retry: int, retry_after: float | None) -> float:
        """The wait before retry number ``retry`` (1 for the first)."""
        jittered = self.random() * min(self.cap, self.base * 2.0 ** (retry - 1))
        if retry_after is None:
            return jittered
        return max(jittered, min(retry_after, self.cap))


def retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds (either of its forms: seconds, or an HTTP date), if present."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds)


def send_with_retries(
    policy: RetryPolicy,
    send: Callable[[], requests.Response],
    should_retry: Callable[[requests.Response, int], bool],
    what: str,
) -> requests.Response:
    """``send()`` until ``should_retry(response, attempt)`` is false or the attempts run out; the
    last response is returned whatever its status (the caller maps it to an error). ``what``
    names the call in the error raised when no answer came at all: never a URL, which for a part
    is presigned and carries credentials."""
    attempt = 1
    while True:
        try:
            response = send()
        except TRANSPORT_ERRORS as exc:
            if attempt >= policy.attempts:
                raise ServiceFailed(
                    f"no answer after {attempt} attempts ({type(exc).__name__})",
                    code="Unreachable",
                    operation=what,
                ) from None
            wait = policy.delay(attempt, None)
        else:
            if attempt >= policy.attempts or not should_retry(response, attempt):
                return response
            wait = policy.delay(attempt, retry_after(response))
        policy.sleep(wait)
        attempt += 1
