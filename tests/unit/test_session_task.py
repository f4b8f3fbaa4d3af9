"""The session task (tasks/session.py) against moto: what each operation answers, writes to the
sessions table and does to the S3 multipart upload, the body rules, caller scoping, the
open-session limit, the presigned part URLs and expiry (an injected clock)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from tasks import session as task
from tasks.contract import names, sessions
from tasks.contract.errors import (
    FieldProblem,
    InvalidTaskInput,
    PayloadTooLarge,
    RequestRejected,
    SessionNotFound,
    SessionNotOpen,
    TooManySessions,
    ValidationError,
)

from .support import BUCKET, CREDENTIALS, REGION, versioned_bucket_and_key

MIB = 1024 * 1024
GIB = 1024 * MIB
SESSIONS_TABLE = "upload-sessions-test"
T0 = 1_900_000_000  # the tasks' clock when a test starts (epoch seconds)
DAY = 24 * 60 * 60
SIZE = 11 * MIB + 3  # in parts of 5 MiB: 5 MiB, 5 MiB and 1 MiB + 3 bytes
PART = 5 * MIB


def hex_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Cloud:
    env: dict[str, str]
    s3: Any
    dynamodb: Any
    key_arn: str


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    """A versioned, KMS-encrypted bucket and the sessions table as infra/storage.py builds it, in
    moto, shared by the module's tests (each has its own caller and product: see ``store``)."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        s3 = boto3.client("s3", region_name=REGION)
        key_arn = versioned_bucket_and_key(s3, boto3.client("kms", region_name=REGION))
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=SESSIONS_TABLE, BillingMode="PAY_PER_REQUEST", **sessions.table_schema()
        )
        dynamodb.update_time_to_live(
            TableName=SESSIONS_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": sessions.DELETE_AT},
        )
        env = {
            "AWS_REGION": REGION,
            **CREDENTIALS,
            names.UPLOAD_BUCKET_NAME: BUCKET,
            names.UPLOAD_KEY_ARN: key_arn,
            names.SESSIONS_TABLE_NAME: SESSIONS_TABLE,
            names.MAX_OPEN_SESSIONS: "2",
            names.POWERTOOLS_SERVICE_NAME: names.SERVICE,
            names.POWERTOOLS_METRICS_NAMESPACE: names.NAMESPACE,
            # In-process moto is slower than AWS on its first calls (see tests/unit/conftest.py).
            names.SDK_TIMEOUT_SCALE: "16",
        }
        yield Cloud(env=env, s3=s3, dynamodb=dynamodb, key_arn=key_arn)


@dataclass
class Sessions:
    """The session task run as the sessions workflow runs it, at ``now`` on the tasks' clock, for
    a caller and a product of this test's own (the open-session limit counts by caller)."""

    cloud: Cloud
    caller: str
    product_id: str
    now: float = T0

    @property
    def key(self) -> str:
        return f"uploads/{self.product_id}/big.bin"

    def run(
        self,
        operation: str,
        upload_id: str | None = None,
        body: Any = None,
        *,
        caller: str | None = None,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        text = "" if body is None else body if isinstance(body, str) else json.dumps(body)
        event = {
            "operation": operation,
            "requestId": f"req-{uuid.uuid4()}",
            "caller": self.caller if caller is None else caller,
            "uploadId": upload_id,
            "body": text,
        }
        return task.run(event, env={**self.cloud.env, **(env or {})}, clock=lambda: self.now)

    def open_body(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "productId": self.product_id,
            "fileName": "big.bin",
            "size": SIZE,
            "partSize": PART,
        }
        body.update(fields)
        return {name: value for name, value in body.items() if value is not None}

    def open(self, *, caller: str | None = None, **fields: Any) -> dict[str, Any]:
        return self.run("open", body=self.open_body(**fields), caller=caller)

    def item(self, upload_id: str) -> dict[str, Any]:
        found = self.cloud.dynamodb.get_item(
            TableName=SESSIONS_TABLE, Key={"uploadId": {"S": upload_id}}, ConsistentRead=True
        )
        return dict(found["Item"])

    def multipart_uploads(self) -> list[dict[str, Any]]:
        """This test's multipart uploads (its product's keys)."""
        listed = self.cloud.s3.list_multipart_uploads(
            Bucket=BUCKET, Prefix=f"uploads/{self.product_id}/"
        )
        return list(listed.get("Uploads", []))


@pytest.fixture
def store(cloud: Cloud) -> Sessions:
    unique = uuid.uuid4().hex[:12]
    return Sessions(cloud, caller=f"caller-{unique}", product_id=f"PROD-{unique}")


def problems(error: RequestRejected) -> list[tuple[str, str]]:
    return [(problem.field, problem.message) for problem in error.details]


# -- open ----------------------------------------------------------------------------------------


def test_open_writes_the_session_and_starts_its_multipart_upload(store: Sessions) -> None:
    opened = store.open(contentType="application/pdf")

    upload_id = opened["uploadId"]
    expires_at = T0 + DAY
    assert opened == {
        "uploadId": upload_id,
        "s3Key": store.key,
        "partSize": PART,
        "partCount": 3,
        "expiresAt": "2030-03-18T17:46:40Z",  # T0 + a day
        "requestId": upload_id,  # a session's id is the id of the request that opened it
    }
    [upload] = store.multipart_uploads()
    assert upload["Key"] == store.key
    assert upload["ChecksumAlgorithm"] == "SHA256"
    assert store.item(upload_id) == {
        "uploadId": {"S": upload_id},
        "caller": {"S": store.caller},
        "openCaller": {"S": store.caller},
        "productId": {"S": store.product_id},
        "fileName": {"S": "big.bin"},
        "s3Key": {"S": store.key},
        "size": {"N": str(SIZE)},
        "partSize": {"N": str(PART)},
        "partCount": {"N": "3"},
        "contentType": {"S": "application/pdf"},
        "multipartId": {"S": upload["UploadId"]},
        "state": {"S": "OPEN"},
        "createdAt": {"N": str(T0)},
        "expiresAt": {"N": str(expires_at)},
        "deleteAt": {"N": str(expires_at + 7 * DAY)},
    }
    # The version the upload completes into carries the session id, encrypted with the key.
    data = b"the whole file"
    s3 = store.cloud.s3
    etag = s3.upload_part(
        Bucket=BUCKET,
        Key=upload["Key"],
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=data,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
    )["ETag"]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key=upload["Key"],
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    head = s3.head_object(Bucket=BUCKET, Key=upload["Key"])
    assert head["Metadata"] == {"request-id": upload_id, "product-id": store.product_id}
    assert head["ContentType"] == "application/pdf"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == store.cloud.key_arn


def test_open_without_a_caller_belongs_to_the_anonymous_caller(store: Sessions) -> None:
    # The request template passes "" when API Gateway names no caller (local mode).
    opened = store.open(caller="")

    assert store.item(opened["uploadId"])["caller"] == {"S": "anonymous"}
    assert store.run("describe", opened["uploadId"], caller="anonymous")["state"] == "OPEN"
    store.run("abort", opened["uploadId"], caller="")  # the module's anonymous caller holds none


@pytest.mark.parametrize(
    ("size", "part_size", "plan"),
    [
        (SIZE, PART, (PART, 3)),
        (SIZE, None, (64 * MIB, 1)),  # the default part size
        (5 * GIB, None, (64 * MIB, 80)),
        (PART, PART, (PART, 1)),
        (PART + 1, PART, (PART, 2)),
    ],
)
def test_open_plans_the_parts(
    store: Sessions, size: int, part_size: int | None, plan: tuple[int, int]
) -> None:
    opened = store.open(size=size, partSize=part_size)

    assert (opened["partSize"], opened["partCount"]) == plan


def test_open_reports_every_problem_at_once(store: Sessions) -> None:
    body = {"productId": "no spaces", "fileName": "a/b", "size": 0, "partSize": 1, "colour": 1}

    with pytest.raises(ValidationError) as raised:
        store.run("open", body=body)

    assert [field for field, _ in problems(raised.value)] == [
        "productId",
        "fileName",
        "size",
        "partSize",
        "colour",
    ]
    assert store.multipart_uploads() == []


def test_open_requires_its_fields(store: Sessions) -> None:
    with pytest.raises(ValidationError) as raised:
        store.run("open", body={})

    assert problems(raised.value) == [
        ("productId", "is required"),
        ("fileName", "is required"),
        ("size", "is required"),
    ]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"size": 0}, ("size", "must be at least 1")),
        ({"size": -1}, ("size", "must be at least 1")),
        ({"size": 5.5}, ("size", "must be an integer")),
        ({"size": "5"}, ("size", "must be an integer")),
        ({"size": True}, ("size", "must be an integer")),
        (
            {"partSize": PART - 1},
            ("partSize", "must be 5242880 to 5368709120 bytes (5 MiB to 5 GiB)"),
        ),
        (
            {"partSize": 5 * GIB + 1},
            ("partSize", "must be 5242880 to 5368709120 bytes (5 MiB to 5 GiB)"),
        ),
        ({"partSize": PART + 0.5}, ("partSize", "must be an integer")),
        ({"partSize": str(PART)}, ("partSize", "must be an integer")),
        ({"colour": "blue"}, ("colour", "is not an allowed field")),
    ],
)
def test_open_refuses_a_bad_field(
    store: Sessions, fields: dict[str, Any], problem: tuple[str, str]
) -> None:
    with pytest.raises(ValidationError) as raised:
        store.open(**fields)

    assert problems(raised.value) == [problem]
    assert store.multipart_uploads() == []


def test_open_refuses_a_key_longer_than_s3_allows(store: Sessions) -> None:
    # 255 characters of 4 bytes each: the key is over 1,024 bytes of UTF-8.
    with pytest.raises(ValidationError) as raised:
        store.open(fileName="\N{GRINNING FACE}" * 255)

    assert [field for field, _ in problems(raised.value)] == ["fileName"]
    assert "1024 bytes of UTF-8" in problems(raised.value)[0][1]


def test_open_refuses_more_parts_than_s3_allows(store: Sessions) -> None:
    size = 10_001 * PART
    with pytest.raises(ValidationError) as raised:
        store.run("open", body=store.open_body(size=size), env={names.MAX_UPLOAD_BYTES: str(size)})

    assert problems(raised.value) == [("partSize", "makes 10001 parts; at most 10000 are allowed")]


@pytest.mark.parametrize(
    ("limit", "size"),
    [(None, 5 * GIB + 1), ("1000", 1001)],  # the default limit (5 GiB), then a configured one
)
def test_open_over_the_size_limit_is_payload_too_large(
    store: Sessions, limit: str | None, size: int
) -> None:
    env = {} if limit is None else {names.MAX_UPLOAD_BYTES: limit}

    with pytest.raises(PayloadTooLarge) as raised:
        store.run("open", body=store.open_body(size=size, partSize=None), env=env)

    assert problems(raised.value) == [("size", f"must be at most {size - 1}")]
    assert store.multipart_uploads() == []
    # At the limit it opens.
    store.run("open", body=store.open_body(size=size - 1, partSize=None), env=env)
    assert len(store.multipart_uploads()) == 1


# -- the open-session limit ----------------------------------------------------------------------


def test_a_caller_holds_at_most_max_open_sessions(store: Sessions) -> None:
    first = store.open()
    store.now += 100
    store.open()

    with pytest.raises(TooManySessions) as raised:
        store.open()

    assert "2 open upload sessions (at most 2)" in raised.value.message
    assert len(store.multipart_uploads()) == 2  # the refused open started none
    # The limit is per caller.
    store.open(caller=f"{store.caller}-b")
    # An aborted session no longer counts.
    store.run("abort", first["uploadId"])
    store.open()
    with pytest.raises(TooManySessions):
        store.open()


def test_an_expired_session_does_not_count_towards_the_limit(store: Sessions) -> None:
    store.open()  # expires at T0 + DAY
    store.now += 100
    store.open()  # expires at T0 + DAY + 100
    with pytest.raises(TooManySessions):
        store.open()

    store.now = T0 + DAY  # the first one expired (now is not before its expiry)
    store.open()

    with pytest.raises(TooManySessions):
        store.open()


# -- another caller's session --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("parts", {"parts": [{"partNumber": 1, "sha256": "0" * 64}]}),
        ("describe", None),
        ("abort", None),
    ],
)
def test_another_callers_session_is_not_found(store: Sessions, operation: str, body: Any) -> None:
    upload_id = store.open()["uploadId"]

    with pytest.raises(SessionNotFound) as raised:
        store.run(operation, upload_id, body, caller=f"{store.caller}-b")
    with pytest.raises(SessionNotFound) as unknown:
        store.run(operation, "req-unknown", body)

    # Indistinguishable from a session that never existed, and untouched.
    assert raised.value.message == unknown.value.message
    assert raised.value.message == "There is no upload session with this uploadId."
    assert store.item(upload_id)["state"] == {"S": "OPEN"}
    assert len(store.multipart_uploads()) == 1


@pytest.mark.parametrize("upload_id", ["x" * 129, "x" * 2000, "../etc", "a b"])
def test_an_id_no_session_can_have_is_not_found(store: Sessions, upload_id: str) -> None:
    """A path segment of any length or shape is just not found (not an internal error)."""
    for operation in ("describe", "abort"):
        with pytest.raises(SessionNotFound):
            store.run(operation, upload_id)


def test_a_size_beyond_any_limit_is_payload_too_large(store: Sessions) -> None:
    """However large the number (never expanded into an integer), it is over the limit."""
    for size in ("6E+12", "1E+999999"):
        with pytest.raises(PayloadTooLarge):
            store.run(
                "open",
                body=f'{{"productId": "{store.product_id}", "fileName": "a.bin", "size": {size}}}',
            )
    assert store.multipart_uploads() == []


def test_an_operation_on_a_session_needs_its_id(store: Sessions) -> None:
    with pytest.raises(InvalidTaskInput):
        store.run("describe", None)


# -- part URLs -----------------------------------------------------------------------------------


def signed_query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_parts_are_presigned_with_their_checksum_and_length(store: Sessions) -> None:
    opened = store.open()
    multipart_id = store.multipart_uploads()[0]["UploadId"]
    digests = {3: hex_sha256(b"last part"), 1: hex_sha256(b"first part")}
    store.now += 60

    signed = store.run(
        "parts",
        opened["uploadId"],
        {"parts": [{"partNumber": n, "sha256": d} for n, d in digests.items()]},
    )

    assert signed["uploadId"] == opened["uploadId"]
    assert signed["expiresAt"] == "2030-03-17T18:47:40Z"  # T0 + 60 s + an hour
    assert [part["partNumber"] for part in signed["parts"]] == [3, 1]  # as asked
    lengths = {1: PART, 3: SIZE - 2 * PART}  # the last part is the remainder
    for part in signed["parts"]:
        number = part["partNumber"]
        checksum = base64.b64encode(bytes.fromhex(digests[number])).decode()
        assert part["headers"] == {
            "x-amz-checksum-sha256": checksum,
            "content-length": str(lengths[number]),
        }
        url = urlsplit(part["url"])
        assert url.path.endswith(f"/{store.key}")
        query = signed_query(part["url"])
        assert query["uploadId"] == multipart_id
        assert query["partNumber"] == str(number)
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert query["X-Amz-Expires"] == "3600"
        # Both headers are signed: S3 refuses a PUT whose bytes or length differ.
        signed_headers = query["X-Amz-SignedHeaders"].split(";")
        assert {"content-length", "x-amz-checksum-sha256", "host"} <= set(signed_headers)


def test_part_urls_never_outlive_the_session(store: Sessions) -> None:
    upload_id = store.open()["uploadId"]
    store.now = T0 + DAY - 120

    signed = store.run("parts", upload_id, {"parts": [{"partNumber": 2, "sha256": "a" * 64}]})

    assert signed_query(signed["parts"][0]["url"])["X-Amz-Expires"] == "120"
    assert signed["expiresAt"] == "2030-03-18T17:46:40Z"  # the session's expiry
    assert signed["parts"][0]["headers"]["content-length"] == str(PART)


def good_part(number: int = 1) -> dict[str, Any]:
    return {"partNumber": number, "sha256": "0" * 64}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"parts": [good_part(0)]},
            [("parts[0]", "partNumber must be 1 to 3 (the session's parts)")],
        ),
        (
            {"parts": [good_part(4)]},
            [("parts[0]", "partNumber must be 1 to 3 (the session's parts)")],
        ),
        (
            {"parts": [{"partNumber": 1.5, "sha256": "0" * 64}]},
            [("parts[0]", "must be an integer")],
        ),
        (
            {"parts": [good_part(1), good_part(2), good_part(1)]},
            [("parts[2]", "repeats an earlier partNumber")],
        ),
        (
            {
                "parts": [
                    {"partNumber": 1, "sha256": "A" * 64},
                    {"partNumber": 2, "sha256": "0" * 63},
                ]
            },
            [
                ("parts[0]", "sha256 must be 64 lowercase hexadecimal digits"),
                ("parts[1]", "sha256 must be 64 lowercase hexadecimal digits"),
            ],
        ),
        (
            {"parts": [{"partNumber": 1}]},
            [("parts[0]", "must be an object with exactly partNumber and sha256")],
        ),
        (
            {"parts": [{**good_part(), "size": 1}]},
            [("parts[0]", "must be an object with exactly partNumber and sha256")],
        ),
        ({"parts": []}, [("parts", "must be a list of 1 to 100 parts")]),
        ({"parts": [good_part()] * 101}, [("parts", "must be a list of 1 to 100 parts")]),
        ({}, [("parts", "must be a list of 1 to 100 parts")]),
        (
            {"parts": [good_part()], "extra": 1},
            [("extra", "is not an allowed field")],
        ),
    ],
)
def test_parts_refuses_a_bad_body(
    store: Sessions, body: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    upload_id = store.open()["uploadId"]

    with pytest.raises(ValidationError) as raised:
        store.run("parts", upload_id, body)

    assert problems(raised.value) == expected


def test_parts_body_that_is_not_an_object_is_refused(store: Sessions) -> None:
    upload_id = store.open()["uploadId"]

    with pytest.raises(ValidationError) as raised:
        store.run("parts", upload_id, "[1, 2]")

    assert raised.value.details == [FieldProblem("body", "must be a JSON object")]


# -- expiry, describe and abort ------------------------------------------------------------------


def test_describe_lists_the_parts_s3_holds(store: Sessions) -> None:
    opened = store.open()
    [upload] = store.multipart_uploads()
    for number, data in ((2, b"second"), (1, b"the first")):
        store.cloud.s3.upload_part(
            Bucket=BUCKET,
            Key=upload["Key"],
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
            ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
        )

    described = store.run("describe", opened["uploadId"])

    # In-process moto lists no part checksum (local mode's S3 adds it: tests/e2e/test_sessions).
    assert [(part["partNumber"], part["size"]) for part in described["parts"]] == [(1, 9), (2, 6)]
    assert {key: value for key, value in described.items() if key != "parts"} == {
        "uploadId": opened["uploadId"],
        "state": "OPEN",
        "s3Key": store.key,
        "size": SIZE,
        "partSize": PART,
        "partCount": 3,
        "expiresAt": "2030-03-18T17:46:40Z",
        "requestId": described["requestId"],
    }
    assert described["requestId"] != opened["uploadId"]


def test_an_expired_session_is_described_expired_and_takes_no_parts(store: Sessions) -> None:
    upload_id = store.open()["uploadId"]
    store.now = T0 + DAY - 1
    assert store.run("describe", upload_id)["state"] == "OPEN"

    store.now = T0 + DAY

    assert store.run("describe", upload_id)["state"] == "EXPIRED"
    with pytest.raises(SessionNotOpen) as raised:
        store.run("parts", upload_id, {"parts": [good_part()]})
    assert raised.value.message == "The upload session is EXPIRED: it takes no more parts."


def test_abort_ends_the_session_and_its_multipart_upload(store: Sessions) -> None:
    upload_id = store.open()["uploadId"]
    [upload] = store.multipart_uploads()
    store.cloud.s3.upload_part(
        Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )

    first = store.run("abort", upload_id)
    second = store.run("abort", upload_id)

    assert first == {"uploadId": upload_id, "state": "ABORTED", "requestId": first["requestId"]}
    assert second == {"uploadId": upload_id, "state": "ABORTED", "requestId": second["requestId"]}
    assert store.multipart_uploads() == []
    item = store.item(upload_id)
    assert item["state"] == {"S": "ABORTED"}
    assert "openCaller" not in item  # out of the open-sessions index
    described = store.run("describe", upload_id)
    assert (described["state"], described["parts"]) == ("ABORTED", [])
    with pytest.raises(SessionNotOpen) as raised:
        store.run("parts", upload_id, {"parts": [good_part()]})
    assert raised.value.message == "The upload session is ABORTED: it takes no more parts."
