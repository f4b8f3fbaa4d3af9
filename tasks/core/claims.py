"""Idempotency claims in DynamoDB (store claims, record completes, compensate releases).

The protocol and why it is not Powertools' ``@idempotent``: ``tasks.contract.idempotency``.
A claim is a :class:`Claim`; :meth:`Claim.to_item` and :meth:`Claim.from_item` are the one place
that maps it to and from its table item: {idempotencyKey (the idempotencyId), fingerprint,
requestId, status, expiresAt (epoch seconds, TTL), receipt (the success body as JSON, once
COMPLETED)}.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import botocore.exceptions

from tasks.contract.errors import IdempotencyConflict
from tasks.contract.idempotency import (
    CLAIM_SECONDS,
    DIFFERENT_BODY_MESSAGE,
    EXPIRES_ATTRIBUTE,
    IN_PROGRESS_MESSAGE,
    KEY_ATTRIBUTE,
    REPLAY_SECONDS,
    STATUS_COMPLETED,
    STATUS_IN_PROGRESS,
)
from tasks.core import aws
from tasks.core.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

Clock = Callable[[], float]

# The item's attributes besides the key and the expiry.
_FINGERPRINT: Final = "fingerprint"
_REQUEST_ID: Final = "requestId"
_STATUS: Final = "status"
_RECEIPT: Final = "receipt"
# Free, expired, or already this request's (a retried Store re-claims).
_CLAIM_CONDITION: Final = "attribute_not_exists(#key) OR #expires < :now OR #requestId = :requestId"
_NAMES: Final = {"#key": KEY_ATTRIBUTE, "#expires": EXPIRES_ATTRIBUTE, "#requestId": _REQUEST_ID}


@dataclass(frozen=True)
class Claim:
    """One Idempotency-Key claim as the table holds it."""

    idempotency_id: str
    fingerprint: str | None
    request_id: str | None
    status: str | None
    expires_at: int | None = None
    receipt: dict[str, Any] | None = None  # the first request's success body, once COMPLETED

    def to_item(self) -> dict[str, Any]:
        """The table item (DynamoDB's wire form) of a new IN_PROGRESS claim."""
        return {
            KEY_ATTRIBUTE: {"S": self.idempotency_id},
            _FINGERPRINT: {"S": self.fingerprint or ""},
            _REQUEST_ID: {"S": self.request_id or ""},
            _STATUS: {"S": self.status or STATUS_IN_PROGRESS},
            EXPIRES_ATTRIBUTE: {"N": str(self.expires_at or 0)},
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Claim:
        """A claim read back from the table (missing or malformed attributes are None)."""
        expires = aws.number_attribute(item, EXPIRES_ATTRIBUTE)
        receipt_text = aws.string_attribute(item, _RECEIPT)
        receipt = json.loads(receipt_text) if receipt_text else None
        return cls(
            idempotency_id=aws.string_attribute(item, KEY_ATTRIBUTE) or "",
            fingerprint=aws.string_attribute(item, _FINGERPRINT),
            request_id=aws.string_attribute(item, _REQUEST_ID),
            status=aws.string_attribute(item, _STATUS),
            expires_at=int(expires) if expires is not None else None,
            receipt=receipt if isinstance(receipt, dict) else None,
        )


def claim(
    dynamodb: DynamoDBClient,
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
    wanted = Claim(idempotency_id, fingerprint, request_id, STATUS_IN_PROGRESS, now + CLAIM_SECONDS)
    with aws.storage_errors("Claiming the Idempotency-Key"):
        held = _put_claim(dynamodb, table, wanted, now)
    if held is None:
        logger.info("Idempotency-Key claimed", extra={"idempotencyId": idempotency_id})
        return None
    return _held_by_another(held.get("Item"), fingerprint)


def _put_claim(
    dynamodb: DynamoDBClient, table: str, wanted: Claim, now: int
) -> dict[str, Any] | None:
    """None when claimed; else ``{"Item": <the claim that stood in the way, or None>}``."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item=wanted.to_item(),
            ConditionExpression=_CLAIM_CONDITION,
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":requestId": {"S": wanted.request_id or ""},
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
                TableName=table,
                Key={KEY_ATTRIBUTE: {"S": wanted.idempotency_id}},
                ConsistentRead=True,
            ).get("Item")
        return {"Item": dict(item) if item else None}
    return None


def _held_by_another(item: dict[str, Any] | None, fingerprint: str) -> dict[str, Any]:
    """Decide on a claim another live request holds (or held and completed)."""
    if item is None:
        # Released between the failed condition and the read: the caller's retry will claim it.
        raise IdempotencyConflict(IN_PROGRESS_MESSAGE)
    held = Claim.from_item(item)
    extra = {"idempotencyId": held.idempotency_id, "heldBy": held.request_id}
    if held.fingerprint != fingerprint:
        logger.info("Idempotency-Key reused with a different body", extra=extra)
        raise IdempotencyConflict(DIFFERENT_BODY_MESSAGE)
    if held.status == STATUS_COMPLETED and held.receipt is not None:
        logger.info("Idempotent replay of a completed request", extra=extra)
        return held.receipt
    logger.info("Idempotency-Key is held by a request in progress", extra=extra)
    raise IdempotencyConflict(IN_PROGRESS_MESSAGE)


def completion(
    *,
    table: str,
    idempotency_id: str,
    request_id: str,
    receipt: dict[str, Any],
    clock: Clock = time.time,
) -> TransactWriteItemTypeDef:
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
                "#status": _STATUS,
                "#receipt": _RECEIPT,
                "#expires": EXPIRES_ATTRIBUTE,
                "#requestId": _REQUEST_ID,
            },
            "ExpressionAttributeValues": {
                ":completed": {"S": STATUS_COMPLETED},
                ":receipt": {"S": json.dumps(receipt, ensure_ascii=False, separators=(",", ":"))},
                ":expires": {"N": str(now + REPLAY_SECONDS)},
                ":requestId": {"S": request_id},
            },
        }
    }


def release(dynamodb: DynamoDBClient, *, table: str, idempotency_id: str, request_id: str) -> bool:
    """Delete this request's claim (if it still holds it), so the client may retry. True when a
    claim was deleted. SDK errors other than the failed condition propagate."""
    # False: never claimed, or another request's claim now.
    return aws.conditional_write(
        lambda: dynamodb.delete_item(
            TableName=table,
            Key={KEY_ATTRIBUTE: {"S": idempotency_id}},
            ConditionExpression="#requestId = :requestId",
            ExpressionAttributeNames={"#requestId": _REQUEST_ID},
            ExpressionAttributeValues={":requestId": {"S": request_id}},
        )
    )
