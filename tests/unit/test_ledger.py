"""The upload ledger's transactions (tasks.core.ledger) against moto: begin, commit, abort (the
fence), release_lease, open_intents, fence_pending and close."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from tasks import store
from tasks.contract import ledger as contract
from tasks.contract.errors import UploadInProgress
from tasks.core import ledger

from .support import BUCKET, LEDGER_TABLE, Cloud

T0 = 1_800_000_000  # epoch seconds: the ledger's clock is passed in, never read here
CLOSED_SECONDS = contract.CLOSED_INTENT_DAYS * 24 * 60 * 60


def upload(request_id: str = "req-1", product_name: str = "Test Product") -> ledger.Upload:
    return ledger.Upload(
        request_id=request_id,
        bucket=BUCKET,
        s3_key="uploads/PROD-001/test-file.txt",
        product_id="PROD-001",
        product_name=product_name,
        started_at="2027-01-15T08:00:00.000Z",
    )


def transact(cloud: Cloud, items: list[Any]) -> None:
    cloud.dynamodb.transact_write_items(TransactItems=items)


def begin(cloud: Cloud, entry: ledger.Upload, *, now: int, attempt: int = 0) -> None:
    transact(cloud, ledger.begin(LEDGER_TABLE, entry, attempt=attempt, now=now))


def commit(cloud: Cloud, entry: ledger.Upload, *, now: int, version_id: str = "v-1") -> None:
    transact(cloud, ledger.commit(LEDGER_TABLE, entry, version_id=version_id, now=now))


def cancellation_codes(caught: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> list[str]:
    error = caught.value
    assert error.response["Error"]["Code"] == "TransactionCanceledException"
    return [str(reason["Code"]) for reason in error.response["CancellationReasons"]]


def raw(cloud: Cloud, key: dict[str, Any]) -> dict[str, Any] | None:
    found = cloud.dynamodb.get_item(TableName=LEDGER_TABLE, Key=key, ConsistentRead=True)
    item = found.get("Item")
    return {name: next(iter(value.values())) for name, value in item.items()} if item else None


def intent(cloud: Cloud, entry: ledger.Upload) -> dict[str, Any] | None:
    return raw(cloud, entry.intent())


def lease(cloud: Cloud, entry: ledger.Upload) -> dict[str, Any] | None:
    return raw(cloud, entry.lease())


# --- begin ---


def test_begin_opens_a_pending_intent_and_takes_a_free_lease(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    assert intent(cloud, entry) == {
        "pk": "request#req-1",
        "status": "PENDING",
        "storeAttempt": "0",
        "requestId": "req-1",
        "productId": "PROD-001",
        "productName": "Test Product",
        "bucket": BUCKET,
        "s3Key": "uploads/PROD-001/test-file.txt",
        "startedAt": "2027-01-15T08:00:00.000Z",
        # An inline upload commits no session: its versions carry the request's own id.
        "sessionId": "",
        "openShard": contract.open_shard("req-1"),
        "openSince": str(T0),
    }
    assert lease(cloud, entry) == {
        "pk": "item#PROD-001\nTest Product",
        "holder": "req-1",
        "expiresAt": str(T0 + contract.LEASE_SECONDS),
    }


def test_a_retried_begin_keeps_the_intent_open_since_the_first_attempt(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    begin(cloud, entry, now=T0 + 5, attempt=1)  # the lease is this request's: taken again
    found = intent(cloud, entry)
    assert found is not None
    assert (found["status"], found["storeAttempt"], found["openSince"]) == (
        "PENDING",
        "1",
        str(T0),
    )
    assert lease(cloud, entry) == {
        "pk": "item#PROD-001\nTest Product",
        "holder": "req-1",
        "expiresAt": str(T0 + 5 + contract.LEASE_SECONDS),
    }


@pytest.mark.parametrize("later", [1, contract.LEASE_SECONDS - 1, contract.LEASE_SECONDS])
def test_begin_refuses_a_lease_another_request_holds(cloud: Cloud, later: int) -> None:
    first, second = upload("req-1"), upload("req-2")
    begin(cloud, first, now=T0)
    held = lease(cloud, first)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        begin(cloud, second, now=T0 + later)
    assert cancellation_codes(caught) == ["None", "ConditionalCheckFailed"]
    # The lease's holder comes back with the failure (store names it in its log).
    holder = caught.value.response["CancellationReasons"][1]["Item"]["holder"]
    assert holder == {"S": "req-1"}
    assert intent(cloud, second) is None  # all or nothing: no intent either
    assert lease(cloud, first) == held


def test_store_turns_a_held_lease_into_upload_in_progress(cloud: Cloud) -> None:
    begin(cloud, upload("req-1"), now=T0)
    with pytest.raises(UploadInProgress):
        store.begin_upload(
            upload("req-2"),
            dynamodb=cloud.dynamodb,
            table=LEDGER_TABLE,
            attempt=0,
            clock=lambda: T0 + 1,
        )
    assert intent(cloud, upload("req-2")) is None


def test_begin_takes_an_expired_lease(cloud: Cloud) -> None:
    first, second = upload("req-1"), upload("req-2")
    begin(cloud, first, now=T0)
    begin(cloud, second, now=T0 + contract.LEASE_SECONDS + 1)
    assert lease(cloud, second) == {
        "pk": "item#PROD-001\nTest Product",
        "holder": "req-2",
        "expiresAt": str(T0 + 2 * contract.LEASE_SECONDS + 1),
    }
    assert intent(cloud, second)["status"] == "PENDING"  # type: ignore[index]


def test_uploads_of_different_items_do_not_share_a_lease(cloud: Cloud) -> None:
    begin(cloud, upload("req-1"), now=T0)
    begin(cloud, upload("req-2", product_name="Another Product"), now=T0)
    assert lease(cloud, upload("req-2", product_name="Another Product"))["holder"] == "req-2"  # type: ignore[index]
    assert lease(cloud, upload("req-1"))["holder"] == "req-1"  # type: ignore[index]


def test_begin_refuses_a_fenced_request(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=T0 + 1)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        begin(cloud, entry, now=T0 + 2, attempt=1)
    assert cancellation_codes(caught)[0] == "ConditionalCheckFailed"
    assert intent(cloud, entry)["status"] == "ABORTED"  # type: ignore[index]


# --- commit ---


def test_commit_closes_the_intent_and_deletes_the_lease(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    commit(cloud, entry, now=T0 + 3, version_id="v-42")
    found = intent(cloud, entry)
    assert found is not None
    assert (found["status"], found["versionId"], found["expiresAt"]) == (
        "COMMITTED",
        "v-42",
        str(T0 + 3 + CLOSED_SECONDS),
    )
    assert "openShard" not in found
    assert "openSince" not in found
    assert lease(cloud, entry) is None


def test_commit_requires_an_intent(cloud: Cloud) -> None:
    entry = upload()
    # A lease without an intent cannot happen (begin writes both); the intent alone fails.
    cloud.dynamodb.put_item(
        TableName=LEDGER_TABLE,
        Item={**entry.lease(), "holder": {"S": "req-1"}, "expiresAt": {"N": str(T0 + 60)}},
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        commit(cloud, entry, now=T0)
    assert cancellation_codes(caught) == ["ConditionalCheckFailed", "None"]
    assert intent(cloud, entry) is None
    assert lease(cloud, entry) is not None


def test_a_commit_after_the_fence_changes_nothing(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    assert ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=T0 + 1) == "PENDING"
    before = (intent(cloud, entry), lease(cloud, entry))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        commit(cloud, entry, now=T0 + 2)
    assert cancellation_codes(caught) == ["ConditionalCheckFailed", "None"]
    assert (intent(cloud, entry), lease(cloud, entry)) == before


def test_commit_requires_the_lease_to_be_still_its_own(cloud: Cloud) -> None:
    slow, later = upload("req-1"), upload("req-2")
    begin(cloud, slow, now=T0)
    begin(cloud, later, now=T0 + contract.LEASE_SECONDS + 1)  # req-1's lease expired, taken
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        commit(cloud, slow, now=T0 + contract.LEASE_SECONDS + 2)
    assert cancellation_codes(caught) == ["None", "ConditionalCheckFailed"]
    assert intent(cloud, slow)["status"] == "PENDING"  # type: ignore[index]
    assert lease(cloud, later)["holder"] == "req-2"  # type: ignore[index]


# --- abort (the fence) ---


def test_abort_fences_and_keeps_the_intent_open(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    assert ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=T0 + 10) == "PENDING"
    found = intent(cloud, entry)
    assert found is not None
    assert found["status"] == "ABORTED"
    # Open for the sweep, since the request began: a late PUT may still land.
    assert (found["openShard"], found["openSince"]) == (contract.open_shard("req-1"), str(T0))
    assert lease(cloud, entry) is not None  # the fence does not release the lease
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=T0 + 11)  # a retry: the same again
    assert intent(cloud, entry) == found


def test_abort_before_store_began_leaves_an_open_aborted_intent(cloud: Cloud) -> None:
    entry = upload()
    assert ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=T0) is None
    found = intent(cloud, entry)
    assert found is not None
    assert (found["status"], found["s3Key"], found["openSince"]) == (
        "ABORTED",
        entry.s3_key,
        str(T0),
    )
    # A Store that begins after the fence cannot: its intent is no longer PENDING.
    with pytest.raises(botocore.exceptions.ClientError):
        begin(cloud, entry, now=T0 + 1)
    assert lease(cloud, entry) is None


def test_abort_of_a_committed_request_reopens_it_for_the_sweep(cloud: Cloud) -> None:
    """Record's transaction landed but the task failed: the compensation fences it, and the
    intent is open again (and no longer expires) until the sweep accounts for it."""
    entry = upload()
    begin(cloud, entry, now=T0)
    commit(cloud, entry, now=T0 + 1)
    assert ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=T0 + 5) == "COMMITTED"
    found = intent(cloud, entry)
    assert found is not None
    assert (found["status"], found["openSince"]) == ("ABORTED", str(T0 + 5))
    assert "expiresAt" not in found
    [listed] = ledger.open_intents(cloud.dynamodb, LEDGER_TABLE, before=T0 + 6)
    assert (listed.upload.request_id, listed.status) == ("req-1", "ABORTED")


# --- release_lease ---


def test_release_lease_only_by_its_holder(cloud: Cloud) -> None:
    holder, other = upload("req-1"), upload("req-2")
    begin(cloud, holder, now=T0)
    assert ledger.release_lease(cloud.dynamodb, LEDGER_TABLE, other) is False
    assert lease(cloud, holder)["holder"] == "req-1"  # type: ignore[index]
    assert ledger.release_lease(cloud.dynamodb, LEDGER_TABLE, holder) is True
    assert lease(cloud, holder) is None
    assert ledger.release_lease(cloud.dynamodb, LEDGER_TABLE, holder) is False  # nothing left


# --- open_intents, fence_pending, close ---


def test_open_intents_returns_exactly_the_open_intents_opened_before(cloud: Cloud) -> None:
    def started(request_id: str, now: int) -> ledger.Upload:
        entry = upload(request_id, product_name=f"Product {request_id}")
        begin(cloud, entry, now=now)
        return entry

    pending = started("req-pending", T0)
    aborted = started("req-aborted", T0 + 10)
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, aborted, now=T0 + 20)
    committed = started("req-committed", T0 + 5)
    commit(cloud, committed, now=T0 + 6)
    closed = started("req-closed", T0 + 7)
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, closed, now=T0 + 8)
    ledger.close(cloud.dynamodb, LEDGER_TABLE, "req-closed", now=T0 + 9)
    started("req-just-before", T0 + 99)
    started("req-at-before", T0 + 100)  # not before: the bound is exclusive
    started("req-after", T0 + 500)
    # Requests enough to fall in several of the index's shards.
    many = [started(f"req-{n}", T0 + 50) for n in range(20)]
    assert len({contract.open_shard(entry.request_id) for entry in many}) > 1

    found = list(ledger.open_intents(cloud.dynamodb, LEDGER_TABLE, before=T0 + 100))

    assert sorted(i.upload.request_id for i in found) == sorted(
        ["req-pending", "req-aborted", "req-just-before", *(e.request_id for e in many)]
    )
    by_id = {i.upload.request_id: i for i in found}
    assert by_id["req-pending"] == ledger.Intent(
        upload=pending, status="PENDING", version_id=None, open_since=T0
    )
    assert by_id["req-aborted"].status == "ABORTED"
    assert by_id["req-aborted"].open_since == T0 + 10


def test_fence_pending_aborts_only_a_pending_intent(cloud: Cloud) -> None:
    pending = upload("req-1")
    begin(cloud, pending, now=T0)
    assert ledger.fence_pending(cloud.dynamodb, LEDGER_TABLE, "req-1") is True
    assert intent(cloud, pending)["status"] == "ABORTED"  # type: ignore[index]
    assert ledger.fence_pending(cloud.dynamodb, LEDGER_TABLE, "req-1") is False
    committed = upload("req-2", product_name="Another Product")
    begin(cloud, committed, now=T0)
    commit(cloud, committed, now=T0 + 1)
    assert ledger.fence_pending(cloud.dynamodb, LEDGER_TABLE, "req-2") is False
    assert intent(cloud, committed)["status"] == "COMMITTED"  # type: ignore[index]
    # A fenced request's commit can no longer land.
    with pytest.raises(botocore.exceptions.ClientError):
        commit(cloud, pending, now=T0 + 2)


def test_close_takes_the_intent_out_of_the_index_and_keeps_it(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    ledger.abort(cloud.dynamodb, LEDGER_TABLE, entry, now=T0 + 1)
    ledger.close(cloud.dynamodb, LEDGER_TABLE, "req-1", now=T0 + 700)
    found = intent(cloud, entry)
    assert found is not None
    assert (found["status"], found["expiresAt"]) == ("ABORTED", str(T0 + 700 + CLOSED_SECONDS))
    assert "openShard" not in found
    assert "openSince" not in found
    assert list(ledger.open_intents(cloud.dynamodb, LEDGER_TABLE, before=T0 + 10_000)) == []


def test_close_refuses_a_pending_or_missing_intent(cloud: Cloud) -> None:
    entry = upload()
    begin(cloud, entry, now=T0)
    for request_id in ("req-1", "req-missing"):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            ledger.close(cloud.dynamodb, LEDGER_TABLE, request_id, now=T0 + 700)
        assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert intent(cloud, entry)["openSince"] == str(T0)  # type: ignore[index]
    assert intent(cloud, upload("req-missing")) is None
