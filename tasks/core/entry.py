"""What every task does around its own work: read the event into its payload struct inside the
request's log scope, and the Lambda handler that hands ``os.environ`` to the task's ``run``.

Each task module defines ``run(event, *, env)`` (what local mode and the tests call, with the
function's environment as a mapping) and ``handler = lambda_handler(run, ...)`` (what Lambda
calls: the template's ``Handler`` is ``tasks.<task>.handler``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tasks.contract.timing import TIMINGS
from tasks.core.deadline import deadline_after, time_scale
from tasks.core.models import PayloadT, parse_payload
from tasks.core.observability import logger, request_scope

if TYPE_CHECKING:  # the Tracer imports the X-Ray SDK: only the tasks that trace import it
    from aws_lambda_powertools import Tracer

Run = Callable[..., dict[str, Any]]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@contextmanager
def task_input(
    task: str, model: type[PayloadT], event: object, env: Mapping[str, str]
) -> Iterator[PayloadT]:
    """The event as ``model`` (InvalidTaskInput if it is not one); log lines inside carry the
    request id (from the event, even when it is malformed) and the task's name, and AWS calls
    inside end before the task's SDK deadline (tasks.contract.timing)."""
    request_id = event.get("requestId") if isinstance(event, dict) else None
    seconds = TIMINGS[task].sdk_deadline_seconds * time_scale(env)
    with request_scope(task, request_id), deadline_after(seconds):
        yield parse_payload(model, event)


def lambda_handler(run: Run, *, tracer: Tracer | None = None) -> Handler:
    """The Lambda entry point of a task: ``run(event, env=os.environ)`` with Powertools' Lambda
    context in the logs (never the event itself) and, when given, the Tracer's segment."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return run(event, env=os.environ)

    traced = handler
    if tracer is not None:
        traced = tracer.capture_lambda_handler(capture_response=False)(handler)
    wrapped: Handler = logger.inject_lambda_context(log_event=False, clear_state=True)(traced)
    return wrapped
