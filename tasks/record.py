"""Record task: writes the upload's metadata item and returns the client's success body.

Event: {"requestId", "upload": UploadMetadata, "stored": StoreReceipt}; returns the client's
200 body (docs/api.md; ``$.receipt``). Env: METADATA_TABLE_NAME, IDEMPOTENCY_TABLE_NAME,
LEDGER_TABLE_NAME, SESSIONS_TABLE_NAME.
The metadata item, the request's commit record and the release of the item's lease
(tasks.core.ledger: only if the intent is still PENDING and the lease still this request's) and,
with an Idempotency-Key, the claim's completion (status COMPLETED, this body as the receipt
replayed for 24 h) and, for a session's commit, the session COMMITTING -> COMMITTED are one
TransactWriteItems: a 200, a commit record, a completed claim and a committed session never
disagree, and a write that arrives after Compensate fenced the request changes nothing.
Raises TransientStorageError (throttling, 5xx, timeouts), StorageError, InvalidTaskInput.

The write is reversible (tasks.core.rollback): one UpdateItem (the transaction's ``Update`` with
an Idempotency-Key) sets the item's attributes and, in the same write, copies the values they had
into internal attributes ``prevPrice``, ``prevFileName``, ``prevContentType``, ``prevSize``,
``prevSha256``, ``prevBucket``, ``prevS3Key``, ``prevVersionId``, ``prevRequestId`` and
``prevUploadedAt`` (NULL for a first-time item). If the task fails after the write landed (a
timeout, a lost response), Compensate restores those values, or deletes a first-time item. The
client's body and the item's other attributes are what they always were; the ``prev*``
attributes are not part of the item's meaning (they describe the upload this one replaced).
The write is conditional on the item not being this request's already: a retry whose first write
landed changes nothing and answers with that write's body (its timestamp).
Every AWS call ends before the task's SDK deadline (tasks.contract.timing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from aws_lambda_powertools.metrics import MetricUnit

from tasks.contract import names
from tasks.contract.errors import InvalidTaskInput
from tasks.core import aws, claims, ledger, rollback, sessions
from tasks.core.entry import lambda_handler, task_input
from tasks.core.models import (
    RecordEvent,
    StoreReceipt,
    SuccessBody,
    UploadMetadata,
)
from tasks.core.observability import emit_metric, logger
from tasks.core.tracing import tracer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

TASK = names.RECORD


def utc_timestamp(now: datetime) -> str:
    """ISO-8601 UTC with milliseconds and 'Z', e.g. 2026-11-25T22:48:54.123Z."""
    now = now.astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def metadata_item(
    request_id: str, upload: UploadMetadata, stored: StoreReceipt, uploaded_at: str
) -> dict[str, Any]:
    """The DynamoDB item (plain Python values; price as the exact Decimal validate checked;
    ``sha256`` None when unknown: a session of several parts)."""
    return {
        "productId": upload.productId,
        "productName": upload.productName,
        "price": Decimal(upload.price),
        "fileName": upload.fileName,
        "contentType": content_type(upload, stored),
        "size": upload.size,
        "sha256": upload.sha256,
        "bucket": stored.bucket,
        "s3Key": stored.s3Key,
        "versionId": stored.versionId,
        "requestId": request_id,
        "uploadedAt": uploaded_at,
    }


def content_type(upload: UploadMetadata, stored: StoreReceipt) -> str:
    """The file's content type: what store found in a session's first bytes, else validate's."""
    found = stored.contentType or upload.contentType
    if found is None:
        raise InvalidTaskInput("neither upload.contentType nor stored.contentType is set")
    return found


def attribute_value(value: str | int | Decimal | None) -> dict[str, Any]:
    """A value in DynamoDB's wire form: a string, a number as its exact decimal text, or NULL."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    return {"N": str(value)}


def record(
    request_id: str,
    upload: UploadMetadata,
    stored: StoreReceipt,
    *,
    dynamodb: DynamoDBClient,
    table_name: str,
    ledger_table: str,
    idempotency_table: str | None = None,
    sessions_table: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SuccessBody:
    """Put the metadata item and commit the request (module doc): all of it, or none; the
    returned body carries the same timestamp as the item."""
    if stored.s3Key != upload.s3Key:
        raise InvalidTaskInput("stored.s3Key differs from upload.s3Key")
    if upload.idempotencyId is not None and not idempotency_table:
        raise InvalidTaskInput("The task is not configured: IDEMPOTENCY_TABLE_NAME is not set")
    if upload.sessionId is not None and not sessions_table:
        raise InvalidTaskInput("The task is not configured: SESSIONS_TABLE_NAME is not set")
    now = clock()  # read the clock once
    uploaded_at = utc_timestamp(now)
    item = metadata_item(request_id, upload, stored, uploaded_at)
    serialized = {name: attribute_value(value) for name, value in item.items()}
    update = rollback.write(
        table=table_name,
        key={name: serialized[name] for name in ("productId", "productName")},
        values={name: serialized[name] for name in rollback.ITEM_ATTRIBUTES},
        request_id=request_id,
    )
    body = success_body(request_id, upload, stored, uploaded_at)
    entry = ledger.Upload(
        request_id=request_id,
        bucket=stored.bucket,
        s3_key=stored.s3Key,
        product_id=upload.productId,
        product_name=upload.productName,
        started_at=None,
        session_id=upload.sessionId,
    )
    items: list[TransactWriteItemTypeDef] = [
        {"Update": update},
        *ledger.commit(
            ledger_table,
            entry,
            version_id=stored.versionId,
            now=int(now.timestamp()),
        ),
    ]
    if upload.sessionId is not None:
        items.append(sessions.commit(str(sessions_table), upload.sessionId, request_id))
    if upload.idempotencyId is not None:
        items.append(
            claims.completion(
                table=str(idempotency_table),
                idempotency_id=upload.idempotencyId,
                request_id=request_id,
                receipt=body.to_dict(),
                clock=now.timestamp,
            )
        )
    with aws.storage_errors("Recording the metadata"), _earlier_write(request_id) as earlier:
        dynamodb.transact_write_items(TransactItems=items)
    if earlier:
        # An earlier attempt of this request wrote the item (and completed the claim): its body.
        logger.info("Metadata already recorded by an earlier attempt of this request")
        body = success_body(request_id, upload, stored, earlier[0])
    logger.info(
        "Metadata recorded",
        extra={
            "productId": upload.productId,
            "s3Key": stored.s3Key,
            "versionId": stored.versionId,
            "size": upload.size,
            "sha256": upload.sha256,
            "idempotent": upload.idempotencyId is not None,
        },
    )
    return body


@contextmanager
def _earlier_write(request_id: str) -> Iterator[list[str]]:
    """Swallow the failed condition of a write this request already made; the list then holds
    that write's ``uploadedAt``. Any other error propagates."""
    found: list[str] = []
    try:
        yield found
    except botocore.exceptions.ClientError as exc:
        uploaded_at = _own_write(exc, request_id)
        if uploaded_at is None:
            raise
        found.append(uploaded_at)


def _own_write(exc: botocore.exceptions.ClientError, request_id: str) -> str | None:
    """The ``uploadedAt`` of this request's own earlier write, when that is why ``exc`` (the
    transaction, cancelled because the metadata item is already this request's) happened; else
    None. The transaction is all or nothing, so the item being this request's means its commit
    landed too (the commit record's and the lease's conditions fail for the same reason)."""
    if aws.error_code(exc) != aws.TRANSACTION_CANCELED:
        return None
    reasons = exc.response.get("CancellationReasons") or []
    if not reasons or reasons[0].get("Code") != "ConditionalCheckFailed":
        return None
    item = reasons[0].get("Item")
    if not isinstance(item, dict) or not rollback.own_item(item, request_id):
        return None
    uploaded_at = item.get("uploadedAt", {}).get("S")
    return uploaded_at if isinstance(uploaded_at, str) else None


def success_body(
    request_id: str, upload: UploadMetadata, stored: StoreReceipt, uploaded_at: str
) -> SuccessBody:
    """The client's 200 body (docs/api.md)."""
    return SuccessBody(
        requestId=request_id,
        productId=upload.productId,
        productName=upload.productName,
        price=upload.price,
        fileName=upload.fileName,
        contentType=content_type(upload, stored),
        size=upload.size,
        sha256=upload.sha256,
        s3Key=stored.s3Key,
        versionId=stored.versionId,
        timestamp=uploaded_at,
        uploadId=upload.sessionId,
        checksum=stored.checksum,
    )


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Record one upload with settings and endpoint taken from ``env``."""
    with task_input(TASK, RecordEvent, event, env) as payload:
        body = record(
            payload.requestId,
            payload.upload,
            payload.stored,
            dynamodb=aws.dynamodb_client(env),
            table_name=aws.required_setting(env, names.METADATA_TABLE_NAME),
            ledger_table=aws.required_setting(env, names.LEDGER_TABLE_NAME),
            idempotency_table=env.get(names.IDEMPOTENCY_TABLE_NAME),
            sessions_table=env.get(names.SESSIONS_TABLE_NAME),
        )
        emit_metric(names.UPLOADS_STORED, MetricUnit.Count, 1, env=env)
        emit_metric(names.BYTES_STORED, MetricUnit.Bytes, body.size, env=env)
        return body.to_dict()


handler = lambda_handler(run, tracer=tracer)
