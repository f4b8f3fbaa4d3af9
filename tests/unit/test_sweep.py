"""The sweep (tasks.core.sweep, tasks/sweep.py) against moto: it reports (and in DELETE mode
deletes) exactly the uncommitted versions and metadata writes older than the grace period, fences
requests that died PENDING, and never touches a committed version or a young one."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest

from tasks import store
from tasks import sweep as sweep_task
from tasks.contract import ledger as contract
from tasks.contract.errors import InvalidTaskInput
from tasks.core import deadline, ledger
from tasks.core.sweep import Orphan, Stores, SweepMode, SweepResult, sweep
from tasks.core.validation import parse_body, validate_upload

from .support import (
    BUCKET,
    LEDGER_TABLE,
    TABLE,
    Cloud,
    complete_upload,
    metric_values,
    store_event,
)

KEY = "uploads/PROD-001/test-file.txt"
GRACE = timedelta(minutes=10)
HOUR_AGO = int(time.time()) - 3600


def entry(request_id: str) -> ledger.Upload:
    return ledger.Upload(
        request_id=request_id,
        bucket=BUCKET,
        s3_key=KEY,
        product_id="PROD-001",
        product_name="Test Product",
        started_at=None,
    )


def begun(cloud: Cloud, request_id: str, *, opened_at: int = HOUR_AGO) -> None:
    """Store's ledger transaction for ``request_id``, as it ran at ``opened_at``."""
    store.begin_upload(
        entry(request_id),
        dynamodb=cloud.dynamodb,
        table=LEDGER_TABLE,
        attempt=0,
        clock=lambda: opened_at,
    )


def put(cloud: Cloud, request_id: str, data: bytes) -> str:
    """Store's PUT for ``request_id`` (a version tagged with its request id); its version id."""
    event = store_event(request_id, data)
    receipt = store.store(
        request_id,
        validate_upload(request_id, parse_body(event["body"])),
        store.file_content(event["body"]),
        s3=cloud.s3,
        bucket=BUCKET,
        key_arn=cloud.key_arn,
    )
    return receipt.versionId


def committed(cloud: Cloud, request_id: str, data: bytes) -> str:
    """A whole successful upload (Store, then Record's commit); its version id."""
    event = store_event(request_id, data)
    stored = store.run(event, env=cloud.env)
    complete_upload(cloud, event, stored)
    return str(stored["versionId"])


def aborted(cloud: Cloud, request_id: str, data: bytes) -> str:
    """A request that stored, then was fenced by a compensation that died before deleting."""
    begun(cloud, request_id)
    version_id = put(cloud, request_id, data)
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry(request_id), now=HOUR_AGO)
    return version_id


def stores(cloud: Cloud) -> Stores:
    return Stores(
        s3=cloud.s3, dynamodb=cloud.dynamodb, ledger_table=LEDGER_TABLE, metadata_table=TABLE
    )


def later() -> datetime:
    """A sweep's "now" once every version written so far is older than the grace period."""
    return datetime.now(UTC) + 2 * GRACE


def swept(cloud: Cloud, mode: SweepMode, now: datetime | None = None) -> SweepResult:
    return sweep(stores(cloud), grace=GRACE, now=now or later(), mode=mode)


def versions(cloud: Cloud) -> tuple[list[str], list[str]]:
    listing = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)
    return (
        [v["VersionId"] for v in listing.get("Versions", [])],
        [m["VersionId"] for m in listing.get("DeleteMarkers", [])],
    )


def intent(cloud: Cloud, request_id: str) -> dict[str, Any]:
    item = cloud.dynamodb.get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": f"request#{request_id}"}}, ConsistentRead=True
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def metadata(cloud: Cloud) -> dict[str, Any] | None:
    item = cloud.dynamodb.get_item(
        TableName=TABLE,
        Key={"productId": {"S": "PROD-001"}, "productName": {"S": "Test Product"}},
        ConsistentRead=True,
    ).get("Item")
    return dict(item) if item else None


def ledger_items(cloud: Cloud) -> list[dict[str, Any]]:
    return sorted(
        cloud.dynamodb.scan(TableName=LEDGER_TABLE)["Items"], key=lambda item: item["pk"]["S"]
    )


def last_modified(cloud: Cloud, version_id: str) -> datetime:
    head = cloud.s3.head_object(Bucket=BUCKET, Key=KEY, VersionId=version_id)
    return head["LastModified"]  # type: ignore[no-any-return]


# --- an aborted request's version ---


@pytest.mark.parametrize("mode", [SweepMode.REPORT, SweepMode.SWEEP])
def test_an_aborted_requests_old_version_is_reported_and_kept(
    cloud: Cloud, logs, mode: SweepMode
) -> None:
    live = committed(cloud, "req-old", b"a committed upload")
    orphan = aborted(cloud, "req-1", b"an aborted upload")
    before = (versions(cloud), ledger_items(cloud), metadata(cloud))

    result = swept(cloud, mode)

    assert result.orphans == [
        Orphan("req-1", BUCKET, KEY, orphan, last_modified(cloud, orphan), "ABORTED", deleted=False)
    ]
    assert (result.examined, result.closed, result.waiting) == (1, 0, 0)
    assert (versions(cloud), ledger_items(cloud), metadata(cloud)) == before  # nothing changed
    [line] = [line for line in logs() if line["level"] == "ERROR"]
    assert line["orphan"]["versionIds"] == [orphan]
    assert live not in json.dumps(line)


def test_delete_mode_deletes_the_orphan_by_version_id_and_closes_the_intent(cloud: Cloud) -> None:
    live = committed(cloud, "req-old", b"a committed upload")
    orphan = aborted(cloud, "req-1", b"an aborted upload")

    result = swept(cloud, SweepMode.DELETE)

    assert [(o.version_id, o.deleted) for o in result.orphans] == [(orphan, True)]
    assert (result.examined, result.closed, result.waiting) == (1, 1, 0)
    assert versions(cloud) == ([live], [])  # by VersionId: no delete marker
    assert cloud.s3.get_object(Bucket=BUCKET, Key=KEY)["VersionId"] == live
    closed = intent(cloud, "req-1")
    assert closed["status"] == "ABORTED"
    assert "openShard" not in closed
    assert "expiresAt" in closed
    # Closed: the next run has nothing to look at.
    assert swept(cloud, SweepMode.DELETE) == SweepResult()


# --- what the sweep never touches ---


def test_a_committed_version_is_never_touched(cloud: Cloud) -> None:
    """A COMMITTED intent still in the index (as its request's index entry may be): only the
    version an earlier Store attempt left is an orphan, never the committed one."""
    begun(cloud, "req-1")
    leftover = put(cloud, "req-1", b"first attempt")
    kept = put(cloud, "req-1", b"second attempt")
    cloud.dynamodb.transact_write_items(
        TransactItems=ledger.commit(LEDGER_TABLE, entry("req-1"), version_id=kept, now=HOUR_AGO)
    )
    cloud.dynamodb.update_item(  # back in the index
        TableName=LEDGER_TABLE,
        Key=entry("req-1").intent(),
        UpdateExpression="SET openShard = :shard, openSince = :since",
        ExpressionAttributeValues={
            ":shard": {"S": contract.open_shard("req-1")},
            ":since": {"N": str(HOUR_AGO)},
        },
    )

    result = swept(cloud, SweepMode.DELETE)

    assert [(o.version_id, o.intent_status, o.deleted) for o in result.orphans] == [
        (leftover, "COMMITTED", True)
    ]
    assert versions(cloud) == ([kept], [])
    assert intent(cloud, "req-1")["status"] == "COMMITTED"


def test_a_version_younger_than_the_grace_period_is_never_touched(cloud: Cloud) -> None:
    young = aborted(cloud, "req-1", b"just written")  # its intent is an hour old

    result = swept(cloud, SweepMode.DELETE, now=datetime.now(UTC))

    assert result.orphans == []
    assert (result.examined, result.closed, result.waiting) == (1, 0, 1)
    assert versions(cloud) == ([young], [])
    assert "openShard" in intent(cloud, "req-1")  # kept open: a later run comes back
    # Once it is older than the grace period, it is an orphan like any other.
    assert [o.version_id for o in swept(cloud, SweepMode.DELETE).orphans] == [young]
    assert versions(cloud) == ([], [])


def test_an_intent_younger_than_the_grace_period_is_not_examined(cloud: Cloud) -> None:
    now = datetime.now(UTC)
    begun(cloud, "req-1", opened_at=int(now.timestamp()) - 60)
    version = put(cloud, "req-1", b"in flight")
    result = swept(cloud, SweepMode.DELETE, now=now)
    assert result == SweepResult()
    assert intent(cloud, "req-1")["status"] == "PENDING"  # not fenced: it may still commit
    assert versions(cloud) == ([version], [])


# --- a request that died PENDING ---


@pytest.mark.parametrize("mode", [SweepMode.SWEEP, SweepMode.DELETE])
def test_a_pending_intent_older_than_the_grace_period_is_fenced(
    cloud: Cloud, mode: SweepMode
) -> None:
    begun(cloud, "req-1")  # its execution died: no compensation ever ran
    version = put(cloud, "req-1", b"stored, never recorded")

    result = swept(cloud, mode)

    deletes = mode is SweepMode.DELETE
    assert [(o.version_id, o.intent_status, o.deleted) for o in result.orphans] == [
        (version, "ABORTED", deletes)
    ]
    assert intent(cloud, "req-1")["status"] == "ABORTED"
    assert result.closed == (1 if deletes else 0)
    assert versions(cloud) == ([] if deletes else [version], [])
    # A commit arriving now changes nothing.
    with pytest.raises(botocore.exceptions.ClientError):
        cloud.dynamodb.transact_write_items(
            TransactItems=ledger.commit(
                LEDGER_TABLE, entry("req-1"), version_id=version, now=int(time.time())
            )
        )


def test_report_mode_does_not_fence(cloud: Cloud) -> None:
    begun(cloud, "req-1")
    version = put(cloud, "req-1", b"stored, never recorded")
    result = swept(cloud, SweepMode.REPORT)
    assert [(o.version_id, o.intent_status, o.deleted) for o in result.orphans] == [
        (version, "PENDING", False)
    ]
    assert intent(cloud, "req-1")["status"] == "PENDING"


# --- a metadata write no compensation undid ---


@pytest.mark.parametrize("mode", [SweepMode.REPORT, SweepMode.DELETE])
def test_a_metadata_write_of_an_uncommitted_request_is_reported_and_undone(
    cloud: Cloud, mode: SweepMode
) -> None:
    """Record's transaction landed, the task still failed; the compensation fenced the request
    and died before undoing the item: the item points at a version about to be deleted."""
    previous = committed(cloud, "req-old", b"the previous upload")
    earlier_item = metadata(cloud)
    mine = committed(cloud, "req-1", b"recorded, then failed")
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry("req-1"), now=HOUR_AGO)
    written = metadata(cloud)
    assert written is not None
    assert written["requestId"] == {"S": "req-1"}

    result = swept(cloud, mode)

    deletes = mode is SweepMode.DELETE
    assert sorted(
        ((o.version_id or "<item>"), o.intent_status, o.deleted) for o in result.orphans
    ) == sorted([(mine, "ABORTED", deletes), ("<item>", "ABORTED", deletes)])
    if deletes:
        restored = metadata(cloud)
        assert restored is not None
        assert earlier_item is not None
        visible = {k: v for k, v in restored.items() if not k.startswith("prev")}
        assert visible == {k: v for k, v in earlier_item.items() if not k.startswith("prev")}
        assert restored["versionId"] == {"S": previous}
        assert versions(cloud) == ([previous], [])
        assert result.closed == 1
    else:
        assert metadata(cloud) == written
        assert versions(cloud) == ([mine, previous], [])


def test_the_first_write_of_an_item_is_deleted(cloud: Cloud) -> None:
    committed(cloud, "req-1", b"recorded, then failed")
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry("req-1"), now=HOUR_AGO)
    swept(cloud, SweepMode.DELETE)
    assert metadata(cloud) is None
    assert versions(cloud) == ([], [])


def test_the_sweep_stops_before_its_deadline(cloud: Cloud) -> None:
    aborted(cloud, "req-1", b"an aborted upload")
    with deadline.deadline_after(1.0):  # less than one intent's reserve
        result = swept(cloud, SweepMode.DELETE)
    assert (result.unfinished, result.examined, result.orphans) == (True, 0, [])


# --- the scheduled task ---


def sweep_env(cloud: Cloud, **settings: str) -> dict[str, str]:
    # Grace 0: every version written before the run is old enough (moto cannot backdate one).
    return {**cloud.env, "ORPHAN_GRACE_SECONDS": "0", **settings}


def test_the_task_returns_the_counts_and_emits_the_metrics(cloud: Cloud, capsys) -> None:
    aborted(cloud, "req-1", b"an aborted upload")
    capsys.readouterr()

    counts = sweep_task.run({}, env=sweep_env(cloud, SWEEP_DELETES_ORPHANS="true"))

    assert counts == {
        "examined": 1,
        "orphans": 1,
        "deleted": 1,
        "closed": 1,
        "waiting": 0,
        "unfinished": False,
    }
    assert metric_values(capsys.readouterr().out) == [
        ("OrphanVersions", {"service": "upload"}, 1.0),
        ("OrphansDeleted", {"service": "upload"}, 1.0),
    ]
    assert versions(cloud) == ([], [])


def test_the_task_deletes_nothing_unless_told_to(cloud: Cloud, capsys) -> None:
    version = aborted(cloud, "req-1", b"an aborted upload")
    capsys.readouterr()
    counts = sweep_task.run({"requestId": "schedule-1"}, env=sweep_env(cloud))
    assert (counts["orphans"], counts["deleted"], counts["closed"]) == (1, 0, 0)
    assert metric_values(capsys.readouterr().out) == [
        ("OrphanVersions", {"service": "upload"}, 1.0)
    ]
    assert versions(cloud) == ([version], [])
    # Nothing found: no metric at all.
    assert sweep_task.run({}, env={**sweep_env(cloud), "ORPHAN_GRACE_SECONDS": "7200"}) == {
        "examined": 0,
        "orphans": 0,
        "deleted": 0,
        "closed": 0,
        "waiting": 0,
        "unfinished": False,
    }
    assert metric_values(capsys.readouterr().out) == []


def test_the_settings() -> None:
    assert sweep_task.settings({}) == (
        timedelta(seconds=contract.DEFAULT_GRACE_SECONDS),
        SweepMode.SWEEP,
    )
    assert sweep_task.settings(
        {"ORPHAN_GRACE_SECONDS": "120", "SWEEP_DELETES_ORPHANS": "TRUE"}
    ) == (timedelta(minutes=2), SweepMode.DELETE)
    assert sweep_task.settings({"SWEEP_DELETES_ORPHANS": "yes"})[1] is SweepMode.SWEEP
    with pytest.raises(InvalidTaskInput, match="ORPHAN_GRACE_SECONDS"):
        sweep_task.settings({"ORPHAN_GRACE_SECONDS": "ten minutes"})


def test_a_stale_index_entry_of_a_committed_request_is_never_acted_on(
    cloud: Cloud, monkeypatch
) -> None:
    """The index is eventually consistent: it may still list as open (even as PENDING) an intent
    that has committed since. The sweep reads the intent itself before acting, so the 200's
    version and item stay."""
    version = committed(cloud, "req-1", b"a 200's file")
    stale = ledger.Intent(
        upload=entry("req-1"), status="PENDING", version_id=None, open_since=HOUR_AGO
    )
    monkeypatch.setattr(ledger, "open_intents", lambda *args, **kwargs: iter([stale]))

    result = sweep(stores(cloud), grace=GRACE, now=later(), mode=SweepMode.DELETE)

    assert result.orphans == []
    assert result.examined == 0
    assert versions(cloud) == ([version], [])
    assert metadata(cloud) is not None
    assert intent(cloud, "req-1")["status"] == "COMMITTED"
