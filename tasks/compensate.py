"""Compensate task: deletes exactly the S3 object versions this request created.

Event: {"requestId", "s3Key", "startedAt"} (startedAt = the execution's start time); returns
{"deletedVersionIds": [...]} (``$.compensation``). Env: UPLOAD_BUCKET_NAME.
Only versions of exactly ``s3Key``, modified since ``startedAt`` minus a minute of clock skew, whose
metadata "request-id" is this request's id are deleted, each by its VersionId (a plain
DeleteObject would add a delete marker and hide the previous version). Earlier versions stay.
On any failure: an ERROR log line naming the key and the version ids, metric
CompensationFailures, and CompensationFailed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import botocore.exceptions
from aws_lambda_powertools.metrics import MetricUnit

from tasks.core import aws
from tasks.core.errors import CompensationFailed, InvalidTaskInput
from tasks.core.keys import REQUEST_ID_METADATA, is_upload_key
from tasks.core.models import CompensateEvent, CompensationResult, parse_payload
from tasks.core.observability import (
    COMPENSATION_FAILURES,
    COMPENSATIONS,
    emit_metric,
    logger,
    request_scope,
)
from tasks.core.tracing import tracer

TASK = "compensate"
CLOCK_SKEW: Final = timedelta(seconds=60)
FAILURE_MESSAGE: Final = "Deleting the stored file versions failed; the orphan has been reported."
_TIMESTAMP_RE: Final = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
_GONE_CODES: Final = frozenset({"404", "NoSuchKey", "NoSuchVersion"})


def parse_started_at(value: str | None) -> datetime | None:
    """Step Functions' ``$$.Execution.StartTime`` (e.g. 2026-11-25T22:48:54.123Z); None if absent
    or unreadable (then every version of the key is examined: the request-id match still
    decides, the cut-off only saves HEAD requests)."""
    match = _TIMESTAMP_RE.match(value or "")
    if match is None:
        return None
    date, time, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{time}.{micro}{offset}").astimezone(UTC)
    except ValueError:
        return None


def versions_of_request(
    s3: Any, *, bucket: str, key: str, request_id: str, since: datetime | None
) -> list[str]:
    """Version ids of ``key`` (exactly) created by ``request_id``, newest first."""
    found: list[str] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for version in page.get("Versions", []):
            if version["Key"] != key:
                continue
            if since is not None and version["LastModified"] < since:
                continue
            version_id = version["VersionId"]
            try:
                head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
            except botocore.exceptions.ClientError as exc:
                if aws.error_code(exc) in _GONE_CODES:
                    continue  # deleted meanwhile
                raise
            if head.get("Metadata", {}).get(REQUEST_ID_METADATA) == request_id:
                found.append(version_id)
    return found


def compensate(
    request_id: str,
    key: str,
    started_at: str | None,
    *,
    s3: Any,
    bucket: str,
    env: Mapping[str, str],
) -> CompensationResult:
    if not is_upload_key(key):
        raise InvalidTaskInput("s3Key is not an upload key")
    since = parse_started_at(started_at)
    since = since - CLOCK_SKEW if since is not None else None
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
    logger.info("Compensated", extra={"bucket": bucket, "s3Key": key, "deletedVersionIds": deleted})
    emit_metric(COMPENSATIONS, MetricUnit.Count, 1, env=env)
    return CompensationResult(deletedVersionIds=deleted)


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Compensate one request with settings and endpoint taken from ``env``."""
    with request_scope(TASK, event.get("requestId") if isinstance(event, dict) else None):
        payload = parse_payload(CompensateEvent, event)
        result = compensate(
            payload.requestId,
            payload.s3Key,
            payload.startedAt,
            s3=aws.client("s3", env),
            bucket=aws.required_setting(env, "UPLOAD_BUCKET_NAME"),
            env=env,
        )
        return result.model_dump()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(event, env=os.environ)
