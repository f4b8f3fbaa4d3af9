"""The fault matrix: every AWS operation the tasks call, failing once with a throttling error
(the workflow's Retry must absorb it), failing persistently with a throttling error, and failing
persistently with a non-retryable error. Each cell checks the status and body, the fault really
fired, the S3 versions and DynamoDB items left behind, and the 29 s API Gateway budget.

Operations (tasks/**): store PutObject (+ on a retry ListObjectVersions/HeadObject/DeleteObject
of its earlier attempts), record UpdateItem (no Idempotency-Key) or TransactWriteItems (with one:
item + claim completion), compensate GetItem on the metadata table (did record's write land?),
ListObjectVersions, HeadObject, DeleteObject (by VersionId) and, with an Idempotency-Key,
DeleteItem (release); store's claim PutItem (GetItem only as a fallback moto never needs: see
UNREACHABLE_LOCALLY). Compensate's UpdateItem/DeleteItem on the metadata item (undoing a record
write that landed before record failed) cannot be reached here: a local fault fails the call
before it runs, so record's write never lands; tests/unit/test_rollback.py covers them. No task
calls KMS: S3 encrypts server-side with the bucket key (the kms rows prove it: their fault never
fires). Compensation operations are reached by combining them with a persistent non-retryable
record failure. A single throttle in compensation is absorbed by the Compensate Retry (the first
attempt raises TransientStorageError, unreported); only the last attempt reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.faults import TASK_OPERATIONS
from tasks.contract.errors import INTERNAL_ERROR_MESSAGE, ORPHAN_REPORTED_MESSAGE
from tests.oracle import contract_problems

from .conftest import make_upload

BUDGET_SECONDS = 29.0
ALWAYS = None  # every call fails

# Error codes: throttling (retryable) and non-retryable, per service.
S3_THROTTLE, S3_DENIED = "SlowDown", "AccessDenied"
DDB_THROTTLE, DDB_DENIED = "ProvisionedThroughputExceededException", "AccessDeniedException"
FaultSpec = tuple[str, str, str, int | None]  # service, operation, error code, count


@dataclass(frozen=True)
class Cell:
    id: str
    fault: FaultSpec  # the fault under test
    outcome: str  # stored | replayed | nothing | orphan | claim-kept | metadata-reported
    setup: tuple[FaultSpec, ...] = ()  # faults that steer the request to the operation
    keyed: bool = False  # send an Idempotency-Key
    replay: bool = False  # first store the same keyed body without faults (the key is held)
    never_called: bool = False  # the fault must not fire (the tasks do not call it)
    marks: tuple[Any, ...] = field(default=())


RECORD_FAILS = ("dynamodb", "UpdateItem", DDB_DENIED, ALWAYS)
RECORD_TRANSACTION_FAILS = ("dynamodb", "TransactWriteItems", DDB_DENIED, ALWAYS)
STORE_RETRIED = ("s3", "PutObject", S3_THROTTLE, 1)


def _three(service: str, operation: str, throttle: str, denied: str, **kw: Any) -> list[Cell]:
    """transient-once / throttled-always / denied-always for one operation."""
    once, always = kw.pop("once_outcome", "stored"), kw.pop("always_outcome", "nothing")
    once_marks = kw.pop("once_marks", ())
    prefix = kw.pop("prefix", f"{service}:{operation}")
    return [
        Cell(
            f"{prefix}-{throttle}-once",
            (service, operation, throttle, 1),
            once,
            marks=once_marks,
            **kw,
        ),
        Cell(f"{prefix}-{throttle}-always", (service, operation, throttle, ALWAYS), always, **kw),
        Cell(f"{prefix}-{denied}-always", (service, operation, denied, ALWAYS), always, **kw),
    ]


CELLS: list[Cell] = [
    # Store, record (no Idempotency-Key).
    *_three("s3", "PutObject", S3_THROTTLE, S3_DENIED),
    *_three("dynamodb", "UpdateItem", DDB_THROTTLE, DDB_DENIED, prefix="record:UpdateItem"),
    # Compensation after a failed record: the lookup and the delete by VersionId.
    *[
        cell
        for operation in ("ListObjectVersions", "HeadObject", "DeleteObject")
        for cell in _three(
            "s3",
            operation,
            S3_THROTTLE,
            S3_DENIED,
            prefix=f"compensate:{operation}",
            setup=(RECORD_FAILS,),
            once_outcome="nothing",
            always_outcome="orphan",
        )
    ],
    # Compensation first reads the metadata item (record's write may have landed). Unreadable:
    # the versions are still deleted, the unknown item is reported.
    *_three(
        "dynamodb",
        "GetItem",
        DDB_THROTTLE,
        DDB_DENIED,
        prefix="compensate:GetItem",
        setup=(RECORD_FAILS,),
        once_outcome="nothing",
        always_outcome="metadata-reported",
    ),
    # A retried Store looks for its earlier attempts' versions; if that lookup fails, the
    # workflow's compensation still removes what the retry stored.
    Cell(
        "store-retry:ListObjectVersions-SlowDown-once",
        ("s3", "ListObjectVersions", S3_THROTTLE, 1),
        "nothing",
        setup=(STORE_RETRIED,),
    ),
    Cell(
        "store-retry:HeadObject-AccessDenied-always",
        ("s3", "HeadObject", S3_DENIED, ALWAYS),
        "orphan",
        setup=(STORE_RETRIED,),
    ),
    # KMS: the tasks never call it (S3 uses the bucket key server-side).
    Cell(
        "kms:GenerateDataKey-not-called",
        ("kms", "GenerateDataKey", "KMSInternalException", ALWAYS),
        "stored",
        never_called=True,
    ),
    Cell(
        "kms:Encrypt-not-called",
        ("kms", "Encrypt", "KMSInternalException", ALWAYS),
        "stored",
        never_called=True,
    ),
    # Idempotency-Key operations: store's claim (PutItem; on a held key its failed condition
    # returns the claim, so the GetItem fallback is never reached locally), record's
    # transaction, compensate's release (DeleteItem).
    *_three("dynamodb", "PutItem", DDB_THROTTLE, DDB_DENIED, prefix="claim:PutItem", keyed=True),
    *_three(
        "dynamodb",
        "PutItem",
        DDB_THROTTLE,
        DDB_DENIED,
        prefix="claim-held:PutItem",
        keyed=True,
        replay=True,
        once_outcome="replayed",
    ),
    *_three(
        "dynamodb",
        "TransactWriteItems",
        DDB_THROTTLE,
        DDB_DENIED,
        prefix="record:TransactWriteItems",
        keyed=True,
    ),
    *_three(
        "dynamodb",
        "DeleteItem",
        DDB_THROTTLE,
        DDB_DENIED,
        prefix="release:DeleteItem",
        keyed=True,
        setup=(RECORD_TRANSACTION_FAILS,),
        once_outcome="nothing",
        always_outcome="claim-kept",
    ),
]


# Operations the tasks call that local mode cannot reach, and why.
UNREACHABLE_LOCALLY = {
    "dynamodb:GetItem": "claims: fallback read when a failed condition does not return the item "
    "(ReturnValuesOnConditionCheckFailure); moto returns it",
}


def _compensate_log(emulator, request_id: str) -> list[str]:
    events = emulator.client("logs").filter_log_events(
        logGroupName=emulator.function("compensate").log_group, filterPattern=f'"{request_id}"'
    )["events"]
    return [e["message"] for e in events]


def _post(client, body: dict[str, Any], key: str | None) -> tuple[Any, float]:
    headers = {"Idempotency-Key": key} if key else {}
    started = time.monotonic()
    response = client.post(body, headers=headers)
    return response, time.monotonic() - started


@pytest.mark.parametrize("cell", [pytest.param(c, id=c.id, marks=c.marks) for c in CELLS])
def test_fault_matrix(cell: Cell, client, emulator):
    upload = make_upload(data=f"fault matrix {cell.id}".encode())
    key = f"matrix-{upload.body['productId']}" if cell.keyed else None
    first_version = None
    if cell.replay:
        first, _ = _post(client, upload.body, key)
        assert first.status_code == 200, first.text
        first_version = first.json()["versionId"]
    [item_before] = client.items(upload.body["productId"]) if cell.replay else [None]

    fault = emulator.faults.add(cell.fault[0], cell.fault[1], cell.fault[2], count=cell.fault[3])
    for service, operation, code, count in cell.setup:
        emulator.faults.add(service, operation, code, count=count)
    response, elapsed = _post(client, upload.body, key)
    emulator.faults.clear()

    assert elapsed < BUDGET_SECONDS, f"{elapsed:.1f} s is over API Gateway's 29 s"
    assert contract_problems(response, replay=cell.replay) == [], response.text
    if cell.never_called:
        assert fault.injected == 0
    elif cell.fault[3] is not None:
        assert fault.injected == cell.fault[3], "the fault under test never fired"
    else:
        assert fault.injected >= 1, "the fault under test never fired"

    versions = client.versions(upload.key)
    items = client.items(upload.body["productId"])
    body = response.json()
    if cell.outcome == "stored":
        assert response.status_code == 200, response.text
        assert [v["VersionId"] for v in versions] == [body["versionId"]]
        [item] = items
        assert (item["versionId"], item["sha256"]) == (body["versionId"], upload.sha256)
    elif cell.outcome == "replayed":
        assert response.status_code == 200, response.text
        assert body["versionId"] == first_version
        assert [v["VersionId"] for v in versions] == [first_version]
        assert items == [item_before]
    else:
        assert response.status_code == 500, response.text
        assert body["error"]["code"] == "InternalError"
        if cell.replay:  # the first request's upload is untouched
            assert [v["VersionId"] for v in versions] == [first_version]
            assert items == [item_before]
        else:
            assert items == []
        if cell.outcome == "nothing":
            assert body["error"]["message"] == INTERNAL_ERROR_MESSAGE
            if not cell.replay:
                assert versions == []
        elif cell.outcome == "orphan":
            assert body["error"]["message"] == ORPHAN_REPORTED_MESSAGE
            [orphan] = versions
            reports = [m for m in _compensate_log(emulator, body["requestId"]) if "ORPHAN" in m]
            assert reports, "the orphan was not reported in the compensate log group"
            assert any(upload.key in r for r in reports), reports
            if cell.fault[1] != "ListObjectVersions":  # a failed listing reports the key only
                # A failed HeadObject or DeleteObject names the versions not yet ruled out.
                assert any(orphan["VersionId"] in r for r in reports), reports
        elif cell.outcome == "claim-kept":
            assert body["error"]["message"] == ORPHAN_REPORTED_MESSAGE
            assert versions == []  # the versions were deleted; only the claim remains
            reports = [m for m in _compensate_log(emulator, body["requestId"]) if "CLAIM" in m]
            assert reports, "the unreleased claim was not reported in the compensate log group"
        elif cell.outcome == "metadata-reported":
            assert body["error"]["message"] == ORPHAN_REPORTED_MESSAGE
            assert versions == []  # the versions were deleted; the unread item is reported
            reports = [m for m in _compensate_log(emulator, body["requestId"]) if "METADATA" in m]
            assert reports, "the unknown metadata item was not reported in the compensate log group"
        else:  # pragma: no cover
            raise AssertionError(cell.outcome)

    if cell.keyed and cell.outcome == "nothing" and not cell.replay:
        # Nothing was stored and the claim is free: the client may retry with the same key.
        retry, _ = _post(client, upload.body, key)
        assert retry.status_code == 200, retry.text
        assert [v["VersionId"] for v in client.versions(upload.key)] == [retry.json()["versionId"]]


def test_matrix_covers_every_operation_the_tasks_call():
    """A new AWS call in the tasks must get its rows here (TASK_OPERATIONS follows the code of
    tasks/: tests/unit/test_fault_targets.py)."""
    covered = {f"{c.fault[0]}:{c.fault[1]}" for c in CELLS if not c.never_called}
    covered |= set(UNREACHABLE_LOCALLY)
    missing = set(TASK_OPERATIONS) - covered
    assert not missing, f"operations without a matrix row: {sorted(missing)}"
