"""Idempotency claims in DynamoDB (store claims, record completes, compensate releases).

The protocol and why it is not Powertools' ``@idempotent``: ``tasks.core.idempotency``.
Table items: {idempotencyKey (the idempotencyId), fingerprint, requestId, status, expiresAt
(epoch seconds, TTL), receipt (the success body as JSON, once COMPLETED)}.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Final

import botocore.exceptions

from tasks.core import aws
from tasks.core.errors import IdempotencyConflict
from tasks.core.idempotency import (
    CLAIM_SECONDS,
    DIFFERENT_BODY_MESSAGE,
    EXPIRES_ATTRIBUTE,
    IN_PROGRESS_MESSAGE,
    KEY_ATTRIBUTE,
    REPLAY_SECONDS,
    STATUS_COMPLETED,
    STATUS_IN_PROGRESS,
)
from tasks.core.observability import logger

Clock = Callable[[], float]

# Free, expired, or already this request's (a retried Store re-claims).
_CLAIM_CONDITION: Final = "attribute_not_exists(#key) OR #expires < :now OR #requestId = :requestId"
_NAMES: Final = {
    "#key": KEY_ATTRIBUTE,
    "#expires": EXPIRES_ATTRIBUTE,
    "#requestId": "requestId",
}


def claim(
    dynamodb: Any,
    *,
    table: str,
    idempotency_id: str,
    fingerprint: str,
    request_id: str,
    clock: Clock = time.time,
) -> dict[str, Any] | None:
    """Claim the key for this request. None: claimed, go on storing. A dict: the first request's
    success body, to replay (nothing may be stored). Raises :class:`IdempotencyConflict` (another
    body, or the same body still in progress), Transient/StorageError (DynamoDB failed)."""
    now = int(clock())
    with aws.storage_errors("Claiming the Idempotency-Key"):
        held = _put_claim(dynamodb, table, idempotency_id, fingerprint, request_id, now)
    if held is None:
        logger.info("Idempotency-Key claimed", extra={"idempotencyId": idempotency_id})
        return None
    return _held_by_another(held.get("Item"), fingerprint)


def _put_claim(
    dynamodb: Any, table: str, idempotency_id: str, fingerprint: str, request_id: str, now: int
) -> dict[str, Any] | None:
    """None when claimed; else ``{"Item": <the claim that stood in the way, or None>}``."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                KEY_ATTRIBUTE: {"S": idempotency_id},
                "fingerprint": {"S": fingerprint},
                "requestId": {"S": request_id},
                "status": {"S": STATUS_IN_PROGRESS},
                EXPIRES_ATTRIBUTE: {"N": str(now + CLAIM_SECONDS)},
            },
            ConditionExpression=_CLAIM_CONDITION,
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":requestId": {"S": request_id},
            },
            # The item that made the condition fail comes back with the error: one atomic read,
            # no second round trip.
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except botocore.exceptions.ClientError as exc:
        if aws.error_code(exc) != aws.CONDITION_FAILED:
            raise
        item = exc.response.get("Item")
        if not item:  # a service that does not return it: read it (strongly consistent)
            item = dynamodb.get_item(
                TableName=table, Key={KEY_ATTRIBUTE: {"S": idempotency_id}}, ConsistentRead=True
            ).get("Item")
        return {"Item": dict(item) if item else None}
    return None


def _held_by_another(item: dict[str, Any] | None, fingerprint: str) -> dict[str, Any]:
    """Decide on a claim another live request holds (or held and completed)."""
    if item is None:
        # Released between the failed condition and the read: the caller's retry will claim it.
        raise IdempotencyConflict(IN_PROGRESS_MESSAGE)
    extra = {
        "idempotencyId": aws.string_attribute(item, KEY_ATTRIBUTE),
        "heldBy": aws.string_attribute(item, "requestId"),
    }
    if aws.string_attribute(item, "fingerprint") != fingerprint:
        logger.info("Idempotency-Key reused with a different body", extra=extra)
        raise IdempotencyConflict(DIFFERENT_BODY_MESSAGE)
    receipt_text = aws.string_attribute(item, "receipt")
    if aws.string_attribute(item, "status") == STATUS_COMPLETED and receipt_text:
        receipt = json.loads(receipt_text)
        if isinstance(receipt, dict):
            logger.info("Idempotent replay of a completed request", extra=extra)
            return receipt
    logger.info("Idempotency-Key is held by a request in progress", extra=extra)
    raise IdempotencyConflict(IN_PROGRESS_MESSAGE)


def completion(
    *,
    table: str,
    idempotency_id: str,
    request_id: str,
    receipt: dict[str, Any],
    clock: Clock = time.time,
) -> dict[str, Any]:
    """The TransactWriteItems entry that marks this request's claim COMPLETED with its receipt
    (replayed for :data:`REPLAY_SECONDS`); it fails the transaction unless this request still
    holds the claim."""
    now = int(clock())
    return {
        "Update": {
            "TableName": table,
            "Key": {KEY_ATTRIBUTE: {"S": idempotency_id}},
            "UpdateExpression": "SET #status = :completed, #receipt = :receipt, "
            "#expires = :expires",
            "ConditionExpression": "#requestId = :requestId",
            "ExpressionAttributeNames": {
                "#status": "status",
                "#receipt": "receipt",
                "#expires": EXPIRES_ATTRIBUTE,
                "#requestId": "requestId",
            },
            "ExpressionAttributeValues": {
                ":completed": {"S": STATUS_COMPLETED},
                ":receipt": {"S": json.dumps(receipt, ensure_ascii=False, separators=(",", ":"))},
                ":expires": {"N": str(now + REPLAY_SECONDS)},
                ":requestId": {"S": request_id},
            },
        }
    }


def release(dynamodb: Any, *, table: str, idempotency_id: str, request_id: str) -> bool:
    """Delete this request's claim (if it still holds it), so the client may retry. True when a
    claim was deleted. SDK errors other than the failed condition propagate."""
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={KEY_ATTRIBUTE: {"S": idempotency_id}},
            ConditionExpression="#requestId = :requestId",
            ExpressionAttributeNames={"#requestId": "requestId"},
            ExpressionAttributeValues={":requestId": {"S": request_id}},
        )
    except botocore.exceptions.ClientError as exc:
        if aws.error_code(exc) == aws.CONDITION_FAILED:
            return False  # never claimed, or another request's claim now
        raise
    return True
