"""The store task against moto: a new KMS-encrypted version with checksum and metadata."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from tasks import store
from tasks.contract.errors import (
    InvalidTaskInput,
    StorageError,
    TransientStorageError,
    WriteOutcomeUnknown,
)
from tasks.contract.keys import S3_KEY_MAX_BYTES
from tasks.contract.limits import (
    FILE_NAME_MAX_CHARS,
    PRODUCT_NAME_MAX_CHARS,
    S3_USER_METADATA_MAX_BYTES,
)
from tasks.core.models import UploadMetadata, parse_payload
from tasks.core.validation import parse_body, validate_upload

from .support import BUCKET, REGION, Cloud, b64, complete_upload

DATA = b"hello, upload test"
PRODUCT_ID_MAX_CHARS = 128  # PRODUCT_ID_PATTERN: one character, then up to 127


def store_event(
    data: bytes = DATA, *, request_id: str = "req-1", file_name: str = "test-file.txt"
) -> dict[str, Any]:
    body = {
        "productId": "PROD-001",
        "productName": "Prodüct «Ω»",
        "price": 99.99,
        "fileContent": b64(data),
        "fileName": file_name,
    }
    text = json.dumps(body)  # the client's JSON text, as the request template passes it
    upload = validate_upload(request_id, parse_body(text)).to_dict()
    return {"requestId": request_id, "upload": upload, "body": text}


def started_at(delta: timedelta = timedelta(0)) -> str:
    """An execution start time as Step Functions writes it ($$.Execution.StartTime)."""
    moment = datetime.now(UTC) + delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_store_writes_a_kms_encrypted_version_with_checksum_and_metadata(cloud: Cloud) -> None:
    receipt = store.run(store_event(), env=cloud.env)
    version_id = receipt["versionId"]
    assert receipt == {
        "bucket": BUCKET,
        "s3Key": "uploads/PROD-001/test-file.txt",
        "versionId": version_id,
    }
    head = cloud.s3.head_object(
        Bucket=BUCKET, Key=receipt["s3Key"], VersionId=version_id, ChecksumMode="ENABLED"
    )
    assert head["VersionId"] == version_id
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == cloud.key_arn
    assert head["BucketKeyEnabled"] is True
    assert head["ContentType"] == "text/plain"
    assert head["ContentLength"] == len(DATA)
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    assert head["Metadata"] == {
        "request-id": "req-1",
        "product-id": "PROD-001",
        "sha256": hashlib.sha256(DATA).hexdigest(),
    }
    body = cloud.s3.get_object(Bucket=BUCKET, Key=receipt["s3Key"], VersionId=version_id)["Body"]
    assert body.read() == DATA


def test_non_ascii_file_name_is_stored_with_ascii_metadata(cloud: Cloud) -> None:
    receipt = store.run(store_event(file_name="résumé.pdf"), env=cloud.env)
    assert receipt["s3Key"] == "uploads/PROD-001/résumé.pdf"
    head = cloud.s3.head_object(Bucket=BUCKET, Key="uploads/PROD-001/résumé.pdf")
    assert head["VersionId"] == receipt["versionId"]
    assert set(head["Metadata"]) == {"request-id", "product-id", "sha256"}
    assert all(value.isascii() for value in head["Metadata"].values())


def s3_user_metadata_bytes(metadata: dict[str, str]) -> int:
    """S3's measure of user-defined metadata ("the sum of the number of bytes in the UTF-8
    encoding of each key and value"), counting each key with its x-amz-meta- prefix to be safe."""
    return sum(len(f"x-amz-meta-{k}".encode()) + len(v.encode()) for k, v in metadata.items())


@pytest.mark.parametrize("wide", ["é", "Ω", "€", "😀"])  # 2, 2, 3 and 4 bytes of UTF-8
def test_object_metadata_fits_s3s_2_kb_limit_for_the_largest_valid_request(wide: str) -> None:
    """moto does not enforce the limit; real S3 rejects the PUT above it (a 500 for a valid
    request). Every field at its longest: productId 128, productName 256 and fileName as long as
    the 1,024-byte key allows, all in the widest characters; the longest request id the task
    accepts."""
    product_id = "P" + "x" * (PRODUCT_ID_MAX_CHARS - 1)
    prefix_bytes = len(f"uploads/{product_id}/".encode())
    name_chars = min(FILE_NAME_MAX_CHARS, (S3_KEY_MAX_BYTES - prefix_bytes) // len(wide.encode()))
    body = {
        "productId": product_id,
        "productName": wide * PRODUCT_NAME_MAX_CHARS,
        "price": 99.99,
        "fileContent": b64(DATA),
        "fileName": wide * name_chars,
    }
    request_id = "r" * 128  # the longest requestId a task event may carry
    upload = validate_upload(request_id, body)
    assert len(upload.productName) == PRODUCT_NAME_MAX_CHARS
    metadata = store.object_metadata(request_id, upload)
    assert s3_user_metadata_bytes(metadata) <= S3_USER_METADATA_MAX_BYTES
    assert S3_USER_METADATA_MAX_BYTES == 2048


def test_each_store_creates_a_new_version(cloud: Cloud) -> None:
    first_event = store_event(b"first")
    first = store.run(first_event, env=cloud.env)
    complete_upload(cloud, first_event, first)  # releases the item's lease
    second = store.run(store_event(b"second", request_id="req-2"), env=cloud.env)
    assert first["versionId"] != second["versionId"]
    versions = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=first["s3Key"])["Versions"]
    assert {v["VersionId"] for v in versions} == {first["versionId"], second["versionId"]}


def test_content_not_matching_the_validated_metadata_is_refused(cloud: Cloud) -> None:
    event = store_event()
    event["body"] = json.dumps({**json.loads(event["body"]), "fileContent": b64(b"other bytes")})
    with pytest.raises(InvalidTaskInput, match="does not match the validated size and sha256"):
        store.run(event, env=cloud.env)
    assert "Versions" not in cloud.s3.list_object_versions(Bucket=BUCKET)


def test_missing_setting_is_reported_by_name(cloud: Cloud) -> None:
    env = {k: v for k, v in cloud.env.items() if k != "UPLOAD_KEY_ARN"}
    with pytest.raises(InvalidTaskInput, match="UPLOAD_KEY_ARN is not set"):
        store.run(store_event(), env=env)


def _upload() -> tuple[UploadMetadata, str]:
    event = store_event()
    return parse_payload(UploadMetadata, event["upload"]), store.file_content(event["body"])


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, TransientStorageError),
        ("InternalError", 500, TransientStorageError),
        ("ServiceUnavailable", 503, TransientStorageError),
        ("AccessDenied", 403, StorageError),
        ("KMS.NotFoundException", 400, StorageError),
        ("NoSuchBucket", 404, StorageError),
    ],
)
def test_s3_errors_map_to_named_errors_without_sdk_text(
    code: str, status: int, expected: type[Exception], logs
) -> None:
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    upload, content = _upload()
    with Stubber(s3) as stubber:
        stubber.add_client_error(
            "put_object",
            service_error_code=code,
            service_message="SDK SECRET TEXT",
            http_status_code=status,
        )
        with pytest.raises(expected) as caught:
            store.store("req-1", upload, content, s3=s3, bucket=BUCKET, key_arn="arn:key")
    assert type(caught.value) is expected
    assert str(caught.value) == (
        "Storing the file failed temporarily."
        if expected is TransientStorageError
        else "Storing the file failed."
    )
    [line] = logs()
    assert (line["level"], line["errorCode"]) == ("ERROR", code)
    assert "SDK SECRET TEXT" in line["sdkError"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # Sent, never answered: the PUT may still land (not retried; the sweep finds it).
        (botocore.exceptions.ReadTimeoutError(endpoint_url="https://s3"), WriteOutcomeUnknown),
        (
            botocore.exceptions.ConnectionClosedError(endpoint_url="https://s3"),
            WriteOutcomeUnknown,
        ),
        # Never sent: an ordinary transient error, retried.
        (
            botocore.exceptions.ConnectTimeoutError(endpoint_url="https://s3"),
            TransientStorageError,
        ),
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3"),
            TransientStorageError,
        ),
    ],
)
def test_a_timeout_is_transient_and_a_put_without_an_answer_is_unknown(
    error: Exception, expected: type[Exception]
) -> None:
    class TimingOut:
        def put_object(self, **_: Any) -> dict[str, Any]:
            raise error

    upload, content = _upload()
    with pytest.raises(TransientStorageError) as caught:
        store.store("req-1", upload, content, s3=cast(Any, TimingOut()), bucket=BUCKET, key_arn="k")
    assert type(caught.value) is expected


def test_unversioned_bucket_is_a_storage_error() -> None:
    class Unversioned:
        def put_object(self, **_: Any) -> dict[str, Any]:
            return {"ETag": '"x"'}

    upload, content = _upload()
    with pytest.raises(StorageError, match=r"^Storing the file failed\.$"):
        store.store(
            "req-1", upload, content, s3=cast(Any, Unversioned()), bucket=BUCKET, key_arn="k"
        )


# --- a retried Store removes the versions its earlier attempts left behind ---


def test_a_retry_deletes_the_earlier_attempts_version_by_version_id(cloud: Cloud) -> None:
    previous_event = store_event(b"previous upload", request_id="req-old")
    previous = store.run(previous_event, env=cloud.env)
    complete_upload(cloud, previous_event, previous)
    start = started_at(timedelta(seconds=-1))
    # The first attempt's PUT returned, but the task failed (e.g. timed out) afterwards.
    first = store.run({**store_event(), "attempt": 0, "startedAt": start}, env=cloud.env)
    sibling = store.run(store_event(file_name="test-file.txt.bak"), env=cloud.env)
    retry = store.run({**store_event(), "attempt": 1, "startedAt": start}, env=cloud.env)

    key = retry["s3Key"]
    listing = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    assert {v["VersionId"] for v in listing["Versions"] if v["Key"] == key} == {
        previous["versionId"],
        retry["versionId"],
    }
    assert "DeleteMarkers" not in listing  # deleted by VersionId, not hidden by a marker
    assert first["versionId"] != retry["versionId"]
    current = cloud.s3.get_object(Bucket=BUCKET, Key=key)
    assert current["VersionId"] == retry["versionId"]
    sibling_versions = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=sibling["s3Key"])
    assert [v["VersionId"] for v in sibling_versions["Versions"]] == [sibling["versionId"]]


def test_a_retry_ignores_versions_older_than_the_execution(cloud: Cloud) -> None:
    old_own = store.run(store_event(b"long ago"), env=cloud.env)
    late_start = started_at(timedelta(minutes=2))  # the old version predates start - 60 s
    retry = store.run({**store_event(), "attempt": 1, "startedAt": late_start}, env=cloud.env)
    listing = cloud.s3.list_object_versions(Bucket=BUCKET, Prefix=retry["s3Key"])
    assert {v["VersionId"] for v in listing["Versions"]} == {
        old_own["versionId"],
        retry["versionId"],
    }


def test_a_first_attempt_makes_no_call_but_the_put() -> None:
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    upload, content = _upload()
    with Stubber(s3) as stubber:  # any other call would fail: no response is queued for it
        stubber.add_response("put_object", {"VersionId": "v-new"})
        receipt = store.store(
            "req-1",
            upload,
            content,
            s3=s3,
            bucket=BUCKET,
            key_arn="k",
            attempt=0,
            started_at=started_at(),
        )
        stubber.assert_no_pending_responses()
    assert receipt.versionId == "v-new"


def test_a_retry_lists_heads_and_deletes_only_the_other_versions_of_this_request(logs) -> None:
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    upload, content = _upload()
    key = upload.s3Key
    now = datetime.now(UTC)
    with Stubber(s3) as stubber:
        stubber.add_response("put_object", {"VersionId": "v-new"})
        stubber.add_response(
            "list_object_versions",
            {
                "Versions": [
                    {"Key": key, "VersionId": "v-new", "LastModified": now},
                    {"Key": key, "VersionId": "v-first", "LastModified": now},
                    {"Key": key, "VersionId": "v-other", "LastModified": now},
                ]
            },
            {"Bucket": BUCKET, "Prefix": key},
        )
        for version_id, request_id in (
            ("v-new", "req-1"),
            ("v-first", "req-1"),
            ("v-other", "req-2"),
        ):
            stubber.add_response(
                "head_object",
                {"Metadata": {"request-id": request_id}},
                {"Bucket": BUCKET, "Key": key, "VersionId": version_id},
            )
        stubber.add_response(
            "delete_object", {}, {"Bucket": BUCKET, "Key": key, "VersionId": "v-first"}
        )
        receipt = store.store(
            "req-1", upload, content, s3=s3, bucket=BUCKET, key_arn="k", attempt=1, started_at=None
        )
        stubber.assert_no_pending_responses()
    assert receipt.versionId == "v-new"
    [removed] = [line for line in logs() if line["message"] == "Earlier attempts' versions deleted"]
    assert removed["deletedVersionIds"] == ["v-first"]


def test_a_retry_that_cannot_clean_up_fails_so_that_compensation_runs(logs) -> None:
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    upload, content = _upload()
    with Stubber(s3) as stubber:
        stubber.add_response("put_object", {"VersionId": "v-new"})
        stubber.add_client_error(
            "list_object_versions",
            service_error_code="AccessDenied",
            service_message="SDK SECRET TEXT",
            http_status_code=403,
        )
        with pytest.raises(StorageError) as caught:
            store.store("req-1", upload, content, s3=s3, bucket=BUCKET, key_arn="k", attempt=1)
    assert "SDK SECRET TEXT" not in str(caught.value)
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["errorCode"] == "AccessDenied"


@pytest.mark.parametrize("attempt", [-1, "one", 1.5])
def test_a_malformed_attempt_is_a_wiring_fault(cloud: Cloud, attempt: object) -> None:
    with pytest.raises(InvalidTaskInput, match="attempt"):
        store.run({**store_event(), "attempt": attempt}, env=cloud.env)
