"""Store task: writes the validated file as a new, KMS-encrypted S3 object version.

Event: {"requestId", "upload": UploadMetadata, "body", "attempt", "startedAt"} (body = the
client's JSON text, whose fileContent validate checked; attempt = ``$$.State.RetryCount``,
startedAt = ``$$.Execution.StartTime``); returns StoreReceipt
(bucket, s3Key, versionId, attempt), or ``{"replay": true, "receipt": <success body>}``; the
state machine puts it in the request body's place (``$.body``, dropping the file), then at
``$.stored``. Env: UPLOAD_BUCKET_NAME, UPLOAD_KEY_ARN, IDEMPOTENCY_TABLE_NAME, LEDGER_TABLE_NAME,
SESSIONS_TABLE_NAME, ALLOWED_CONTENT_TYPES.
Raises TransientStorageError (throttling, 5xx, timeouts), WriteOutcomeUnknown (the PUT was sent
and never answered: it may still land), StorageError, InvalidTaskInput, IdempotencyConflict,
UploadInProgress, SessionNotOpen, ContentMismatch.

A session's commit (``upload.sessionId``) puts nothing: the same begin transaction also moves the
session to COMMITTING (else SessionNotOpen, 409), then :func:`commit_session` completes its
multipart upload and checks the stored file's first bytes (tasks.core.commits); the receipt
adds the content type and S3's checksum.

Before the PUT, one ledger transaction (tasks.core.ledger) opens the request's intent and takes
the metadata item's lease: uploads of one item run one at a time, and every version the service
writes has an intent the sweep can find. Another upload of the item holding the lease is an
UploadInProgress (409): nothing was stored, and this request's Idempotency-Key claim is released
so the client can retry with the same key.

With an Idempotency-Key (``upload.idempotencyId``), the key is claimed before the PUT
(tasks.core.claims, one conditional PutItem; a retry of this request re-claims its own claim).
When the same body already completed within 24 h, the first success body (under this
request's id) is returned for replay and S3 is not touched; another body, or the same body still
in progress, is an IdempotencyConflict (409). Without the header nothing changes.

On a retry (attempt > 0) an earlier attempt may have put the object and still failed as a task
(it timed out after the PUT returned). After its own PUT succeeded, the retry deletes, by
VersionId, every other version of the key that carries this request's id (the lookup compensate
uses), so a 200 leaves exactly one version of this request behind. If that clean-up fails, the
task fails and the workflow's compensation removes every version of the request. A first attempt
makes no call but the PUT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from tasks.contract import names
from tasks.contract.content_types import ContentTypePolicy, policy_from_env
from tasks.contract.errors import (
    UPLOAD_IN_PROGRESS_MESSAGE,
    ContentMismatch,
    IdempotencyConflict,
    InvalidTaskInput,
    SessionNotOpen,
    StorageError,
    UploadInProgress,
)
from tasks.contract.keys import REQUEST_ID_METADATA, object_key
from tasks.contract.timing import COMPLETE_SDK, SESSION_READ_SDK
from tasks.core import aws, claims, commits, ledger, sessions
from tasks.core.entry import lambda_handler, task_input
from tasks.core.models import StoreEvent, StoreReceipt, UploadMetadata
from tasks.core.observability import count_rejection, logger
from tasks.core.tracing import tracer
from tasks.core.versions import cutoff, versions_of_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

TASK = names.STORE
SESSION_BUSY_MESSAGE = (
    "The upload session is no longer open: it is committed, being committed, aborted or expired."
)


def object_metadata(request_id: str, upload: UploadMetadata) -> dict[str, str]:
    """The version's S3 user metadata: what compensation (the request id) and an operator looking
    at a bare object (product id, sha256) need. All ASCII, bounded well under S3's 2 KB limit on
    user metadata; the product name and file name (up to 256 + 255 characters, possibly
    non-ASCII) live in the DynamoDB item, not here."""
    return {
        REQUEST_ID_METADATA: request_id,
        "product-id": upload.productId,
        "sha256": upload.sha256 or "",
    }


def store(
    request_id: str,
    upload: UploadMetadata,
    file_content: str,
    *,
    s3: S3Client,
    bucket: str,
    key_arn: str,
    attempt: int = 0,
    started_at: str | None = None,
) -> StoreReceipt:
    """Put the decoded file under ``upload.s3Key``; the bytes must match what validate saw.

    ``attempt`` > 0 (a retry): then delete the versions earlier attempts of this request left.
    """
    if upload.contentType is None or upload.sha256 is None:
        raise InvalidTaskInput("an inline upload's contentType and sha256 must be set")
    try:
        data = base64.b64decode(file_content, validate=True)
    except binascii.Error:
        raise InvalidTaskInput("fileContent is not the base64 validate accepted") from None
    digest = hashlib.sha256(data)
    if len(data) != upload.size or digest.hexdigest() != upload.sha256:
        raise InvalidTaskInput("fileContent does not match the validated size and sha256")
    if upload.s3Key != object_key(upload.productId, upload.fileName):
        raise InvalidTaskInput("upload.s3Key does not follow the key rules")
    with aws.storage_errors("Storing the file", write=True):
        response = s3.put_object(
            Bucket=bucket,
            Key=upload.s3Key,
            Body=data,
            ContentType=upload.contentType,
            # S3 verifies the bytes against this digest and keeps it with the version.
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_arn,
            BucketKeyEnabled=True,
            Metadata=object_metadata(request_id, upload),
        )
    version_id = response.get("VersionId")
    if not isinstance(version_id, str) or not version_id or version_id == "null":
        # Unversioned bucket: the contract's versionId (and safe compensation) are impossible.
        logger.error("The bucket is not versioned", extra={"bucket": bucket, "s3Key": upload.s3Key})
        raise StorageError("Storing the file failed.")
    if attempt > 0:
        _delete_earlier_attempts(
            request_id, upload.s3Key, version_id, started_at, s3=s3, bucket=bucket
        )
    logger.info(
        "File stored",
        extra={
            "bucket": bucket,
            "s3Key": upload.s3Key,
            "versionId": version_id,
            "size": upload.size,
            "sha256": upload.sha256,
        },
    )
    return StoreReceipt(bucket=bucket, s3Key=upload.s3Key, versionId=version_id)


def _delete_earlier_attempts(
    request_id: str, key: str, keep: str, started_at: str | None, *, s3: S3Client, bucket: str
) -> None:
    """Delete (by VersionId) every version of ``key`` from this request except ``keep``."""
    deleted: list[str] = []
    with aws.storage_errors("Removing an earlier attempt's file"):
        found = versions_of_request(
            s3, bucket=bucket, key=key, request_id=request_id, since=cutoff(started_at)
        )
        for version_id in found:
            if version_id != keep:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
                deleted.append(version_id)
    logger.info(
        "Earlier attempts' versions deleted",
        extra={"bucket": bucket, "s3Key": key, "versionId": keep, "deletedVersionIds": deleted},
    )


def claim_key(
    request_id: str,
    upload: UploadMetadata,
    *,
    dynamodb: DynamoDBClient,
    table: str,
    env: Mapping[str, str],
) -> dict[str, Any] | None:
    """Claim the request's Idempotency-Key (tasks.core.claims): None to go on storing, or the
    first request's success body to replay. A conflict is counted as a rejection and raised."""
    if upload.idempotencyId is None or upload.fingerprint is None:
        raise InvalidTaskInput("upload.idempotencyId and upload.fingerprint must both be set")
    try:
        return claims.claim(
            dynamodb,
            table=table,
            idempotency_id=upload.idempotencyId,
            fingerprint=upload.fingerprint,
            request_id=request_id,
        )
    except IdempotencyConflict as exc:
        count_rejection(type(exc).__name__, env=env, clientMessage=exc.message)
        raise


def begin_upload(
    entry: ledger.Upload,
    *,
    dynamodb: DynamoDBClient,
    table: str,
    attempt: int,
    sessions_table: str | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Open the request's intent and take the item's lease, in one transaction, before the PUT;
    for a session's commit the same transaction moves the session to COMMITTING. Raises
    :class:`UploadInProgress` when another upload of the item holds the lease, and
    :class:`SessionNotOpen` when the session is no longer OPEN (committed, being committed by
    another request, aborted or expired)."""
    now = int(clock())
    items = ledger.begin(table, entry, attempt=attempt, now=now)
    if entry.session_id is not None:
        if sessions_table is None:
            raise InvalidTaskInput("The task is not configured: SESSIONS_TABLE_NAME is not set")
        items.append(
            sessions.begin_commit(sessions_table, entry.session_id, entry.request_id, now=now)
        )
    with aws.storage_errors("Starting the upload"):
        try:
            dynamodb.transact_write_items(TransactItems=items)
        except botocore.exceptions.ClientError as exc:
            if _session_refused(exc):
                raise SessionNotOpen(SESSION_BUSY_MESSAGE) from None
            holder = _lease_holder(exc)
            if holder is None:
                raise
            logger.info(
                "Another upload of the item holds its lease",
                extra={"productId": entry.product_id, "heldBy": holder},
            )
            raise UploadInProgress(UPLOAD_IN_PROGRESS_MESSAGE) from None


def _lease_holder(exc: botocore.exceptions.ClientError) -> str | None:
    """The request holding the lease, when that cancelled the begin transaction."""
    reasons = _cancellation_reasons(exc)
    if len(reasons) < 2 or reasons[1].get("Code") != "ConditionalCheckFailed":
        return None
    return aws.string_attribute(reasons[1].get("Item") or {}, "holder") or "unknown"


def _session_refused(exc: botocore.exceptions.ClientError) -> bool:
    """The session's condition (the third item) cancelled the begin transaction."""
    reasons = _cancellation_reasons(exc)
    return len(reasons) == 3 and reasons[2].get("Code") == "ConditionalCheckFailed"


def _cancellation_reasons(exc: botocore.exceptions.ClientError) -> list[Any]:
    if aws.error_code(exc) != aws.TRANSACTION_CANCELED:
        return []
    return list(exc.response.get("CancellationReasons") or [])


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Store one file with settings and endpoint taken from ``env``."""
    with task_input(TASK, StoreEvent, event, env) as payload:
        dynamodb = aws.dynamodb_client(env)
        upload = payload.upload
        if upload.idempotencyId is not None:
            first = claim_key(
                payload.requestId,
                upload,
                dynamodb=dynamodb,
                table=aws.required_setting(env, names.IDEMPOTENCY_TABLE_NAME),
                env=env,
            )
            if first is not None:
                # The first upload's result, answered under this request's id (docs/api.md: every
                # body carries the request id, which names this execution).
                return {"replay": True, "receipt": {**first, "requestId": payload.requestId}}
        bucket = aws.required_setting(env, names.UPLOAD_BUCKET_NAME)
        entry = ledger.Upload(
            request_id=payload.requestId,
            bucket=bucket,
            s3_key=upload.s3Key,
            product_id=upload.productId,
            product_name=upload.productName,
            started_at=payload.startedAt,
            session_id=upload.sessionId,
        )
        sessions_table = env.get(names.SESSIONS_TABLE_NAME)
        try:
            begin_upload(
                entry,
                dynamodb=dynamodb,
                table=aws.required_setting(env, names.LEDGER_TABLE_NAME),
                attempt=payload.attempt,
                sessions_table=sessions_table,
            )
        except (UploadInProgress, SessionNotOpen) as exc:
            _give_back_claim(payload.requestId, upload, dynamodb=dynamodb, env=env)
            count_rejection(type(exc).__name__, env=env, productId=upload.productId)
            raise
        if upload.sessionId is not None:
            return commit_session(
                upload,
                s3=aws.s3_client(env),
                completer=aws.s3_client(env, COMPLETE_SDK),
                reader=aws.s3_client(env, SESSION_READ_SDK),
                dynamodb=dynamodb,
                bucket=bucket,
                sessions_table=str(sessions_table),
                policy=policy_from_env(env.get(names.ALLOWED_CONTENT_TYPES)),
                env=env,
            ).to_dict()
        receipt = store(
            payload.requestId,
            upload,
            file_content(payload.body),
            s3=aws.s3_client(env),
            bucket=bucket,
            key_arn=aws.required_setting(env, names.UPLOAD_KEY_ARN),
            attempt=payload.attempt,
            started_at=payload.startedAt,
        )
        return receipt.to_dict()


def commit_session(
    upload: UploadMetadata,
    *,
    s3: S3Client,
    completer: S3Client,
    reader: S3Client,
    dynamodb: DynamoDBClient,
    bucket: str,
    sessions_table: str,
    policy: ContentTypePolicy,
    env: Mapping[str, str],
) -> StoreReceipt:
    """A session's commit (tasks.core.commits): complete its multipart upload, then check the
    stored file's first bytes. A retried Store whose earlier attempt completed it finds the
    parts gone: that is a StorageError, and the workflow compensates the version the session's
    id finds. ``completer`` and ``reader``: S3 clients with the completion's and the first
    bytes' time budgets (tasks.contract.timing)."""
    with aws.storage_errors("Reading the upload session"):
        session = sessions.read_any(dynamodb, sessions_table, str(upload.sessionId))
        parts = None
        if session is not None:
            parts = sessions.held_parts(s3, bucket=bucket, session=session)
    if session is None or parts is None:
        raise StorageError("The upload session's parts are gone.")
    with aws.storage_errors("Completing the upload", write=True):
        version_id, checksum = commits.complete(
            completer, bucket=bucket, session=session, parts=parts
        )
    logger.info(
        "File stored",
        extra={
            "bucket": bucket,
            "s3Key": session.s3_key,
            "versionId": version_id,
            "size": session.size,
            "sessionId": session.upload_id,
            "parts": len(parts),
        },
    )
    with aws.storage_errors("Reading the file's first bytes"):
        head = sessions.read_head(
            reader,
            bucket=bucket,
            key=session.s3_key,
            version_id=version_id,
            length=commits.HEAD_BYTES,
        )
    try:
        content_type = commits.checked_content_type(head, upload.contentType, policy)
    except ContentMismatch as exc:
        count_rejection(type(exc).__name__, env=env, productId=upload.productId)
        raise
    return StoreReceipt(
        bucket=bucket,
        s3Key=session.s3_key,
        versionId=version_id,
        contentType=content_type,
        checksum=checksum,
    )


def file_content(body: str) -> str:
    """The base64 file in the client's JSON text (validate checked it; this only extracts)."""
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidTaskInput("body is not the JSON validate accepted") from None
    content = document.get("fileContent") if isinstance(document, dict) else None
    if not isinstance(content, str):
        raise InvalidTaskInput("body has no fileContent")
    return content


def _give_back_claim(
    request_id: str, upload: UploadMetadata, *, dynamodb: DynamoDBClient, env: Mapping[str, str]
) -> None:
    """Release the Idempotency-Key this request claimed (nothing was stored), so that the client's
    retry with the same key is not refused as still in progress."""
    if upload.idempotencyId is None:
        return
    with aws.storage_errors("Releasing the Idempotency-Key"):
        claims.release(
            dynamodb,
            table=aws.required_setting(env, names.IDEMPOTENCY_TABLE_NAME),
            idempotency_id=upload.idempotencyId,
            request_id=request_id,
        )


handler = lambda_handler(run, tracer=tracer)
