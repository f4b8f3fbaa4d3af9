"""The report task (tasks/report.py): what a compensation that could not report left behind,
reported once, whatever lookup fails."""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from tasks import report
from tasks.contract import names
from tasks.contract.timing import S3_SDK, TIMINGS
from tasks.core import ledger

from .support import BUCKET, LEDGER_TABLE, Cloud, metric_values, put

KEY = "uploads/PROD-001/test-file.txt"


def event(request_id: str = "req-1", **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "productId": "PROD-001",
        "productName": "Test Product",
        "s3Key": KEY,
        "startedAt": None,
        "error": "States.Timeout",
        **extra,
    }


def intent_status(cloud: Cloud, request_id: str) -> str:
    item = cloud.dynamodb.get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": f"request#{request_id}"}}, ConsistentRead=True
    )["Item"]
    return str(item["status"]["S"])


def orphan_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["level"] == "ERROR"]


def run_report(cloud: Cloud, env: dict[str, str] | None = None) -> list[str] | None:
    """report.report for req-1's upload (the task's work, with the test's own clients)."""
    env = env or cloud.env
    return report.report(
        ledger.Upload(
            request_id="req-1",
            bucket=BUCKET,
            s3_key=KEY,
            product_id="PROD-001",
            product_name="Test Product",
            started_at=None,
        ),
        error="States.Timeout",
        s3=cloud.s3,
        dynamodb=cloud.dynamodb,
        ledger_table=env["LEDGER_TABLE_NAME"],
        metadata_table=env["METADATA_TABLE_NAME"],
        env=env,
    )


def test_one_orphan_line_with_exactly_the_requests_versions(cloud: Cloud, logs, capsys) -> None:
    previous = put(cloud, b"another request's upload", "req-old", complete=True)
    first = put(cloud, b"this request, first attempt", "req-1")
    second = put(cloud, b"this request, second attempt", "req-1")
    capsys.readouterr()

    result = run_report(cloud)

    assert result == [second, first]  # newest first; never req-old's
    [line] = orphan_lines(logs())
    assert line["message"] == report.ORPHAN_MESSAGE
    assert line["orphan"] == {
        "bucket": BUCKET,
        "s3Key": KEY,
        "versionIds": [second, first],
        "requestId": "req-1",
        "metadataItemWritten": False,  # the item is req-old's
    }
    assert line["compensationError"] == "States.Timeout"
    assert line["fenced"] is True
    assert intent_status(cloud, "req-1") == "ABORTED"
    assert metric_values(capsys.readouterr().out) == [
        ("CompensationFailures", {"service": "upload"}, 1.0)
    ]
    # Reporting deletes nothing.
    listing = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)
    assert {v["VersionId"] for v in listing["Versions"]} == {previous, first, second}


def test_a_metadata_write_of_the_request_is_reported(cloud: Cloud, logs) -> None:
    put(cloud, b"data", "req-1", complete=True)  # Record's transaction landed, then it failed
    run_report(cloud)
    [line] = orphan_lines(logs())
    assert line["orphan"]["metadataItemWritten"] is True


def test_a_failed_s3_lookup_is_reported_with_unknown_versions(cloud: Cloud, logs, capsys) -> None:
    put(cloud, b"data", "req-1")
    calls: list[str] = []

    def deny(**_: Any) -> None:
        calls.append("ListObjectVersions")
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
            "ListObjectVersions",
        )

    cloud.s3.meta.events.register("before-call.s3.ListObjectVersions", deny)
    capsys.readouterr()
    try:
        result = run_report(cloud)  # never raises on a failed lookup
    finally:
        cloud.s3.meta.events.unregister("before-call.s3.ListObjectVersions", deny)
    assert calls == ["ListObjectVersions"]
    assert result is None
    [line] = orphan_lines(logs())
    assert line["orphan"]["versionIds"] is None
    assert line["orphan"]["requestId"] == "req-1"
    assert line["fenced"] is True
    assert metric_values(capsys.readouterr().out) == [
        ("CompensationFailures", {"service": "upload"}, 1.0)
    ]


def test_the_report_goes_out_when_the_ledger_and_the_item_cannot_be_read(
    cloud: Cloud, logs, capsys
) -> None:
    own = put(cloud, b"data", "req-1")
    env = {**cloud.env, "LEDGER_TABLE_NAME": "no-such-table", "METADATA_TABLE_NAME": "nor-this"}
    capsys.readouterr()
    assert run_report(cloud, env) == [own]
    [line] = orphan_lines(logs())
    assert line["fenced"] is False
    assert line["orphan"]["metadataItemWritten"] is None  # could not be checked
    assert [name for name, _, _ in metric_values(capsys.readouterr().out)] == [
        "CompensationFailures"
    ]


def test_the_task_reports_every_failed_lookup_without_raising(cloud: Cloud, logs, capsys) -> None:
    env = {**cloud.env, "LEDGER_TABLE_NAME": "no-such-table", "METADATA_TABLE_NAME": "nor-this"}
    capsys.readouterr()
    result = report.run(event(), env=env)
    assert set(result) == {"versionIds"}
    [line] = orphan_lines(logs())
    assert (line["fenced"], line["orphan"]["metadataItemWritten"]) == (False, None)
    assert [name for name, _, _ in metric_values(capsys.readouterr().out)] == [
        "CompensationFailures"
    ]


def test_the_task_finds_the_versions_within_its_deadline(cloud: Cloud, logs, capsys) -> None:
    """Its SDK deadline leaves room for an S3 attempt (TIMINGS[report] against S3_SDK): with
    one shorter than an attempt, every S3 call of the task was refused (OutOfTime) and the
    report always said versionIds null."""
    assert TIMINGS[names.REPORT].sdk_deadline_seconds > S3_SDK.attempt_seconds
    previous = put(cloud, b"another request's upload", "req-old", complete=True)
    own = put(cloud, b"data", "req-1")
    capsys.readouterr()
    assert report.run(event(), env=cloud.env) == {"versionIds": [own]}
    [line] = orphan_lines(logs())
    assert line["orphan"]["versionIds"] == [own]
    assert previous not in line["orphan"]["versionIds"]
    assert (line["fenced"], line["orphan"]["metadataItemWritten"]) == (True, False)
    assert not [entry for entry in logs() if entry["level"] == "WARNING"]  # every step ran
    assert metric_values(capsys.readouterr().out) == [
        ("CompensationFailures", {"service": "upload"}, 1.0)
    ]
