"""The upload ledger: one table that makes "200 = stored and recorded, anything else = nothing new,
orphans never silent" hold under races, timeouts and failed compensations.

It holds two kinds of items (partition key ``pk``):

- **An intent** per request (``request#<requestId>``), written by Store in the same transaction as
  its item lease, *before* its PUT: every version the service ever writes has an intent. Its
  ``status`` is ``PENDING`` until Record commits (``COMMITTED``, with the committed
  ``versionId``, in the same transaction as the metadata item: the durable commit record) or
  Compensate fences it (``ABORTED``). An intent is **open** (``openShard`` and ``openSince`` set,
  which puts it in the sparse index :data:`OPEN_INDEX`) from its start until nothing it may have
  written can still be unaccounted for: a commit closes it; a failure leaves it open for the
  sweep, which closes it once the grace period has passed and every version the request wrote is
  committed or gone.
- **A lease** per metadata item (``item#<productId>\\n<productName>``), held from Store's begin
  until Record's commit (or its expiry): uploads of one item run one at a time, so the item's
  write and the S3 PUT it points at are ordered. Uploads of different items never touch the same
  lease.

Why this is correct: :mod:`tasks.core.ledger` (the transactions) and :mod:`tasks.core.sweep`.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

PARTITION_KEY: Final = "pk"
OPEN_INDEX: Final = "OpenIntents"
OPEN_SHARD: Final = "openShard"  # the index's partition key, present while the intent is open
OPEN_SINCE: Final = "openSince"  # the index's sort key: epoch seconds the intent was opened
# The open intents are spread over this many index partitions, so that a busy service does not
# write one index partition for every upload.
OPEN_SHARDS: Final = 16

STATUS: Final = "status"
PENDING: Final = "PENDING"
COMMITTED: Final = "COMMITTED"
ABORTED: Final = "ABORTED"

REQUEST_ID: Final = "requestId"
PRODUCT_ID: Final = "productId"
PRODUCT_NAME: Final = "productName"
S3_KEY: Final = "s3Key"
BUCKET: Final = "bucket"
STARTED_AT: Final = "startedAt"  # the execution's start ($$.Execution.StartTime)
# The upload session a request commits ("" for an inline file): its versions carry the session's
# id, not the request's (tasks.core.ledger.Upload.writer).
SESSION_ID: Final = "sessionId"
STORE_ATTEMPT: Final = "storeAttempt"  # the highest Store attempt that began
VERSION_ID: Final = "versionId"  # the committed version
HOLDER: Final = "holder"  # a lease's request id
EXPIRES_AT: Final = "expiresAt"  # epoch seconds; the table's TTL attribute

# A lease outlives the workflow's longest run (tasks.contract.timing) with room for a request
# still in flight when an execution died; an execution that dies holding it blocks its item for
# at most this long.
LEASE_SECONDS: Final = 60
# How long a closed intent (the commit record) is kept: as long as a noncurrent version is.
CLOSED_INTENT_DAYS: Final = 90
# The sweep looks at an intent, and touches a version, only once it is this old: longer than
# any execution and any request it sent can live.
DEFAULT_GRACE_SECONDS: Final = 600
# The sweep's schedule.
SWEEP_INTERVAL_MINUTES: Final = 5


def table_schema() -> dict[str, Any]:
    """The table's key and its index as DynamoDB's ``CreateTable`` takes them: what
    infra/storage.py declares (tests/infrastructure/test_storage.py holds the two together), for
    the tables tests and benchmarks create on moto."""
    return {
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": OPEN_SHARD, "AttributeType": "S"},
            {"AttributeName": OPEN_SINCE, "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": OPEN_INDEX,
                "KeySchema": [
                    {"AttributeName": OPEN_SHARD, "KeyType": "HASH"},
                    {"AttributeName": OPEN_SINCE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def intent_key(request_id: str) -> str:
    return f"request#{request_id}"


def lease_key(product_id: str, product_name: str) -> str:
    """The lease of the metadata item (productId, productName); product ids contain no newline
    and product names no control character, so two items never share a lease."""
    return f"item#{product_id}\n{product_name}"


def open_shard(request_id: str) -> str:
    """The index partition an intent is filed under while it is open."""
    digest = hashlib.sha256(request_id.encode("utf-8", "surrogatepass")).digest()
    return str(digest[0] % OPEN_SHARDS)
