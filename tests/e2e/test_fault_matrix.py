"""The fault matrix: every AWS operation each workflow task calls, failing once with a throttling
error (the workflow's Retry must absorb it), failing persistently with a throttling error, and
failing persistently with a non-retryable error. Each cell checks the status and body, the fault
really fired, the S3 versions and DynamoDB items left behind, and the 29 s API Gateway budget.

A fault names its task (``record/dynamodb:TransactWriteItems``): several tasks call the same
operation. Operations (tasks/**): store's claim PutItem (with an Idempotency-Key), its ledger
transaction (intent + lease: TransactWriteItems), its PutObject and, on a retry,
ListObjectVersions/HeadObject/DeleteObject of its earlier attempts; record's one
TransactWriteItems (metadata item, intent commit, lease release, claim completion); compensate's
fence (UpdateItem on the ledger), its read of the metadata item (GetItem: did record's write
land?), ListObjectVersions, HeadObject and DeleteObject (by VersionId), the claim and lease
releases (DeleteItem). Compensate's UpdateItem/DeleteItem on the metadata item (undoing a record
write that landed) cannot be reached here: a local fault fails the call before it runs, so
record's write never lands; tests/unit/test_rollback.py covers them, and tests/e2e/test_races.py
a record write that lands late. Compensation operations are reached by combining them with a
persistent non-retryable record failure. A single throttle in compensation is absorbed by the
Compensate Retry (the first attempt raises TransientStorageError, unreported); only the last
attempt reports. The report step (a compensation that timed out) and the sweep have their own
tests (COVERED_ELSEWHERE). No task calls KMS: S3 encrypts server-side with the bucket key (the kms
rows prove it: their fault never fires).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.faults import TASK_OPERATIONS
from tasks.contract import names
from tasks.contract.errors import INTERNAL_ERROR_MESSAGE, ORPHAN_REPORTED_MESSAGE
from tests.oracle import contract_problems

from .conftest import make_upload

BUDGET_SECONDS = 29.0
ALWAYS = None  # every call fails

# Error codes: throttling (retryable) and non-retryable, per service.
S3_THROTTLE, S3_DENIED = "SlowDown", "AccessDenied"
DDB_THROTTLE, DDB_DENIED = "ProvisionedThroughputExceededException", "AccessDeniedException"


@dataclass(frozen=True)
class FaultSpec:
    task: str | None  # None: every task's calls
    service: str
    operation: str
    code: str
    count: int | None  # None: every call

    def add_to(self, faults: Any) -> Any:
        return faults.add(self.service, self.operation, self.code, count=self.count, task=self.task)


@dataclass(frozen=True)
class Cell:
    id: str
    fault: FaultSpec  # the fault under test
    # stored | replayed | nothing | orphan | unnamed-orphan | claim-kept | metadata-reported |
    # fence-reported | lease-reported
    outcome: str
    setup: tuple[FaultSpec, ...] = ()  # faults that steer the request to the operation
    keyed: bool = False  # send an Idempotency-Key
    replay: bool = False  # first store the same keyed body without faults (the key is held)
    never_called: bool = False  # the fault must not fire (the tasks do not call it)
    marks: tuple[Any, ...] = field(default=())


RECORD_FAILS = FaultSpec(names.RECORD, "dynamodb", "TransactWriteItems", DDB_DENIED, ALWAYS)
STORE_RETRIED = FaultSpec(names.STORE, "s3", "PutObject", S3_THROTTLE, 1)


def _three(task: str, service: str, operation: str, **kw: Any) -> list[Cell]:
    """transient-once / throttled-always / denied-always for one task's operation."""
    once, always = kw.pop("once_outcome", "stored"), kw.pop("always_outcome", "nothing")
    throttle, denied = (S3_THROTTLE, S3_DENIED) if service == "s3" else (DDB_THROTTLE, DDB_DENIED)
    prefix = f"{kw.pop('prefix', task)}:{operation}"
    return [
        Cell(
            f"{prefix}-{throttle}-once",
            FaultSpec(task, service, operation, throttle, 1),
            once,
            **kw,
        ),
        *(
            Cell(
                f"{prefix}-{code}-always",
                FaultSpec(task, service, operation, code, ALWAYS),
                always,
                **kw,
            )
            for code in (throttle, denied)
        ),
    ]


def _compensation(operation: str, service: str = "s3", **kw: Any) -> list[Cell]:
    """Compensate's ``operation`` failing, after record failed for good."""
    return _three(
        names.COMPENSATE, service, operation, setup=(RECORD_FAILS,), once_outcome="nothing", **kw
    )


CELLS: list[Cell] = [
    # Store: the ledger transaction, then the PUT. Record: its one transaction.
    *_three(names.STORE, "dynamodb", "TransactWriteItems", prefix="store-begin"),
    *_three(names.STORE, "s3", "PutObject"),
    *_three(names.RECORD, "dynamodb", "TransactWriteItems"),
    # Compensation after a failed record: the lookup and the delete by VersionId. Only versions
    # checked to be this request's are named (a failed listing or HEAD names none).
    *_compensation("ListObjectVersions", always_outcome="unnamed-orphan"),
    *_compensation("HeadObject", always_outcome="unnamed-orphan"),
    *_compensation("DeleteObject", always_outcome="orphan"),
    # Compensation reads the metadata item (record's write may have landed). Unreadable: the
    # versions are still deleted, the unknown item is reported.
    *_compensation("GetItem", "dynamodb", always_outcome="metadata-reported"),
    # The fence (the intent becomes ABORTED) and the lease release.
    *_compensation("UpdateItem", "dynamodb", always_outcome="fence-reported"),
    *_compensation("DeleteItem", "dynamodb", always_outcome="lease-reported"),
    # A retried Store looks for its earlier attempts' versions. If that fails, Store fails and the
    # compensation removes every version of the request; if compensation's lookup fails too, the
    # unchecked version is reported by key.
    Cell(
        "store-retry:ListObjectVersions-SlowDown-once",
        FaultSpec(names.STORE, "s3", "ListObjectVersions", S3_THROTTLE, 1),
        "nothing",
        setup=(STORE_RETRIED,),
    ),
    Cell(
        "store-retry:HeadObject-AccessDenied-always",
        FaultSpec(names.STORE, "s3", "HeadObject", S3_DENIED, ALWAYS),
        "nothing",
        setup=(STORE_RETRIED,),
    ),
    Cell(
        "store-retry-and-compensate:HeadObject-AccessDenied-always",
        FaultSpec(None, "s3", "HeadObject", S3_DENIED, ALWAYS),
        "unnamed-orphan",
        setup=(STORE_RETRIED,),
    ),
    # KMS: the tasks never call it (S3 uses the bucket key server-side).
    *(
        Cell(
            f"kms:{operation}-not-called",
            FaultSpec(None, "kms", operation, "KMSInternalException", ALWAYS),
            "stored",
            never_called=True,
        )
        for operation in ("GenerateDataKey", "Encrypt")
    ),
    # Idempotency-Key operations: store's claim (PutItem; on a held key its failed condition
    # returns the claim, so the GetItem fallback is never reached locally), record's
    # transaction with the claim's completion, compensate's releases (DeleteItem: the claim and
    # the lease).
    *_three(names.STORE, "dynamodb", "PutItem", prefix="claim", keyed=True),
    *_three(
        names.STORE,
        "dynamodb",
        "PutItem",
        prefix="claim-held",
        keyed=True,
        replay=True,
        once_outcome="replayed",
    ),
    *_three(names.RECORD, "dynamodb", "TransactWriteItems", prefix="keyed-record", keyed=True),
    *_compensation(
        "DeleteItem", "dynamodb", prefix="release", keyed=True, always_outcome="claim-kept"
    ),
]


# Operations the tasks call that the matrix cannot reach, and where they are covered.
UNREACHABLE_LOCALLY = {
    "dynamodb:GetItem": "claims: fallback read when a failed condition does not return the item "
    "(ReturnValuesOnConditionCheckFailure); moto returns it",
}
COVERED_ELSEWHERE = {
    "dynamodb:Query": "the sweep's read of open intents: tests/e2e/test_sweep.py",
    **{
        f"s3:{operation}": "upload sessions and their commits: tests/e2e/test_commits.py"
        for operation in (
            "CreateMultipartUpload",
            "ListParts",
            "CompleteMultipartUpload",
            "GetObject",
            "AbortMultipartUpload",
        )
    },
}


REPORT_LABELS = {
    "claim-kept": "CLAIM",
    "metadata-reported": "METADATA",
    "fence-reported": "FENCE",
    "lease-reported": "LEASE",
}


def _reports(emulator, request_id: str, label: str) -> list[str]:
    """The compensate log's ``LABEL: ...`` ERROR lines about this request."""
    events = emulator.client("logs").filter_log_events(
        logGroupName=emulator.function("compensate").log_group, filterPattern=f'"{request_id}"'
    )["events"]
    return [e["message"] for e in events if f'"{label}: ' in e["message"]]


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

    fault = cell.fault.add_to(emulator.faults)
    for spec in cell.setup:
        spec.add_to(emulator.faults)
    response, elapsed = _post(client, upload.body, key)
    emulator.faults.clear()

    assert elapsed < BUDGET_SECONDS, f"{elapsed:.1f} s is over API Gateway's 29 s"
    assert contract_problems(response, replay=cell.replay) == [], response.text
    if cell.never_called:
        assert fault.injected == 0
    elif cell.fault.count is not None:
        assert fault.injected == cell.fault.count, "the fault under test never fired"
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
        elif cell.outcome in ("orphan", "unnamed-orphan"):
            assert body["error"]["message"] == ORPHAN_REPORTED_MESSAGE
            [orphan] = versions
            reports = _reports(emulator, body["requestId"], "ORPHAN")
            assert any(upload.key in r for r in reports), reports
            # Only a version checked to be this request's is named.
            named = any(orphan["VersionId"] in r for r in reports)
            assert named == (cell.outcome == "orphan"), reports
        else:
            assert body["error"]["message"] == ORPHAN_REPORTED_MESSAGE
            assert versions == []  # the versions were deleted; the rest is reported
            label = REPORT_LABELS[cell.outcome]
            assert _reports(emulator, body["requestId"], label), f"no {label} report"
            if cell.outcome == "claim-kept":  # the lease release failed too
                assert _reports(emulator, body["requestId"], "LEASE"), "no LEASE report"

    if cell.keyed and cell.outcome == "nothing" and not cell.replay:
        # Nothing was stored and the claim is free: the client may retry with the same key.
        retry, _ = _post(client, upload.body, key)
        assert retry.status_code == 200, retry.text
        assert [v["VersionId"] for v in client.versions(upload.key)] == [retry.json()["versionId"]]


def test_matrix_covers_every_operation_the_tasks_call():
    """A new AWS call in the tasks must get its rows here (TASK_OPERATIONS follows the code of
    tasks/: tests/unit/test_fault_targets.py)."""
    covered = {f"{c.fault.service}:{c.fault.operation}" for c in CELLS if not c.never_called}
    covered |= set(UNREACHABLE_LOCALLY) | set(COVERED_ELSEWHERE)
    missing = set(TASK_OPERATIONS) - covered
    assert not missing, f"operations without a matrix row: {sorted(missing)}"
