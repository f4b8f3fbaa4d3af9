"""Report task: reports what a compensation that could not report left behind.

The workflow runs it when Compensate ended without reporting: it timed out, ran out of memory, or
failed on its input (Compensate's own failures it reports itself, then raises CompensationFailed,
which skips this step). The client is told the orphan "has been reported": this is the report.

Event: {"requestId", "productId", "productName", "s3Key", "startedAt", "error"} (error: how
Compensate ended); returns {"versionIds": [...]} (``$.report``). Env: UPLOAD_BUCKET_NAME,
METADATA_TABLE_NAME, LEDGER_TABLE_NAME.

1. The request is fenced in the ledger (tasks.core.ledger.abort): its intent is ABORTED and open,
   so the sweep (tasks/sweep.py) comes back to it, whatever happens next.
2. One ERROR line ``ORPHAN: ...`` names the key, the request, exactly the versions checked to be
   this request's (tasks.core.versions) and whether the metadata item is still this request's;
   the CompensationFailures metric drives the alarm. A lookup that fails does not stop the report:
   it says what it could not check (``versionIds`` null), and the sweep finds the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from tasks.contract import names
from tasks.core import aws, ledger, rollback
from tasks.core.entry import lambda_handler, task_input
from tasks.core.models import OrphanReport, ReportEvent
from tasks.core.observability import emit_metric, logger
from tasks.core.tracing import tracer
from tasks.core.versions import cutoff, versions_of_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

TASK = names.REPORT
ORPHAN_MESSAGE: Final = (
    "ORPHAN: compensation did not finish; object versions of this request may remain"
)
T = TypeVar("T")


def report(
    upload: ledger.Upload,
    *,
    error: str | None,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    ledger_table: str,
    metadata_table: str,
    env: Mapping[str, str],
) -> list[str] | None:
    """Fence the request, report what remains (module doc); the versions found (None: the
    lookup failed)."""
    fenced = _attempt(lambda: ledger.abort(dynamodb, ledger_table, upload, now=int(time.time())))
    found = _attempt(
        lambda: versions_of_request(
            s3,
            bucket=upload.bucket,
            key=upload.s3_key,
            request_id=upload.writer,
            since=cutoff(upload.started_at),
        )
    )
    item = _attempt(lambda: _metadata_written(dynamodb, metadata_table, upload))
    version_ids = found if isinstance(found, list) else None
    logger.error(
        ORPHAN_MESSAGE,
        extra={
            "orphan": upload.orphan(
                version_ids, metadataItemWritten=item if isinstance(item, bool) else None
            ),
            "compensationError": error,
            "fenced": not isinstance(fenced, Exception),
        },
    )
    emit_metric(names.COMPENSATION_FAILURES, MetricUnit.Count, 1, env=env)
    return version_ids


def _attempt(step: Callable[[], T]) -> T | Exception:
    """Run one step of the report; its exception is logged and returned, never raised: the report
    must go out whatever fails."""
    try:
        return step()
    except Exception as exc:
        logger.warning("A step of the orphan report failed", extra={"error": aws.error_code(exc)})
        return exc


def _metadata_written(dynamodb: DynamoDBClient, table: str, upload: ledger.Upload) -> bool:
    """True when the metadata item is (still) this request's write."""
    item = dynamodb.get_item(
        TableName=table,
        Key={"productId": {"S": upload.product_id}, "productName": {"S": upload.product_name}},
        ConsistentRead=True,
    ).get("Item")
    return rollback.own_item(dict(item) if item else None, upload.request_id)


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Report one request's orphan with settings and endpoint taken from ``env``."""
    with task_input(TASK, ReportEvent, event, env) as payload:
        upload = ledger.Upload(
            request_id=payload.requestId,
            bucket=aws.required_setting(env, names.UPLOAD_BUCKET_NAME),
            s3_key=payload.s3Key,
            product_id=payload.productId,
            product_name=payload.productName,
            started_at=payload.startedAt,
            session_id=payload.sessionId,
        )
        version_ids = report(
            upload,
            error=payload.error,
            s3=aws.s3_client(env),
            dynamodb=aws.dynamodb_client(env),
            ledger_table=aws.required_setting(env, names.LEDGER_TABLE_NAME),
            metadata_table=aws.required_setting(env, names.METADATA_TABLE_NAME),
            env=env,
        )
        return OrphanReport(versionIds=version_ids).to_dict()


handler = lambda_handler(run, tracer=tracer)
