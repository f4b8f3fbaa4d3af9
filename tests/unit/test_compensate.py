"""The compensate task: deletes exactly this request's versions, by VersionId; reports orphans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from tasks import compensate
from tasks.contract.errors import (
    CompensationFailed,
    InvalidTaskInput,
    TransientStorageError,
    UploadInProgress,
)
from tasks.contract.timing import TASK_RETRY
from tasks.core import aws
from tasks.core.versions import parse_started_at

from .support import (
    BUCKET,
    LEDGER_TABLE,
    REGION,
    Cloud,
    begin_upload,
    metric_values,
    put,
)

KEY = "uploads/PROD-001/test-file.txt"


def event(request_id: str = "req-1", key: str = KEY, **extra: Any) -> dict[str, Any]:
    """A Compensate event as the state machine builds it (startedAt: None unless given)."""
    return {
        "requestId": request_id,
        "productId": "PROD-001",
        "productName": "Test Product",
        "s3Key": key,
        "startedAt": None,
        **extra,
    }


def started_at(delta: timedelta = timedelta(0)) -> str:
    moment = datetime.now(UTC) + delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def versions(cloud: Cloud, key: str = KEY) -> tuple[list[str], list[str]]:
    listing = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    return (
        [v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key],
        [m["VersionId"] for m in listing.get("DeleteMarkers", [])],
    )


def test_deletes_only_its_own_versions_and_keeps_the_previous_one_current(
    cloud: Cloud, capsys
) -> None:
    previous = put(cloud, b"previous upload", "req-old", complete=True)
    start = started_at(timedelta(seconds=-1))
    own_first = put(cloud, b"this request, first attempt", "req-1")  # e.g. a retried PUT
    own_second = put(cloud, b"this request, second attempt", "req-1")
    sibling = put(cloud, b"other key, same prefix", "req-1", file_name="test-file.txt.bak")
    capsys.readouterr()

    result = compensate.run(event(startedAt=start), env=cloud.env)

    assert result == {"deletedVersionIds": [own_second, own_first]}
    assert versions(cloud) == ([previous], [])  # no delete marker
    current = cloud.s3.get_object(Bucket=BUCKET, Key=KEY)
    assert current["VersionId"] == previous
    assert current["Body"].read() == b"previous upload"
    assert current["Metadata"]["request-id"] == "req-old"
    assert versions(cloud, KEY + ".bak") == ([sibling], [])
    assert metric_values(capsys.readouterr().out) == [("Compensations", {"service": "upload"}, 1.0)]


def test_nothing_to_delete_when_store_never_wrote(cloud: Cloud) -> None:
    previous = put(cloud, b"previous upload", "req-old", complete=True)
    result = compensate.run(event(startedAt=started_at()), env=cloud.env)
    assert result == {"deletedVersionIds": []}
    assert versions(cloud) == ([previous], [])


def test_versions_older_than_start_minus_a_minute_are_not_examined(cloud: Cloud) -> None:
    own = put(cloud, b"data", "req-1")
    late_start = started_at(timedelta(minutes=2))  # its version predates start - 60 s
    result = compensate.run(event(startedAt=late_start), env=cloud.env)
    assert result == {"deletedVersionIds": []}
    assert versions(cloud) == ([own], [])
    within_skew = started_at(timedelta(seconds=50))
    result = compensate.run(event(startedAt=within_skew), env=cloud.env)
    assert result == {"deletedVersionIds": [own]}


def test_missing_or_unreadable_start_time_examines_every_version(cloud: Cloud) -> None:
    previous = put(cloud, b"previous", "req-old", complete=True)
    own = put(cloud, b"data", "req-1")
    result = compensate.run(event(startedAt="?"), env=cloud.env)
    assert result == {"deletedVersionIds": [own]}
    assert versions(cloud) == ([previous], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T22:48:54.123Z", datetime(2026, 11, 25, 22, 48, 54, 123000, tzinfo=UTC)),
        ("2026-11-25T22:48:54Z", datetime(2026, 11, 25, 22, 48, 54, tzinfo=UTC)),
        (
            "2026-11-25T22:48:54.123456789Z",
            datetime(2026, 11, 25, 22, 48, 54, 123456, tzinfo=UTC),
        ),
        ("2026-11-25T23:48:54.5+01:00", datetime(2026, 11, 25, 22, 48, 54, 500000, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        ("2026-13-45T22:48:54Z", None),
    ],
)
def test_start_time_parsing(text: str | None, expected: datetime | None) -> None:
    assert parse_started_at(text) == expected


@pytest.mark.parametrize("key", ["other/PROD-001/x", "uploads/../x", "uploads/P/a/b", "uploads/"])
def test_refuses_keys_outside_the_upload_rules(cloud: Cloud, key: str) -> None:
    with pytest.raises(InvalidTaskInput):
        compensate.run(event(key=key), env=cloud.env)


def _stubbed_s3() -> Any:
    return boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def test_failure_to_delete_logs_the_orphan_counts_it_and_raises(logs, capsys) -> None:
    s3 = _stubbed_s3()
    now = datetime.now(UTC)
    with Stubber(s3) as stubber:
        stubber.add_response(
            "list_object_versions",
            {"Versions": [{"Key": KEY, "VersionId": "v-orphan", "LastModified": now}]},
            {"Bucket": BUCKET, "Prefix": KEY},
        )
        stubber.add_response(
            "head_object",
            {"Metadata": {"request-id": "req-1"}},
            {"Bucket": BUCKET, "Key": KEY, "VersionId": "v-orphan"},
        )
        stubber.add_client_error(
            "delete_object",
            service_error_code="AccessDenied",
            service_message="Access Denied by SDK",
            http_status_code=403,
            expected_params={"Bucket": BUCKET, "Key": KEY, "VersionId": "v-orphan"},
        )
        with pytest.raises(CompensationFailed) as caught:
            compensate.compensate("req-1", KEY, started_at(), s3=s3, bucket=BUCKET, env={})
            # (AccessDenied is permanent: reported on the first attempt already)
    assert str(caught.value) == compensate.FAILURE_MESSAGE
    assert "Access Denied by SDK" not in str(caught.value)
    errors = [line for line in logs() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["orphan"] == {
        "bucket": BUCKET,
        "s3Key": KEY,
        "versionIds": ["v-orphan"],
        "uncheckedVersions": 0,  # the one candidate was checked
        "requestId": "req-1",
    }
    assert errors[0]["deletedVersionIds"] == []
    assert errors[0]["errorCode"] == "AccessDenied"
    assert metric_values(capsys.readouterr().out) == [
        ("CompensationFailures", {"service": "upload"}, 1.0)
    ]


def test_failure_to_list_reports_the_key_with_unknown_versions(logs, capsys) -> None:
    s3 = _stubbed_s3()
    with Stubber(s3) as stubber:
        stubber.add_client_error(
            "list_object_versions", service_error_code="SlowDown", http_status_code=503
        )
        with pytest.raises(CompensationFailed):
            compensate.compensate(
                "req-1", KEY, None, s3=s3, bucket=BUCKET, env={}, attempt=TASK_RETRY.max_attempts
            )
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["orphan"]["s3Key"] == KEY
    # Nothing was checked to be this request's, and how many versions there are is unknown.
    assert error["orphan"]["versionIds"] is None
    assert error["orphan"]["uncheckedVersions"] is None
    assert [name for name, _, _ in metric_values(capsys.readouterr().out)] == [
        "CompensationFailures"
    ]


def test_never_sends_a_plain_delete_object(cloud: Cloud) -> None:
    put(cloud, b"data", "req-1")
    calls: list[dict[str, Any]] = []

    def record_call(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    client = aws.client("s3", cloud.env)
    client.meta.events.register("provide-client-params.s3.DeleteObject", record_call)
    try:
        compensate.run(event(), env=cloud.env)
    finally:
        client.meta.events.unregister("provide-client-params.s3.DeleteObject", record_call)
    assert len(calls) == 1
    assert set(calls[0]) == {"Bucket", "Key", "VersionId"}


def _listing(now: datetime, *version_ids: str) -> dict[str, Any]:
    return {"Versions": [{"Key": KEY, "VersionId": v, "LastModified": now} for v in version_ids]}


def test_failure_to_head_names_no_unchecked_version_and_counts_them(logs, capsys) -> None:
    """HeadObject failing on the last attempt: the orphan line names no version it did not check
    to be this request's (an unchecked one may be another request's live version, which an
    operator must not delete) and counts the candidates left unchecked (the sweep finds them)."""
    s3 = _stubbed_s3()
    now = datetime.now(UTC)
    with Stubber(s3) as stubber:
        stubber.add_response("list_object_versions", _listing(now, "v-other", "v-2", "v-3"))
        stubber.add_response("head_object", {"Metadata": {"request-id": "req-other"}})
        stubber.add_client_error(
            "head_object", service_error_code="AccessDenied", http_status_code=403
        )
        with pytest.raises(CompensationFailed):
            compensate.compensate("req-1", KEY, None, s3=s3, bucket=BUCKET, env={})
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["message"].startswith("ORPHAN:")
    assert error["orphan"]["versionIds"] == []
    assert error["orphan"]["uncheckedVersions"] == 2


@pytest.mark.parametrize("operation", ["list_object_versions", "head_object", "delete_object"])
def test_a_throttle_with_a_retry_left_is_transient_and_unreported(
    cloud: Cloud, logs, capsys, operation: str
) -> None:
    """One SlowDown must not leave an orphan: the first attempt raises TransientStorageError (the
    Compensate Retry matches it) without an ORPHAN line or metric; the retry re-lists and deletes
    what remains."""
    own = put(cloud, b"data", "req-1")
    client = aws.client("s3", cloud.env)
    fired: list[str] = []

    def throttle_once(**_: Any) -> None:
        if not fired:
            fired.append(operation)
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                },
                operation,
            )

    event_name = "before-call.s3." + "".join(p.capitalize() for p in operation.split("_"))
    client.meta.events.register(event_name, throttle_once)
    capsys.readouterr()
    try:
        with pytest.raises(TransientStorageError):
            compensate.run(event(attempt=0), env=cloud.env)
        assert fired == [operation]
        assert [line for line in logs() if line["level"] == "ERROR"] == []
        assert metric_values(capsys.readouterr().out) == []
        result = compensate.run(event(attempt=1), env=cloud.env)
    finally:
        client.meta.events.unregister(event_name, throttle_once)
    assert result == {"deletedVersionIds": [own]}
    assert versions(cloud) == ([], [])


def test_a_throttle_on_the_last_attempt_reports_the_orphan(cloud: Cloud, logs, capsys) -> None:
    own = put(cloud, b"data", "req-1")
    client = aws.client("s3", cloud.env)

    def throttle(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
            "DeleteObject",
        )

    client.meta.events.register("before-call.s3.DeleteObject", throttle)
    capsys.readouterr()
    try:
        with pytest.raises(CompensationFailed):
            compensate.run(event(attempt=TASK_RETRY.max_attempts), env=cloud.env)
    finally:
        client.meta.events.unregister("before-call.s3.DeleteObject", throttle)
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["orphan"]["versionIds"] == [own]
    assert error["attempt"] == TASK_RETRY.max_attempts
    assert metric_values(capsys.readouterr().out) == [
        ("CompensationFailures", {"service": "upload"}, 1.0)
    ]


def test_a_permanent_error_is_reported_on_the_first_attempt(cloud: Cloud, logs) -> None:
    put(cloud, b"data", "req-1")
    client = aws.client("s3", cloud.env)

    def deny(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
            "ListObjectVersions",
        )

    client.meta.events.register("before-call.s3.ListObjectVersions", deny)
    try:
        with pytest.raises(CompensationFailed):
            compensate.run(event(attempt=0), env=cloud.env)
    finally:
        client.meta.events.unregister("before-call.s3.ListObjectVersions", deny)
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["orphan"]["versionIds"] is None
    assert error["orphan"]["uncheckedVersions"] is None  # the listing itself failed


def _fail_call(client: Any, operation: str, on_call: int) -> Any:
    """Make the ``on_call``-th call of ``operation`` (e.g. "HeadObject") fail with AccessDenied;
    returns the handler to unregister."""
    calls: list[int] = []

    def deny(**_: Any) -> None:
        calls.append(1)
        if len(calls) == on_call:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                operation,
            )

    client.meta.events.register(f"before-call.s3.{operation}", deny)
    return deny


@pytest.mark.parametrize(
    ("operation", "on_call", "named"),
    [
        # The request's version is checked and deleted; checking the next candidate (another
        # request's live version) fails: nothing is named, one candidate is left unchecked.
        ("HeadObject", 2, False),
        # The request's version is checked, its delete fails: it alone is named.
        ("DeleteObject", 1, True),
    ],
)
def test_the_orphan_report_names_only_versions_checked_to_be_this_requests(
    cloud: Cloud, logs, operation: str, on_call: int, named: bool
) -> None:
    """Another request's live version of the same key must never be named: an operator
    deleting the reported versions would delete a 200's file."""
    live = put(cloud, b"another request's upload", "req-other", complete=True)
    mine = put(cloud, b"this request's upload", "req-1")  # newer: listed first
    client = aws.client("s3", cloud.env)
    handler = _fail_call(client, operation, on_call)
    try:
        with pytest.raises(CompensationFailed):
            compensate.run(
                event(attempt=0, failedState="Record", error="StorageError"), env=cloud.env
            )
    finally:
        client.meta.events.unregister(f"before-call.s3.{operation}", handler)
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["message"].startswith("ORPHAN:")
    assert error["orphan"] == {
        "bucket": BUCKET,
        "s3Key": KEY,
        "versionIds": [mine] if named else [],
        "uncheckedVersions": 1,  # the other request's version: never checked, never named
        "requestId": "req-1",
    }
    assert error["deletedVersionIds"] == ([] if named else [mine])
    assert live in versions(cloud)[0]
    assert cloud.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == (
        b"this request's upload" if named else b"another request's upload"
    )


# --- the ledger: the fence and the item's lease ---


def lease_holder(cloud: Cloud) -> str | None:
    item = cloud.dynamodb.get_item(
        TableName=LEDGER_TABLE,
        Key={"pk": {"S": "item#PROD-001\nTest Product"}},
        ConsistentRead=True,
    ).get("Item")
    return str(item["holder"]["S"]) if item else None


def intent_of(cloud: Cloud, request_id: str) -> dict[str, Any]:
    item = cloud.dynamodb.get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": f"request#{request_id}"}}, ConsistentRead=True
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


@pytest.mark.parametrize(
    ("failed_state", "error", "released"),
    [
        # Record failed: Store had finished, no write of the request can be in flight.
        ("Record", "StorageError", True),
        ("Record", "States.Timeout", True),
        # Store failed with an answer from S3, or before its PUT: nothing in flight.
        ("Store", "TransientStorageError", True),
        ("Store", "StorageError", True),
        ("Store", "InvalidTaskInput", True),
        # Store's PUT may still land: the lease is kept until it expires.
        ("Store", "States.Timeout", False),
        ("Store", "WriteOutcomeUnknown", False),
        ("Store", "Lambda.Unknown", False),
        ("Store", None, False),
        (None, None, False),
    ],
)
def test_the_lease_is_released_only_when_no_write_can_be_in_flight(
    cloud: Cloud, failed_state: str | None, error: str | None, released: bool
) -> None:
    put(cloud, b"data", "req-1")  # Store began: the intent and the item's lease
    assert lease_holder(cloud) == "req-1"

    compensate.run(event(failedState=failed_state, error=error), env=cloud.env)

    assert lease_holder(cloud) == (None if released else "req-1")
    intent = intent_of(cloud, "req-1")
    assert intent["status"] == "ABORTED"  # fenced whatever failed
    assert "openShard" in intent  # open for the sweep
    if released:
        begin_upload(cloud, "req-2")  # the next upload of the item may begin at once
        assert lease_holder(cloud) == "req-2"
    else:
        with pytest.raises(UploadInProgress):
            begin_upload(cloud, "req-2")


def test_a_fence_and_lease_that_cannot_be_written_are_reported(cloud: Cloud, logs) -> None:
    own = put(cloud, b"data", "req-1")
    env = {**cloud.env, "LEDGER_TABLE_NAME": "no-such-table"}
    with pytest.raises(CompensationFailed):
        compensate.run(event(failedState="Record", error="StorageError"), env=env)
    messages = [line["message"] for line in logs() if line["level"] == "ERROR"]
    assert [message.split(":")[0] for message in messages] == ["FENCE", "LEASE"]
    assert versions(cloud) == ([], [])  # the other steps ran all the same
    assert own not in versions(cloud)[0]
