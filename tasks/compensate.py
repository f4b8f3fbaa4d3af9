"""Compensate task: undoes what this request wrote: its metadata item, its claim, its S3 versions.

Event: {"requestId", "productId", "productName", "s3Key", "startedAt", "idempotencyId", "attempt",
"failedState", "error", "sessionId"} (startedAt = the execution's start time; idempotencyId =
``$.upload.idempotencyId``, null without an Idempotency-Key; attempt = ``$$.State.RetryCount``;
failedState and error: the state that failed, Store or Record, and its error name); returns
{"deletedVersionIds": [...]} (``$.compensation``). Env: UPLOAD_BUCKET_NAME, METADATA_TABLE_NAME,
IDEMPOTENCY_TABLE_NAME, LEDGER_TABLE_NAME, SESSIONS_TABLE_NAME.

Steps, each idempotent (a retry runs them all again and does what remains):
0. The fence: the request's intent becomes ABORTED (tasks.core.ledger.abort), first, so that a
   metadata write still in flight can no longer commit; the intent stays open for the sweep,
   which finds a file that lands after this task ran.
1. The metadata item: if Record's write landed (the item's requestId is this request), restore the
   attributes it replaced or delete a first-time item (tasks.core.rollback; conditional on the
   item still being this request's). First, so no reader sees an item pointing at a version
   about to be deleted.
2. With an Idempotency-Key, this request's claim is released (a DeleteItem conditional on this
   request holding it; nothing to release is fine), so the client may retry with the same key.
3. Versions of exactly ``s3Key``, modified since ``startedAt`` minus a minute of clock skew, whose
   metadata "request-id" is this request's id (a session's commit: the session's id, which its
   multipart upload carries), each deleted by its VersionId (a plain
   DeleteObject would add a delete marker and hide the previous version). Earlier versions stay.
4. A session's commit (``sessionId``): the session goes back to OPEN if its multipart upload
   never completed (the client may commit again), else to ABORTED (tasks.core.sessions).
5. The item's lease is released, unless a write of this request may still be in flight: after a
   Store failure other than one of SETTLED_STORE_ERRORS (a timeout, a crash, a PUT sent and never
   answered) it is left to expire (tasks.contract.ledger.LEASE_SECONDS), so that a late PUT
   cannot land after another upload of the item.

A step that fails does not stop the others. Then: if every failure is transient (throttling, 5xx,
timeouts: tasks.core.aws) and a retry remains (``attempt`` < TASK_RETRY.max_attempts, the
Compensate Retry's MaxAttempts), TransientStorageError, unreported: the retry will finish the
job. Otherwise each failure is reported (an ERROR line "ORPHAN: ..." naming the key, the request
and exactly the versions checked to be this request's and still there, "CLAIM: ...",
"METADATA: ..." or "FENCE: ..."; metric CompensationFailures) and the task raises
CompensationFailed. A compensation that cannot report (it crashed or timed out) is reported by the
workflow's ReportOrphan step (tasks/report.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.metrics import MetricUnit

from tasks.contract import names
from tasks.contract.errors import (
    SETTLED_STORE_ERRORS,
    CompensationFailed,
    InvalidTaskInput,
    TransientStorageError,
)
from tasks.contract.keys import is_upload_key
from tasks.contract.timing import TASK_RETRY
from tasks.core import aws, claims, ledger, rollback, sessions
from tasks.core.entry import lambda_handler, task_input
from tasks.core.models import CompensateEvent, CompensationResult
from tasks.core.observability import emit_metric, logger
from tasks.core.tracing import tracer
from tasks.core.versions import Version, candidate_versions, created_by, cutoff

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

TASK = names.COMPENSATE
FAILURE_MESSAGE: Final = "Deleting the stored file versions failed; the orphan has been reported."
RETRY_MESSAGE: Final = "Compensating failed temporarily."
# The lines operators search for (infra/saved_queries.py): each compensation, and each orphan.
COMPENSATED_MESSAGE: Final = "Compensated"
ORPHAN_MESSAGE: Final = "ORPHAN: compensation failed; object versions of this request may remain"


@dataclass(frozen=True)
class Claim:
    """This request's Idempotency-Key claim and where it lives."""

    dynamodb: DynamoDBClient
    table: str
    idempotency_id: str


@dataclass(frozen=True)
class Metadata:
    """Where this request's metadata item would be."""

    dynamodb: DynamoDBClient
    table: str
    product_id: str
    product_name: str

    @property
    def key(self) -> dict[str, Any]:
        return {"productId": {"S": self.product_id}, "productName": {"S": self.product_name}}


@dataclass(frozen=True)
class Fence:
    """This request's intent and the item's lease in the ledger (tasks.core.ledger)."""

    dynamodb: DynamoDBClient
    table: str
    upload: ledger.Upload
    release_lease: bool  # no write of this request can still be in flight

    @classmethod
    def after(cls, failed_state: str | None, error: str | None, **fields: Any) -> Fence:
        """The fence after ``failed_state`` failed with ``error``: a Record failure (Store had
        finished) or a settled Store error leaves no write in flight."""
        settled = failed_state == names.RECORD_STATE or error in SETTLED_STORE_ERRORS
        return cls(release_lease=settled, **fields)


@dataclass(frozen=True)
class SessionCommit:
    """The upload session this request was committing, and where it lives."""

    dynamodb: DynamoDBClient
    s3: S3Client
    table: str
    bucket: str
    session_id: str


@dataclass
class _Failure:
    message: str  # the ERROR line, when reported
    error: Exception
    extra: dict[str, Any] = field(default_factory=dict)


def compensate(
    request_id: str,
    key: str,
    started_at: str | None,
    *,
    s3: S3Client,
    bucket: str,
    env: Mapping[str, str],
    claim: Claim | None = None,
    metadata: Metadata | None = None,
    fence: Fence | None = None,
    session: SessionCommit | None = None,
    attempt: int = 0,
) -> CompensationResult:
    if not is_upload_key(key):
        raise InvalidTaskInput("s3Key is not an upload key")
    failures: list[_Failure] = []
    if fence is not None:
        failures.extend(_fence(fence))
    metadata_outcome: str | None = None
    if metadata is not None:
        metadata_outcome, failure = _undo_metadata(request_id, metadata)
        if failure is not None:
            failures.append(failure)
    if claim is not None:
        failure = _release(request_id, claim)
        if failure is not None:
            failures.append(failure)
    deleted: list[str] = []
    writer = fence.upload.writer if fence is not None else request_id
    failure = _delete_versions(writer, key, started_at, s3=s3, bucket=bucket, deleted=deleted)
    if failure is not None:
        failures.append(failure)
    if session is not None:
        failures.extend(_release_session(session, request_id))
    if fence is not None and fence.release_lease:
        failures.extend(_release_lease(fence))
    if failures:
        _fail(failures, attempt=attempt, env=env, deleted=deleted)
    logger.info(
        COMPENSATED_MESSAGE,
        extra={
            "bucket": bucket,
            "s3Key": key,
            "deletedVersionIds": deleted,
            "metadataItem": metadata_outcome,  # restored | deleted | untouched
        },
    )
    emit_metric(names.COMPENSATIONS, MetricUnit.Count, 1, env=env)
    return CompensationResult(deletedVersionIds=deleted)


def _fail(
    failures: list[_Failure], *, attempt: int, env: Mapping[str, str], deleted: list[str]
) -> None:
    """Leave the failures to the state machine's retry, or report them and fail for good."""
    if attempt < TASK_RETRY.max_attempts and all(aws.is_transient(f.error) for f in failures):
        logger.warning(
            "Compensation failed temporarily; the state machine retries it",
            extra={
                "attempt": attempt,
                "deletedVersionIds": deleted,
                "errorCodes": [aws.error_code(f.error) for f in failures],
            },
        )
        raise TransientStorageError(RETRY_MESSAGE) from failures[0].error
    for failure in failures:
        logger.error(
            failure.message,
            extra={
                **failure.extra,
                "attempt": attempt,
                "deletedVersionIds": deleted,
                "errorCode": aws.error_code(failure.error),
                "sdkError": str(failure.error),
            },
        )
        emit_metric(names.COMPENSATION_FAILURES, MetricUnit.Count, 1, env=env)
    raise CompensationFailed(FAILURE_MESSAGE) from failures[0].error


def _undo_metadata(request_id: str, metadata: Metadata) -> tuple[str | None, _Failure | None]:
    """What happened to the item (tasks.core.rollback.undo), or the failure."""
    try:
        return (
            rollback.undo(
                metadata.dynamodb, table=metadata.table, key=metadata.key, request_id=request_id
            ),
            None,
        )
    except Exception as exc:
        # The item may point at a version deleted below: an operator restores or deletes it.
        return None, _Failure(
            "METADATA: compensation could not undo this request's metadata write",
            exc,
            {"metadata": {"productId": metadata.product_id, "productName": metadata.product_name}},
        )


def _delete_versions(
    request_id: str,
    key: str,
    started_at: str | None,
    *,
    s3: S3Client,
    bucket: str,
    deleted: list[str],
) -> _Failure | None:
    """Delete this request's versions (appending to ``deleted``); the failure, if any."""
    candidates: list[Version] | None = None
    mine: list[str] = []  # checked: this request's
    examined = 0
    try:
        candidates = candidate_versions(s3, bucket=bucket, key=key, since=cutoff(started_at))
        for version_id, _ in candidates:
            ours = created_by(
                s3, bucket=bucket, key=key, version_id=version_id, request_id=request_id
            )
            examined += 1
            if ours:
                mine.append(version_id)
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
                deleted.append(version_id)
    except Exception as exc:
        # Only versions checked to be this request's are named: a candidate not yet checked may
        # be another request's live version. What was not checked, the sweep finds.
        return _Failure(
            ORPHAN_MESSAGE,
            exc,
            {
                "orphan": {
                    "bucket": bucket,
                    "s3Key": key,
                    # None: the listing failed, nothing is known (the sweep finds them).
                    "versionIds": None
                    if candidates is None
                    else [v for v in mine if v not in deleted],
                    "uncheckedVersions": None if candidates is None else len(candidates) - examined,
                    "requestId": request_id,
                }
            },
        )
    return None


def _fence(fence: Fence) -> list[_Failure]:
    """Mark the request aborted in the ledger (step 0); the failure, if any."""
    try:
        previous = ledger.abort(fence.dynamodb, fence.table, fence.upload, now=int(time.time()))
    except Exception as exc:
        # A metadata write still in flight could land after step 1: an operator checks the item.
        return [
            _Failure(
                "FENCE: compensation could not mark the request aborted",
                exc,
                {"requestId": fence.upload.request_id},
            )
        ]
    logger.info("Request fenced", extra={"intentWas": previous})  # PENDING, COMMITTED or None
    return []


def _release_lease(fence: Fence) -> list[_Failure]:
    """Release the item's lease (step 5); a failure is transient (the lease expires anyway) but
    blocks uploads of the item until then, so it is reported like the others."""
    try:
        released = ledger.release_lease(fence.dynamodb, fence.table, fence.upload)
    except Exception as exc:
        return [
            _Failure(
                "LEASE: compensation could not release the item's lease (it expires by itself)",
                exc,
                {"productId": fence.upload.product_id},
            )
        ]
    logger.info("Lease released" if released else "No lease to release")
    return []


def _release_session(commit: SessionCommit, request_id: str) -> list[_Failure]:
    """Step 4: the session this request was committing goes back to OPEN if its multipart upload
    never completed (the client may commit again), else to ABORTED (tasks.core.sessions)."""
    try:
        session = sessions.read_any(commit.dynamodb, commit.table, commit.session_id)
        if session is None:
            return []
        parts = sessions.held_parts(commit.s3, bucket=commit.bucket, session=session)
        reopened = parts is not None
        released = sessions.release_commit(
            commit.dynamodb, commit.table, commit.session_id, request_id, completed=not reopened
        )
    except aws.SDK_ERRORS as exc:
        return [
            _Failure(
                "SESSION: the upload session stays COMMITTING",
                exc,
                {"sessionId": commit.session_id},
            )
        ]
    logger.info(
        "Upload session released",
        extra={
            "sessionId": commit.session_id,
            "state": "OPEN" if reopened else "ABORTED",
            "released": released,
        },
    )
    return []


def _release(request_id: str, claim: Claim) -> _Failure | None:
    """Release the claim (if this request holds it); the failure, if that failed. A claim left
    COMPLETED (record's transaction went through, yet record failed) would replay a 200 for the
    versions deleted here."""
    try:
        released = claims.release(
            claim.dynamodb,
            table=claim.table,
            idempotency_id=claim.idempotency_id,
            request_id=request_id,
        )
    except Exception as exc:
        return _Failure(
            "CLAIM: compensation could not release the Idempotency-Key claim",
            exc,
            {"claim": {"idempotencyId": claim.idempotency_id}, "requestId": request_id},
        )
    logger.info(
        "Idempotency-Key claim released" if released else "No Idempotency-Key claim to release",
        extra={"idempotencyId": claim.idempotency_id},
    )
    return None


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Compensate one request with settings and endpoint taken from ``env``."""
    with task_input(TASK, CompensateEvent, event, env) as payload:
        dynamodb = aws.dynamodb_client(env)
        claim = None
        if payload.idempotencyId is not None:
            claim = Claim(
                dynamodb=dynamodb,
                table=aws.required_setting(env, names.IDEMPOTENCY_TABLE_NAME),
                idempotency_id=payload.idempotencyId,
            )
        metadata = Metadata(
            dynamodb=dynamodb,
            table=aws.required_setting(env, names.METADATA_TABLE_NAME),
            product_id=payload.productId,
            product_name=payload.productName,
        )
        bucket = aws.required_setting(env, names.UPLOAD_BUCKET_NAME)
        fence = Fence.after(
            payload.failedState,
            payload.error,
            dynamodb=dynamodb,
            table=aws.required_setting(env, names.LEDGER_TABLE_NAME),
            upload=ledger.Upload(
                request_id=payload.requestId,
                bucket=bucket,
                s3_key=payload.s3Key,
                product_id=payload.productId,
                product_name=payload.productName,
                started_at=payload.startedAt,
                session_id=payload.sessionId,
            ),
        )
        session = None
        if payload.sessionId is not None:
            session = SessionCommit(
                dynamodb=dynamodb,
                s3=aws.s3_client(env),
                table=aws.required_setting(env, names.SESSIONS_TABLE_NAME),
                bucket=bucket,
                session_id=payload.sessionId,
            )
        result = compensate(
            payload.requestId,
            payload.s3Key,
            payload.startedAt,
            s3=aws.s3_client(env),
            bucket=bucket,
            env=env,
            claim=claim,
            metadata=metadata,
            fence=fence,
            session=session,
            attempt=payload.attempt,
        )
        return result.to_dict()


handler = lambda_handler(run, tracer=tracer)
