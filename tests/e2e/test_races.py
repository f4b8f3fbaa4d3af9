"""Races, timeouts and failed compensations through local mode: the promise holds (200 = file and
metadata stored; any other status = nothing new remains; an orphan is never silent).

- Concurrent uploads of one item: the item ends on S3's current version of its key, with that
  version's size and sha256; a loser is refused with 409 UploadInProgress and stores nothing.
- A compensation that cannot delete reports exactly the versions it checked to be its request's.
- A compensation that times out is reported by the workflow's ReportOrphan step.
- A PUT or a metadata write still in flight when its task timed out lands later, as on AWS: the
  write is fenced (it takes no effect), the file is found by the sweep.

The timeout tests pin the emulator's load reading to an idle machine, so its timeouts are the
template's (local.saturation); their delays are well past those timeouts either way.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from local.emulator import Emulator
from tasks.contract import ledger, names
from tasks.contract.errors import (
    INTERNAL_ERROR_MESSAGE,
    ORPHAN_REPORTED_MESSAGE,
    UPLOAD_IN_PROGRESS_MESSAGE,
)
from tasks.contract.timing import TIMINGS

from .conftest import Client, make_upload

T = TypeVar("T")
PARALLEL = 8


def _all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` on their own threads, released together."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _report_lines(
    emulator: Emulator, task: str, request_id: str, label: str
) -> list[dict[str, Any]]:
    """The task's ERROR lines ``LABEL: ...`` about one request, parsed."""
    events = emulator.client("logs").filter_log_events(
        logGroupName=emulator.function(task).log_group, filterPattern=f'"{request_id}"'
    )["events"]
    lines = [json.loads(e["message"]) for e in events if e["message"].startswith("{")]
    return [line for line in lines if str(line.get("message", "")).startswith(f"{label}: ")]


def _metric_lines(emulator: Emulator, task: str, metric: str) -> int:
    """How many of the task's log lines emit ``metric`` (CloudWatch embedded metric format)."""
    events = emulator.client("logs").filter_log_events(
        logGroupName=emulator.function(task).log_group, filterPattern=f'"{metric}"'
    )["events"]
    return sum(1 for e in events if '"_aws"' in e["message"])


def _intent(emulator: Emulator, request_id: str) -> dict[str, Any]:
    item = emulator.client("dynamodb").get_item(
        TableName=emulator.ledger_table_name,
        Key={ledger.PARTITION_KEY: {"S": ledger.intent_key(request_id)}},
        ConsistentRead=True,
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the late call never landed"
        time.sleep(0.1)


@pytest.fixture
def idle_machine(emulator: Emulator) -> Iterator[None]:
    """Timeouts as the template has them: the emulator reads the machine as idle."""
    load = emulator.saturation.load
    emulator.saturation.load = lambda: 0.0
    try:
        yield
    finally:
        emulator.saturation.load = load


def _assert_item_on_current_version(client: Client, key: str, product_id: str) -> None:
    [current] = [v for v in client.versions(key) if v["IsLatest"]]
    data = client.object_bytes(key, current["VersionId"])
    [item] = client.items(product_id)
    assert item["versionId"] == current["VersionId"]
    assert (item["size"], item["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


# -- 1. concurrent uploads of one item ----------------------------------------------------------
@pytest.mark.parametrize("round_", range(3))
def test_concurrent_uploads_of_one_item_leave_it_on_the_current_version(client, round_):
    first = make_upload(data=f"round {round_} upload 0".encode(), fileName="same.txt")
    uploads = [first] + [
        make_upload(
            data=f"round {round_} upload {n}".encode(),
            productId=first.body["productId"],
            fileName="same.txt",
        )
        for n in range(1, PARALLEL)
    ]
    responses = _all_at_once([functools.partial(client.post, u.body) for u in uploads])

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, [r.text for r in responses]
    assert 200 in statuses
    for response in responses:
        if response.status_code == 409:
            error = response.json()["error"]
            assert (error["code"], error["message"]) == (
                "UploadInProgress",
                UPLOAD_IN_PROGRESS_MESSAGE,
            )
    stored = {
        r.json()["versionId"]: u
        for r, u in zip(responses, uploads, strict=True)
        if r.status_code == 200
    }
    # Every 200's version exists, with its bytes; a 409 stored nothing.
    assert {v["VersionId"] for v in client.versions(first.key)} == set(stored)
    for version_id, upload in stored.items():
        assert hashlib.sha256(client.object_bytes(first.key, version_id)).hexdigest() == (
            upload.sha256
        )
    _assert_item_on_current_version(client, first.key, first.body["productId"])


def test_uploads_of_different_items_run_in_parallel(client):
    uploads = [make_upload(data=f"item {n}".encode()) for n in range(PARALLEL)]
    responses = _all_at_once([functools.partial(client.post, u.body) for u in uploads])
    assert [r.status_code for r in responses] == [200] * PARALLEL, [r.text for r in responses]
    for upload in uploads:
        _assert_item_on_current_version(client, upload.key, upload.body["productId"])


def test_a_refused_upload_keeps_its_idempotency_key_for_a_retry(client):
    first = make_upload(data=b"first", fileName="keyed.txt")
    racers = [
        make_upload(
            data=f"racer {n}".encode(), productId=first.body["productId"], fileName="keyed.txt"
        )
        for n in range(PARALLEL)
    ]
    keys = [f"race-{first.body['productId']}-{n}" for n in range(PARALLEL)]
    responses = _all_at_once(
        [
            functools.partial(client.post, u.body, headers={"Idempotency-Key": k})
            for u, k in zip(racers, keys, strict=True)
        ]
    )
    refused = [
        (u, k) for r, u, k in zip(responses, racers, keys, strict=True) if r.status_code == 409
    ]
    assert refused, "no upload lost the race"
    upload, key = refused[0]
    retry = client.post(upload.body, headers={"Idempotency-Key": key})
    assert retry.status_code == 200, retry.text  # the key was given back, not left in progress
    _assert_item_on_current_version(client, upload.key, upload.body["productId"])


# -- 2. the report names exactly this request's versions -----------------------------------------
def test_an_orphan_report_names_only_the_versions_of_its_request(client, emulator):
    a = make_upload(data=b"A: live", fileName="shared.txt")
    ok = client.post(a.body, headers={"Idempotency-Key": f"a-{a.body['productId']}"})
    assert ok.status_code == 200, ok.text

    emulator.faults.add("dynamodb", "TransactWriteItems", "AccessDeniedException", task="record")
    emulator.faults.add("s3", "DeleteObject", "AccessDenied", task="compensate")
    b = make_upload(data=b"B: fails", productId=a.body["productId"], fileName="shared.txt")
    failed = client.post(b.body)
    assert failed.status_code == 500, failed.text
    assert failed.json()["error"]["message"] == ORPHAN_REPORTED_MESSAGE

    versions = {v["VersionId"] for v in client.versions(a.key)}
    [b_version] = versions - {ok.json()["versionId"]}
    [report] = _report_lines(emulator, names.COMPENSATE, failed.json()["requestId"], "ORPHAN")
    assert report["orphan"]["versionIds"] == [b_version]  # not A's live version
    assert report["orphan"]["s3Key"] == a.key
    [item] = client.items(a.body["productId"])
    assert item["versionId"] == ok.json()["versionId"]


# -- 3. a compensation that times out is reported -------------------------------------------------
def test_a_compensation_that_times_out_is_reported_by_the_workflow(client, emulator, idle_machine):
    compensate_timeout = TIMINGS[names.COMPENSATE].lambda_timeout_seconds
    emulator.faults.add("dynamodb", "TransactWriteItems", "AccessDeniedException", task="record")
    delay = emulator.faults.delay(
        "s3", "ListObjectVersions", compensate_timeout + 1.5, task=names.COMPENSATE
    )
    metrics_before = _metric_lines(emulator, names.REPORT, names.COMPENSATION_FAILURES)
    upload = make_upload(data=b"compensation times out")
    started = time.monotonic()
    response = client.post(upload.body)

    assert response.status_code == 500, response.text
    assert response.json()["error"]["message"] == ORPHAN_REPORTED_MESSAGE
    assert delay.injected >= 1
    request_id = response.json()["requestId"]
    # Its listing returns after the timeout, but Lambda stopped the sandbox: nothing is deleted.
    time.sleep(max(0.0, started + delay.seconds + 1.0 - time.monotonic()))
    [version] = client.versions(upload.key)
    [report] = _report_lines(emulator, names.REPORT, request_id, "ORPHAN")
    assert report["orphan"]["versionIds"] == [version["VersionId"]]
    assert report["orphan"]["s3Key"] == upload.key
    assert report["orphan"]["metadataItemWritten"] is False
    assert report["compensationError"] in ("Sandbox.Timedout", "States.Timeout")
    assert _metric_lines(emulator, names.REPORT, names.COMPENSATION_FAILURES) == metrics_before + 1
    assert _intent(emulator, request_id)[ledger.STATUS] == ledger.ABORTED  # fenced, left open
    assert client.items(upload.body["productId"]) == []


# -- 4. calls that land after their task timed out ------------------------------------------------
def test_a_metadata_write_landing_after_compensation_takes_no_effect(
    client, emulator, idle_machine
):
    record_timeout = TIMINGS[names.RECORD].lambda_timeout_seconds
    late = record_timeout + 3.0  # lands after Compensate fenced the request
    delay = emulator.faults.delay("dynamodb", "TransactWriteItems", late, task=names.RECORD)
    upload = make_upload(data=b"record times out")
    started = time.monotonic()
    response = client.post(upload.body)

    assert response.status_code == 500, response.text
    assert response.json()["error"]["message"] == INTERNAL_ERROR_MESSAGE
    request_id = response.json()["requestId"]
    assert client.versions(upload.key) == []
    # The write was sent before the timeout and is still in flight; let it land.
    assert time.monotonic() - started < late, "the write landed before the response"
    _wait_for(lambda: delay.injected >= 1 and time.monotonic() - started > late + 1.0, late + 5)
    assert client.items(upload.body["productId"]) == []  # fenced: the late write was refused
    assert _intent(emulator, request_id)[ledger.STATUS] == ledger.ABORTED


def test_a_file_landing_after_compensation_is_found_by_the_sweep(client, emulator, idle_machine):
    store_timeout = TIMINGS[names.STORE].lambda_timeout_seconds
    late = store_timeout + 1.5
    emulator.faults.delay("s3", "PutObject", late, task=names.STORE)
    upload = make_upload(data=b"store times out")
    response = client.post(upload.body)
    assert response.status_code == 500, response.text
    request_id = response.json()["requestId"]
    emulator.faults.clear()

    _wait_for(lambda: len(client.versions(upload.key)) == 1, late + 5)  # the late landing
    [orphan] = client.versions(upload.key)
    intent = _intent(emulator, request_id)
    assert (intent[ledger.STATUS], ledger.OPEN_SHARD in intent) == (ledger.ABORTED, True)
    # A write of the request may still have been in flight: its lease is kept until it expires,
    # so no other upload of the item can land in between.
    again = client.post(make_upload(data=b"next", productId=upload.body["productId"]).body)
    assert again.status_code == 409, again.text

    young = emulator.sweeper.run_once(grace_seconds=3600, deletes=True)
    assert client.versions(upload.key) == [orphan]  # younger than the grace period: untouched
    assert young["orphans"] == 0

    time.sleep(1.5)
    swept = emulator.sweeper.run_once(grace_seconds=1, deletes=True)
    assert swept["orphans"] >= 1
    assert swept["deleted"] >= 1
    assert client.versions(upload.key) == []
    [report] = _report_lines(emulator, names.SWEEP, request_id, "ORPHAN")
    assert report["orphan"]["versionIds"] == [orphan["VersionId"]]
    assert report["deleted"] is True
    assert ledger.OPEN_SHARD not in _intent(emulator, request_id)  # accounted for: closed
