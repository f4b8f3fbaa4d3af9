"""The upload ledger's writes (the items: tasks.contract.ledger), and why together they keep the
promise "200 = stored and recorded; anything else = nothing new; orphans never silent".

1. **Uploads of one metadata item run one at a time.** Store's :func:`begin` is one transaction:
   the request's intent (PENDING) and the item's lease, taken only if it is free, expired, or
   already this request's (a retried Store). Only the lease holder PUTs. Record's :func:`commit`
   is one transaction too: the metadata item, the intent (PENDING -> COMMITTED with the version:
   the durable commit record) and the lease, which must still be this request's. So between a
   holder's PUT and its commit no other upload of the item can PUT to its key or write the item:
   the item ends pointing at the newest version written under the lease, which is S3's current
   version of its key. A lease that expired meanwhile (the holder was too slow) fails the commit,
   and the request is compensated instead. Uploads of different items share nothing here.
2. **A late metadata write is fenced.** Compensate's first step, :func:`abort`, sets the intent
   ABORTED. A commit requires PENDING in the same transaction as the metadata write, so a commit
   that arrives after the fence changes nothing, and one that landed before it is seen and undone
   (tasks.core.rollback).
3. **Nothing is lost.** Every PUT happens under an intent written before it, and an intent stays
   open (in the OpenIntents index) until every version its request may have written is accounted
   for. A commit closes it at once (every PUT of the request was answered: a Store whose PUT went
   unanswered is compensated, not retried); a failure leaves it open for the sweep
   (tasks.core.sweep), which closes it after the grace period, once nothing uncommitted of its
   request remains.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from tasks.contract import ledger
from tasks.core import aws

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_CLOSED_SECONDS: Final = ledger.CLOSED_INTENT_DAYS * 24 * 60 * 60
# Each expression names exactly the attributes it uses (DynamoDB refuses unused names).
_STATUS: Final = {"#status": ledger.STATUS}
_HOLDER: Final = {"#holder": ledger.HOLDER}
_OPEN: Final = {"#openShard": ledger.OPEN_SHARD, "#openSince": ledger.OPEN_SINCE}
_EXPIRES: Final = {"#expiresAt": ledger.EXPIRES_AT}


@dataclass(frozen=True)
class Upload:
    """What the ledger records of one request's upload."""

    request_id: str
    bucket: str
    s3_key: str
    product_id: str
    product_name: str
    started_at: str | None  # the execution's start ($$.Execution.StartTime)
    # The upload session this request commits (tasks.contract.sessions), else None.
    session_id: str | None = None

    @property
    def writer(self) -> str:
        """Whose id the request's versions carry in their metadata (tasks.core.versions): the
        session's for a session's commit (set when its multipart upload began), else the
        request's."""
        return self.session_id or self.request_id

    def orphan(self, version_ids: list[str] | None, **details: object) -> dict[str, object]:
        """The ``orphan`` field of an ``ORPHAN: ...`` line about this request's versions."""
        session = {"sessionId": self.session_id} if self.session_id else {}
        return {
            "bucket": self.bucket,
            "s3Key": self.s3_key,
            "versionIds": version_ids,
            "requestId": self.request_id,
            **session,
            **details,
        }

    def lease(self) -> dict[str, Any]:
        return {ledger.PARTITION_KEY: {"S": ledger.lease_key(self.product_id, self.product_name)}}

    def intent(self) -> dict[str, Any]:
        return {ledger.PARTITION_KEY: {"S": ledger.intent_key(self.request_id)}}


# What every write of an intent by Store or Compensate sets: what the sweep needs to find the
# request's versions, and (once) the attributes that file it in the OpenIntents index.
_DESCRIBE: Final = (
    "#requestId = :requestId, #productId = :productId, #productName = :productName, "
    "#bucket = :bucket, #s3Key = :s3Key, #startedAt = :startedAt, #sessionId = :sessionId, "
    "#openShard = if_not_exists(#openShard, :shard), #openSince = if_not_exists(#openSince, :now)"
)
_DESCRIBE_NAMES: Final = {
    "#requestId": ledger.REQUEST_ID,
    "#productId": ledger.PRODUCT_ID,
    "#productName": ledger.PRODUCT_NAME,
    "#bucket": ledger.BUCKET,
    "#s3Key": ledger.S3_KEY,
    "#startedAt": ledger.STARTED_AT,
    "#sessionId": ledger.SESSION_ID,
    **_OPEN,
}


def _describe_values(upload: Upload, now: int) -> dict[str, Any]:
    return {
        ":requestId": {"S": upload.request_id},
        ":productId": {"S": upload.product_id},
        ":productName": {"S": upload.product_name},
        ":bucket": {"S": upload.bucket},
        ":s3Key": {"S": upload.s3_key},
        ":startedAt": {"S": upload.started_at or ""},
        ":sessionId": {"S": upload.session_id or ""},
        ":shard": {"S": ledger.open_shard(upload.request_id)},
        ":now": {"N": str(now)},
    }


def begin(table: str, upload: Upload, *, attempt: int, now: int) -> list[TransactWriteItemTypeDef]:
    """Store's transaction before its PUT: the intent (new, or still PENDING on a retry) and the
    item's lease (free, expired, or this request's). Index 1 failing means another upload holds
    the lease; its item comes back (ReturnValuesOnConditionCheckFailure)."""
    intent: TransactWriteItemTypeDef = {
        "Update": {
            "TableName": table,
            "Key": upload.intent(),
            "UpdateExpression": "SET #status = if_not_exists(#status, :pending), "
            f"#storeAttempt = :attempt, {_DESCRIBE}",
            "ConditionExpression": "attribute_not_exists(#pk) OR #status = :pending",
            "ExpressionAttributeNames": {
                **_DESCRIBE_NAMES,
                **_STATUS,
                "#pk": ledger.PARTITION_KEY,
                "#storeAttempt": ledger.STORE_ATTEMPT,
            },
            "ExpressionAttributeValues": {
                **_describe_values(upload, now),
                ":pending": {"S": ledger.PENDING},
                ":attempt": {"N": str(attempt)},
            },
        }
    }
    lease: TransactWriteItemTypeDef = {
        "Put": {
            "TableName": table,
            "Item": {
                **upload.lease(),
                ledger.HOLDER: {"S": upload.request_id},
                ledger.EXPIRES_AT: {"N": str(now + ledger.LEASE_SECONDS)},
            },
            "ConditionExpression": "attribute_not_exists(#pk) OR #expiresAt < :now "
            "OR #holder = :requestId",
            "ExpressionAttributeNames": {"#pk": ledger.PARTITION_KEY, **_EXPIRES, **_HOLDER},
            "ExpressionAttributeValues": {
                ":now": {"N": str(now)},
                ":requestId": {"S": upload.request_id},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    return [intent, lease]


def commit(
    table: str, upload: Upload, *, version_id: str, now: int
) -> list[TransactWriteItemTypeDef]:
    """Record's items beside its metadata write: the commit record (the intent PENDING ->
    COMMITTED with ``version_id``, closed) and the release of the lease, still this request's.
    No PUT of the request can still be in flight: a Store whose PUT went unanswered
    (WriteOutcomeUnknown) is not retried but compensated, and leaves its intent open."""
    intent: TransactWriteItemTypeDef = {
        "Update": {
            "TableName": table,
            "Key": upload.intent(),
            "UpdateExpression": "SET #status = :committed, #versionId = :versionId, "
            "#expiresAt = :expiresAt REMOVE #openShard, #openSince",
            "ConditionExpression": "#status = :pending AND #requestId = :requestId",
            "ExpressionAttributeNames": {
                **_STATUS,
                **_EXPIRES,
                **_OPEN,
                "#requestId": ledger.REQUEST_ID,
                "#versionId": ledger.VERSION_ID,
            },
            "ExpressionAttributeValues": {
                ":committed": {"S": ledger.COMMITTED},
                ":pending": {"S": ledger.PENDING},
                ":versionId": {"S": version_id},
                ":expiresAt": {"N": str(now + _CLOSED_SECONDS)},
                ":requestId": {"S": upload.request_id},
            },
        }
    }
    lease: TransactWriteItemTypeDef = {
        "Delete": {
            "TableName": table,
            "Key": upload.lease(),
            "ConditionExpression": "#holder = :requestId",
            "ExpressionAttributeNames": _HOLDER,
            "ExpressionAttributeValues": {":requestId": {"S": upload.request_id}},
        }
    }
    return [intent, lease]


def abort(dynamodb: DynamoDBClient, table: str, upload: Upload, *, now: int) -> str | None:
    """Compensate's fence: the intent becomes ABORTED (and stays open for the sweep), so no
    commit can land any more. Returns the status it had (None: Store never began)."""
    response = dynamodb.update_item(
        TableName=table,
        Key=upload.intent(),
        UpdateExpression=f"SET #status = :aborted, {_DESCRIBE} REMOVE #expiresAt",
        ExpressionAttributeNames={**_DESCRIBE_NAMES, **_STATUS, **_EXPIRES},
        ExpressionAttributeValues={
            **_describe_values(upload, now),
            ":aborted": {"S": ledger.ABORTED},
        },
        ReturnValues="UPDATED_OLD",
    )
    return aws.string_attribute(response.get("Attributes") or {}, ledger.STATUS)


def release_lease(dynamodb: DynamoDBClient, table: str, upload: Upload) -> bool:
    """Delete the item's lease if this request still holds it. True when it did."""
    # False: expired and taken by another upload, or never taken.
    return aws.conditional_write(
        lambda: dynamodb.delete_item(
            TableName=table,
            Key=upload.lease(),
            ConditionExpression="#holder = :requestId",
            ExpressionAttributeNames=_HOLDER,
            ExpressionAttributeValues={":requestId": {"S": upload.request_id}},
        )
    )


@dataclass(frozen=True)
class Intent:
    """An open intent as the sweep reads it."""

    upload: Upload
    status: str
    version_id: str | None  # the committed version (COMMITTED only)
    open_since: int

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Intent:
        def text(name: str) -> str:
            return aws.string_attribute(item, name) or ""

        return cls(
            upload=Upload(
                request_id=text(ledger.REQUEST_ID),
                bucket=text(ledger.BUCKET),
                s3_key=text(ledger.S3_KEY),
                product_id=text(ledger.PRODUCT_ID),
                product_name=text(ledger.PRODUCT_NAME),
                started_at=text(ledger.STARTED_AT) or None,
                session_id=text(ledger.SESSION_ID) or None,
            ),
            status=text(ledger.STATUS) or ledger.PENDING,
            version_id=aws.string_attribute(item, ledger.VERSION_ID),
            open_since=int(aws.number_attribute(item, ledger.OPEN_SINCE) or 0),
        )


def read_intent(dynamodb: DynamoDBClient, table: str, request_id: str) -> Intent | None:
    """The intent as it is now (a strongly consistent read; the index may lag behind)."""
    item = dynamodb.get_item(
        TableName=table,
        Key={ledger.PARTITION_KEY: {"S": ledger.intent_key(request_id)}},
        ConsistentRead=True,
    ).get("Item")
    return Intent.from_item(dict(item)) if item else None


def open_intents(dynamodb: DynamoDBClient, table: str, *, before: int) -> Iterator[Intent]:
    """Every intent opened before epoch second ``before`` and still open, shard by shard."""
    paginator = dynamodb.get_paginator("query")
    for shard in range(ledger.OPEN_SHARDS):
        pages = paginator.paginate(
            TableName=table,
            IndexName=ledger.OPEN_INDEX,
            KeyConditionExpression="#openShard = :shard AND #openSince < :before",
            ExpressionAttributeNames=_OPEN,
            ExpressionAttributeValues={":shard": {"S": str(shard)}, ":before": {"N": str(before)}},
        )
        for page in pages:
            for item in page.get("Items", []):
                yield Intent.from_item(dict(item))


def fence_pending(dynamodb: DynamoDBClient, table: str, request_id: str) -> bool:
    """The sweep's fence for a request that died PENDING (its execution ended without
    compensating): ABORTED, so that no commit can land. True when it was still PENDING."""
    return aws.conditional_write(
        lambda: dynamodb.update_item(
            TableName=table,
            Key={ledger.PARTITION_KEY: {"S": ledger.intent_key(request_id)}},
            UpdateExpression="SET #status = :aborted",
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames=_STATUS,
            ExpressionAttributeValues={
                ":aborted": {"S": ledger.ABORTED},
                ":pending": {"S": ledger.PENDING},
            },
        )
    )


def close(dynamodb: DynamoDBClient, table: str, request_id: str, *, now: int) -> None:
    """The sweep accounted for everything the request wrote: the intent leaves the index and is
    kept, like a commit record, for :data:`~tasks.contract.ledger.CLOSED_INTENT_DAYS`."""
    dynamodb.update_item(
        TableName=table,
        Key={ledger.PARTITION_KEY: {"S": ledger.intent_key(request_id)}},
        UpdateExpression="SET #expiresAt = :expiresAt REMOVE #openShard, #openSince",
        ConditionExpression="attribute_exists(#pk) AND #status <> :pending",
        ExpressionAttributeNames={"#pk": ledger.PARTITION_KEY, **_STATUS, **_EXPIRES, **_OPEN},
        ExpressionAttributeValues={
            ":expiresAt": {"N": str(now + _CLOSED_SECONDS)},
            ":pending": {"S": ledger.PENDING},
        },
    )
