"""Logging and metrics set-up shared by the tasks (names: :mod:`tasks.contract.names`).

- ``logger``: Powertools JSON logger; :func:`request_scope` adds the request id as correlation id
  with thread-safe keys (local mode runs several handlers concurrently in one process).
  Never log the file content or the whole event.
- Metrics: :func:`emit_metric` writes one EMF document per metric (Powertools ``single_metric``),
  with namespace and ``service`` dimension taken from the task's env mapping. One self-contained
  document per metric needs no flush and shares no buffer between concurrent invocations.
- Tracing: ``tasks.core.tracing`` (store, record, compensate only; see there why).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from tasks.contract import names

_SCOPE_KEYS: Final = ("correlation_id", "requestId", "task")

# Powertools reads its own settings (service name, log level) from the environment here, as it
# does in every Lambda function; the tasks' own settings are read per call.
logger = Logger(service=os.environ.get(names.POWERTOOLS_SERVICE_NAME) or names.SERVICE)


@contextmanager
def request_scope(task: str, request_id: object) -> Iterator[None]:
    """Log lines inside carry ``correlation_id`` = ``requestId`` = the request id, and ``task``."""
    rid = request_id if isinstance(request_id, str) else None
    logger.thread_safe_append_keys(correlation_id=rid, requestId=rid, task=task)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(_SCOPE_KEYS)


def emit_metric(
    name: str,
    unit: MetricUnit,
    value: float,
    *,
    env: Mapping[str, str],
    dimensions: Mapping[str, str] | None = None,
) -> None:
    """Write one EMF metric document; a failure to do so is logged, never raised."""
    all_dimensions = {
        names.SERVICE_DIMENSION: env.get(names.POWERTOOLS_SERVICE_NAME) or names.SERVICE
    }
    all_dimensions.update(dimensions or {})
    try:
        with single_metric(
            name=name,
            unit=unit,
            value=value,
            namespace=env.get(names.POWERTOOLS_METRICS_NAMESPACE) or names.NAMESPACE,
            default_dimensions=all_dimensions,
        ):
            pass
    except Exception:  # a metric must never fail the task
        logger.exception("Could not emit metric", extra={"metric": name})


def count_rejection(reason: str, *, env: Mapping[str, str], **details: object) -> None:
    """A client error: one "Request rejected" log line (reason plus ``details``) and one
    Rejections metric with that reason, which the WorkflowFailures alarm subtracts."""
    logger.info("Request rejected", extra={"reason": reason, **details})
    emit_metric(
        names.REJECTIONS,
        MetricUnit.Count,
        1,
        env=env,
        dimensions={names.REASON_DIMENSION: reason},
    )
