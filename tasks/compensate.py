"""Compensate task: deletes exactly the S3 object versions this request created.

Event: {"requestId", "s3Key", "startedAt", "idempotencyId"} (startedAt = the execution's start
time; idempotencyId = ``$.upload.idempotencyId``, null without an Idempotency-Key); returns
{"deletedVersionIds": [...]} (``$.compensation``). Env: UPLOAD_BUCKET_NAME,
IDEMPOTENCY_TABLE_NAME.
With an Idempotency-Key, this request's claim is released first (a DeleteItem conditional on this
request holding it; nothing to release is fine), so the client may retry with the same key. A
failed release counts as a failed compensation (the claim could replay a 200 for deleted data).
Only versions of exactly ``s3Key``, modified since ``startedAt`` minus a minute of clock skew, whose
metadata "request-id" is this request's id are deleted (the lookup is shared with store's retry
clean-up: ``tasks.core.versions``), each by its VersionId (a plain DeleteObject would add a delete
marker and hide the previous version). Earlier versions stay.
On any failure: an ERROR log line naming the key and the version ids, metric
CompensationFailures, and CompensationFailed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit

from tasks.core import aws, claims
from tasks.core.errors import CompensationFailed, InvalidTaskInput
from tasks.core.keys import is_upload_key
from tasks.core.models import CompensateEvent, CompensationResult, parse_payload
from tasks.core.observability import (
    COMPENSATION_FAILURES,
    COMPENSATIONS,
    emit_metric,
    logger,
    request_scope,
)
from tasks.core.tracing import tracer
from tasks.core.versions import cutoff, versions_of_request

TASK = "compensate"
FAILURE_MESSAGE: Final = "Deleting the stored file versions failed; the orphan has been reported."


@dataclass(frozen=True)
class Claim:
    """This request's Idempotency-Key claim and where it lives."""

    dynamodb: Any
    table: str
    idempotency_id: str


def compensate(
    request_id: str,
    key: str,
    started_at: str | None,
    *,
    s3: Any,
    bucket: str,
    env: Mapping[str, str],
    claim: Claim | None = None,
) -> CompensationResult:
    if not is_upload_key(key):
        raise InvalidTaskInput("s3Key is not an upload key")
    release_error = _release(request_id, claim)
    since = cutoff(started_at)
    found: list[str] | None = None
    deleted: list[str] = []
    try:
        found = versions_of_request(s3, bucket=bucket, key=key, request_id=request_id, since=since)
        for version_id in found:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
            deleted.append(version_id)
    except Exception as exc:
        orphans = [v for v in found if v not in deleted] if found is not None else None
        logger.error(
            "ORPHAN: compensation failed; object versions of this request may remain",
            extra={
                "orphan": {
                    "bucket": bucket,
                    "s3Key": key,
                    "versionIds": orphans,  # None: the listing failed, the ids are unknown
                    "requestId": request_id,
                },
                "deletedVersionIds": deleted,
                "errorCode": aws.error_code(exc),
                "sdkError": str(exc),
            },
        )
        emit_metric(COMPENSATION_FAILURES, MetricUnit.Count, 1, env=env)
        raise CompensationFailed(FAILURE_MESSAGE) from exc
    if release_error is not None:
        # The claim may be COMPLETED (record's transaction went through, yet record failed):
        # left alone it would replay a 200 for the versions just deleted.
        logger.error(
            "CLAIM: compensation could not release the Idempotency-Key claim",
            extra={
                "claim": {"idempotencyId": claim.idempotency_id if claim else None},
                "requestId": request_id,
                "deletedVersionIds": deleted,
                "errorCode": aws.error_code(release_error),
                "sdkError": str(release_error),
            },
        )
        emit_metric(COMPENSATION_FAILURES, MetricUnit.Count, 1, env=env)
        raise CompensationFailed(FAILURE_MESSAGE) from release_error
    logger.info("Compensated", extra={"bucket": bucket, "s3Key": key, "deletedVersionIds": deleted})
    emit_metric(COMPENSATIONS, MetricUnit.Count, 1, env=env)
    return CompensationResult(deletedVersionIds=deleted)


def _release(request_id: str, claim: Claim | None) -> Exception | None:
    """Release the claim (if this request holds it); the SDK error, if that failed."""
    if claim is None:
        return None
    try:
        released = claims.release(
            claim.dynamodb,
            table=claim.table,
            idempotency_id=claim.idempotency_id,
            request_id=request_id,
        )
    except Exception as exc:
        return exc
    logger.info(
        "Idempotency-Key claim released" if released else "No Idempotency-Key claim to release",
        extra={"idempotencyId": claim.idempotency_id},
    )
    return None


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Compensate one request with settings and endpoint taken from ``env``."""
    with request_scope(TASK, event.get("requestId") if isinstance(event, dict) else None):
        payload = parse_payload(CompensateEvent, event)
        claim = None
        if payload.idempotencyId is not None:
            claim = Claim(
                dynamodb=aws.client("dynamodb", env),
                table=aws.required_setting(env, "IDEMPOTENCY_TABLE_NAME"),
                idempotency_id=payload.idempotencyId,
            )
        result = compensate(
            payload.requestId,
            payload.s3Key,
            payload.startedAt,
            s3=aws.client("s3", env),
            bucket=aws.required_setting(env, "UPLOAD_BUCKET_NAME"),
            env=env,
            claim=claim,
        )
        return result.model_dump()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(event, env=os.environ)
