"""The sweep: finds what no compensation accounted for, whatever happened.

Every version the service writes has an intent in the ledger, opened before its PUT
(tasks.core.ledger), and an intent stays open until everything its request wrote is accounted
for. So the sweep only reads open intents older than the grace period (longer than any execution
and any request it sent can live: nothing of theirs can still land), never the whole bucket:

- the request's versions of its key are listed and checked by their request-id tag
  (tasks.core.versions); every one but the committed version (COMMITTED intents) is an
  **orphan**: written by a request that did not end in 200, or by an earlier Store attempt of one
  that did;
- a version younger than the grace period is left alone, and so is its intent (kept open);
- the metadata item of a request that did not commit but whose write landed (its compensation
  never ran) is an orphan too.

Each orphan is reported (an ERROR line "ORPHAN: ...", metric OrphanVersions), and in
:attr:`SweepMode.DELETE` deleted (a version by its VersionId; a metadata write undone with
tasks.core.rollback). An intent is closed once nothing of its request remains uncommitted. A
committed version that a later upload superseded has a COMMITTED intent: never touched.

:attr:`SweepMode.REPORT` (``upload-ops orphans`` without ``--delete``) only reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from tasks.contract import ledger as ledger_contract
from tasks.core import deadline, ledger, rollback
from tasks.core.observability import logger
from tasks.core.versions import Version, cutoff, dated_versions_of_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

ORPHAN_MESSAGE: Final = "ORPHAN: the sweep found an uncommitted object version"
# Time kept back from the invocation's deadline: one intent's lookups and writes.
RESERVE_SECONDS: Final = 5.0
METADATA_MESSAGE: Final = "ORPHAN: the sweep found the metadata write of an uncommitted request"


class SweepMode(enum.Enum):
    REPORT = "report"  # read only
    SWEEP = "sweep"  # report; fence requests that died PENDING; close what is accounted for
    DELETE = "delete"  # as SWEEP, and delete every orphan


@dataclass(frozen=True)
class Orphan:
    request_id: str
    bucket: str
    s3_key: str
    version_id: str | None  # None: the orphan is the request's metadata write
    last_modified: datetime | None
    intent_status: str
    deleted: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "requestId": self.request_id,
            "bucket": self.bucket,
            "s3Key": self.s3_key,
            "versionId": self.version_id,
            "lastModified": self.last_modified.isoformat() if self.last_modified else None,
            "intentStatus": self.intent_status,
            "deleted": self.deleted,
        }


@dataclass
class SweepResult:
    orphans: list[Orphan] = field(default_factory=list)
    examined: int = 0  # open intents older than the grace period
    closed: int = 0  # of those, accounted for and closed
    waiting: int = 0  # of those, kept open: a version of theirs is younger than the grace period
    unfinished: bool = False  # stopped before the deadline with intents left to examine


@dataclass(frozen=True)
class Stores:
    """Where the sweep reads and writes."""

    s3: S3Client
    dynamodb: DynamoDBClient
    ledger_table: str
    metadata_table: str


def sweep(stores: Stores, *, grace: timedelta, now: datetime, mode: SweepMode) -> SweepResult:
    """One pass over the open intents older than ``grace`` (module doc)."""
    result = SweepResult()
    before = int((now - grace).timestamp())
    for listed in ledger.open_intents(stores.dynamodb, stores.ledger_table, before=before):
        left = deadline.seconds_left()
        if left is not None and left < RESERVE_SECONDS:
            result.unfinished = True  # the next run goes on where this one stopped
            break
        # The index is eventually consistent: act on the intent as it is now, never on a copy
        # that may predate its commit.
        intent = ledger.read_intent(stores.dynamodb, stores.ledger_table, listed.upload.request_id)
        if intent is None or intent.open_since == 0:
            continue  # closed (or gone) since the index was written
        result.examined += 1
        _sweep_intent(stores, intent, grace=grace, now=now, mode=mode, result=result)
    logger.info(
        "Sweep finished",
        extra={
            "mode": mode.value,
            "examined": result.examined,
            "orphans": len(result.orphans),
            "deleted": sum(o.deleted for o in result.orphans),
            "closed": result.closed,
            "waiting": result.waiting,
        },
    )
    return result


def _sweep_intent(
    stores: Stores,
    intent: ledger.Intent,
    *,
    grace: timedelta,
    now: datetime,
    mode: SweepMode,
    result: SweepResult,
) -> None:
    upload = intent.upload
    status = intent.status
    if status == ledger_contract.PENDING and mode is not SweepMode.REPORT:
        if not ledger.fence_pending(stores.dynamodb, stores.ledger_table, upload.request_id):
            return  # it committed or was fenced since it was read: the next run looks again
        status = ledger_contract.ABORTED
    versions = dated_versions_of_request(
        stores.s3,
        bucket=upload.bucket,
        key=upload.s3_key,
        request_id=upload.writer,
        since=cutoff(upload.started_at),
    )
    committed = intent.version_id if status == ledger_contract.COMMITTED else None
    uncommitted = [v for v in versions if v.version_id != committed]
    young = [v for v in uncommitted if v.last_modified > now - grace]
    remaining = False
    for version in uncommitted:
        if version in young:
            continue
        deleted = _settle_version(stores, upload, version, mode)
        remaining |= not deleted
        result.orphans.append(
            Orphan(
                upload.request_id,
                upload.bucket,
                upload.s3_key,
                version.version_id,
                version.last_modified,
                status,
                deleted,
            )
        )
    if status != ledger_contract.COMMITTED:
        metadata = _settle_metadata(stores, upload, status, mode)
        if metadata is not None:
            result.orphans.append(metadata)
            remaining |= not metadata.deleted
    if young:
        result.waiting += 1
    elif not remaining and mode is not SweepMode.REPORT:
        ledger.close(
            stores.dynamodb, stores.ledger_table, upload.request_id, now=int(now.timestamp())
        )
        result.closed += 1


def _settle_version(
    stores: Stores, upload: ledger.Upload, version: Version, mode: SweepMode
) -> bool:
    """Report one orphan version; delete it in DELETE mode. True when it was deleted."""
    deleted = False
    if mode is SweepMode.DELETE:
        stores.s3.delete_object(
            Bucket=upload.bucket, Key=upload.s3_key, VersionId=version.version_id
        )
        deleted = True
    logger.error(
        ORPHAN_MESSAGE,
        extra={
            "orphan": upload.orphan(
                [version.version_id], lastModified=version.last_modified.isoformat()
            ),
            "deleted": deleted,
        },
    )
    return deleted


def _settle_metadata(
    stores: Stores, upload: ledger.Upload, status: str, mode: SweepMode
) -> Orphan | None:
    """The metadata write of a request that did not commit, if it is still the item's (its
    compensation never undid it): reported, and undone in DELETE mode."""
    key = {"productId": {"S": upload.product_id}, "productName": {"S": upload.product_name}}
    item = stores.dynamodb.get_item(
        TableName=stores.metadata_table, Key=key, ConsistentRead=True
    ).get("Item")
    if not rollback.own_item(dict(item) if item else None, upload.request_id):
        return None
    deleted = False
    if mode is SweepMode.DELETE:
        outcome = rollback.undo(
            stores.dynamodb, table=stores.metadata_table, key=key, request_id=upload.request_id
        )
        deleted = outcome != "untouched"
    logger.error(
        METADATA_MESSAGE,
        extra={
            "metadata": {"productId": upload.product_id, "productName": upload.product_name},
            "requestId": upload.request_id,
            "undone": deleted,
        },
    )
    return Orphan(upload.request_id, upload.bucket, upload.s3_key, None, None, status, deleted)
