"""local.moto_patches: moto answers as it does unpatched, only faster -- every update expression
(lean_update_expressions: the same item afterwards, or the same error), and every completion and
read of a multipart upload (lean_multipart_completion, in_memory_s3_keys, ranged_object_reads:
the same bytes, ETag, checksum, headers, errors)."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import random
import tempfile
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal import mock_random
from moto.s3.models import FakeKey, s3_backends

from local import moto_patches
from local.s3_checks import PartDigests
from tasks.core import ledger

TABLE = "t"
KEY = {"pk": {"S": "item"}}
START = {
    "pk": {"S": "item"},
    "a": {"M": {"b": {"S": "old"}}},
    "n": {"N": "1"},
    "tags": {"SS": ["x"]},
}

# (update expression, names, values): successes and each kind of error moto reports.
UPDATES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "SET #s = if_not_exists(#s, :v), n = n + :one",
        {"#s": "s"},
        {":v": {"S": "v"}, ":one": {"N": "1"}},
    ),
    ("SET a.b = :v REMOVE n ADD tags :t", {}, {":v": {"S": "new"}, ":t": {"SS": ["y"]}}),
    ("SET #x = :v, #x = :w", {"#x": "x"}, {":v": {"S": "1"}, ":w": {"S": "2"}}),
    ("SET a.b = :v, a = :w", {}, {":v": {"S": "1"}, ":w": {"M": {}}}),
    ("SET x = :v SET y = :w", {}, {":v": {"S": "1"}, ":w": {"S": "2"}}),
    ("ADD n :one ADD m :one", {}, {":one": {"N": "1"}}),
    ("SET pk = :v", {}, {":v": {"S": "other"}}),
    ("SET x = :missing", {}, {}),
    ("SET x = n + :s", {}, {":s": {"S": "text"}}),
]


@contextlib.contextmanager
def _table(lean: bool) -> Iterator[Any]:
    with mock_aws(), moto_patches.item_level_transactions():
        patches = moto_patches.lean_update_expressions() if lean else contextlib.nullcontext()
        with patches:
            client = boto3.client(
                "dynamodb",
                region_name="us-east-1",
                aws_access_key_id="k",
                aws_secret_access_key="s",
            )
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            yield client


def _outcome(client: Any, expression: str, names: dict[str, str], values: dict[str, Any]) -> Any:
    client.put_item(TableName=TABLE, Item=START)
    arguments: dict[str, Any] = {"TableName": TABLE, "Key": KEY, "UpdateExpression": expression}
    if names:
        arguments["ExpressionAttributeNames"] = names
    if values:
        arguments["ExpressionAttributeValues"] = values
    try:
        client.update_item(**arguments)
    except botocore.exceptions.ClientError as error:
        return ("error", error.response["Error"]["Code"], error.response["Error"]["Message"])
    return ("item", client.get_item(TableName=TABLE, Key=KEY)["Item"])


def _outcomes(lean: bool) -> list[Any]:
    with _table(lean) as client:
        # Each expression twice: a parsed text is reused, its values are not.
        return [_outcome(client, *update) for update in UPDATES + UPDATES]


def test_every_update_expression_ends_as_it_does_unpatched():
    plain, lean = _outcomes(lean=False), _outcomes(lean=True)
    assert lean == plain
    kinds = [outcome[0] for outcome in plain[: len(UPDATES)]]
    assert kinds.count("item") == 2
    assert kinds.count("error") == len(UPDATES) - 2  # every error case really is one


def _ledger_round(client: Any) -> list[Any]:
    """The ledger's own transactions: begin, a refused second begin, commit, abort."""
    first = ledger.Upload("r1", "b", "uploads/p/f", "p", "n", "2026-11-30T00:00:00.000Z")
    second = ledger.Upload("r2", "b", "uploads/p/f", "p", "n", "2026-11-30T00:00:00.000Z")
    outcomes: list[Any] = []
    for items in (
        ledger.begin(TABLE, first, attempt=0, now=100),
        ledger.begin(TABLE, second, attempt=0, now=100),  # lease held: refused
        ledger.commit(TABLE, first, version_id="v1", now=100),
    ):
        try:
            client.transact_write_items(TransactItems=items)
            outcomes.append("ok")
        except botocore.exceptions.ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    outcomes.append(ledger.abort(client, TABLE, second, now=100))
    outcomes.append(sorted(client.scan(TableName=TABLE)["Items"], key=lambda i: i["pk"]["S"]))
    return outcomes


def test_the_ledgers_transactions_end_alike():
    with _table(lean=False) as client:
        plain = _ledger_round(client)
    with _table(lean=True) as client:
        lean = _ledger_round(client)
    assert lean == plain
    assert plain[:4] == ["ok", "TransactionCanceledException", "ok", None]  # r2 never began


# -- S3: lean_multipart_completion, in_memory_s3_keys, ranged_object_reads ------------------------
# The same multipart upload, completed and read with and without the patches, answers alike.

MIB = 1 << 20
BUCKET = "uploads"
OBJECT_KEY = "large/file.bin"
# Every part but the last at S3's minimum size.
PARTS = [random.Random(part).randbytes(size) for part, size in enumerate((5 * MIB, 5 * MIB, 1000))]
SIZE = sum(map(len, PARTS))
RANGES = [
    "bytes=0-4095",
    f"bytes={5 * MIB - 2}-{5 * MIB + 1}",  # across two parts
    f"bytes={SIZE - 1}-{SIZE - 1}",  # the last byte
    f"bytes={SIZE - 10}-{SIZE + 100}",  # past the end
    "bytes=-10",
    f"bytes={SIZE}-",  # not satisfiable
    "bytes=5-2",  # ignored by moto
    "bytes=0-1,3-4",  # ignored by moto
]
_VOLATILE_HEADERS = {"date", "last-modified", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2"}

S3Patches = Callable[[], list[contextlib.AbstractContextManager[None]]]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _lean(known_digest: moto_patches.KnownDigest | None = None) -> S3Patches:
    return lambda: [
        moto_patches.in_memory_s3_keys(),
        moto_patches.lean_multipart_completion(known_digest),
        moto_patches.ranged_object_reads(),
    ]


def _on_disk() -> list[contextlib.AbstractContextManager[None]]:
    # moto's own buffer size: the 5 MiB parts are held on disk, the last one in memory
    return [moto_patches.lean_multipart_completion(), moto_patches.ranged_object_reads()]


@contextlib.contextmanager
def _s3(patches: S3Patches | None) -> Iterator[tuple[Any, str]]:
    """An S3 client and a KMS key id, in a versioned bucket, with ``patches`` applied."""
    with mock_aws(), contextlib.ExitStack() as stack:
        mock_random.seed(7)  # the same version ids in every run
        for patch in [] if patches is None else patches():
            stack.enter_context(patch)
        arguments = {"region_name": "us-east-1", "aws_access_key_id": "k"}
        s3 = boto3.client("s3", aws_secret_access_key="s", **arguments)
        kms = boto3.client("kms", aws_secret_access_key="s", **arguments)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield s3, key_id


def _stable(call: Callable[..., Any], **arguments: Any) -> Any:
    """An answer without what differs between runs (request ids, dates), its body read."""
    try:
        answer = dict(call(**arguments))
    except botocore.exceptions.ClientError as error:
        answer = dict(error.response)
    metadata = answer.pop("ResponseMetadata")
    answer.pop("LastModified", None)
    if "Body" in answer:
        answer["Body"] = answer["Body"].read()
    headers = metadata["HTTPHeaders"]
    answer["HTTP"] = (
        metadata["HTTPStatusCode"],
        {name: value for name, value in headers.items() if name not in _VOLATILE_HEADERS},
    )
    return answer


def _start(s3: Any, key_id: str, parts: list[bytes] = PARTS, **options: Any) -> tuple[str, Any]:
    """A new SSE-KMS multipart upload of ``parts`` (SHA-256 checksums unless ``options`` say
    otherwise): its id and the parts to complete it with."""
    created = s3.create_multipart_upload(
        Bucket=BUCKET,
        Key=OBJECT_KEY,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_id,
        ContentType="application/pdf",
        Metadata={"request-id": "r1"},
        **({"ChecksumAlgorithm": "SHA256"} | options),
    )
    upload_id = created["UploadId"]
    completed = []
    for number, data in enumerate(parts, start=1):
        checksum = (
            {"ChecksumSHA256": _b64(_sha256(data))} if "ChecksumAlgorithm" not in options else {}
        )
        stored = s3.upload_part(
            Bucket=BUCKET,
            Key=OBJECT_KEY,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            **checksum,
        )
        completed.append({"PartNumber": number, "ETag": stored["ETag"], **checksum})
    return upload_id, completed


def _reads(s3: Any) -> list[Any]:
    """Every read of the completed object: whole, its head, its attributes, then each range."""
    whole = {"Bucket": BUCKET, "Key": OBJECT_KEY}
    answers = [
        _stable(s3.get_object, ChecksumMode="ENABLED", **whole),
        _stable(s3.head_object, ChecksumMode="ENABLED", **whole),
        _stable(
            s3.get_object_attributes,
            ObjectAttributes=["ETag", "Checksum", "ObjectSize"],
            **whole,
        ),
    ]
    answers.extend(_stable(s3.get_object, Range=bytes_range, **whole) for bytes_range in RANGES)
    return answers


def _completed_answers(patches: S3Patches | None, **options: Any) -> list[Any]:
    with _s3(patches) as (s3, key_id):
        upload_id, parts = _start(s3, key_id, **options)
        done = _stable(
            s3.complete_multipart_upload,
            Bucket=BUCKET,
            Key=OBJECT_KEY,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
        return [done, *_reads(s3)]


@pytest.fixture(scope="module")
def unpatched() -> list[Any]:
    return _completed_answers(None)


def _known_digests() -> moto_patches.KnownDigest:
    """The first two parts' digests, and for the last one a digest kept for other bytes."""
    digests = PartDigests()
    for number, data in enumerate(PARTS[:2], start=1):
        digests.remember("any", number, _etag(data), _sha256(data))
    digests.remember("any", 3, _etag(b"other bytes"), _sha256(b"other bytes"))
    return lambda upload_id, number, etag: digests.get("any", number, etag)


@pytest.mark.parametrize(
    "patches",
    [_lean(), _lean(_known_digests()), _on_disk],
    ids=["in memory", "known digests", "parts on disk"],
)
def test_a_completed_upload_answers_as_it_does_unpatched(
    unpatched: list[Any], patches: S3Patches
) -> None:
    lean = _completed_answers(patches)

    assert lean == unpatched
    done, whole, head = unpatched[:3]
    assert whole["Body"] == b"".join(PARTS)
    assert (
        whole["ETag"]
        == done["ETag"]
        == f'"{_etag(b"".join(bytes.fromhex(_etag(p)) for p in PARTS))}-3"'
    )
    composite = _b64(_sha256(b"".join(_sha256(part) for part in PARTS)))
    assert (whole["ChecksumSHA256"], whole["ChecksumType"]) == (f"{composite}-3", "COMPOSITE")
    assert whole["SSEKMSKeyId"] == head["SSEKMSKeyId"]
    assert whole["VersionId"] == done["VersionId"]
    statuses = [answer["HTTP"][0] for answer in unpatched[4:]]
    assert statuses == [206, 206, 206, 206, 206, 416, 200, 200]
    assert unpatched[6]["Body"] == PARTS[-1][-1:]


def test_a_known_digest_is_taken_as_it_is() -> None:
    """The composite checksum comes from the digests known, not from hashing the parts again."""
    wrong = _sha256(b"not the first part")

    def known(upload_id: str, number: int, etag: str) -> bytes | None:
        return wrong if etag.strip('"') == _etag(PARTS[0]) else None

    whole = _completed_answers(_lean(known))[1]

    composite = _b64(_sha256(wrong + _sha256(PARTS[1]) + _sha256(PARTS[2])))
    assert whole["ChecksumSHA256"] == f"{composite}-3"


def test_an_upload_without_sha256_checksums_completes_as_moto_completes_it() -> None:
    plain = _completed_answers(None, ChecksumAlgorithm="CRC32")
    assert _completed_answers(_lean(), ChecksumAlgorithm="CRC32") == plain
    assert plain[1]["ChecksumType"] == "COMPOSITE"


def _refused_completions(patches: S3Patches | None) -> list[Any]:
    """moto's errors for completions it refuses, then the upload completed after all."""
    with _s3(patches) as (s3, key_id):
        upload_id, parts = _start(s3, key_id, parts=[PARTS[2], *PARTS[:2]])  # first part short
        wrong_etag = {**parts[1], "ETag": f'"{_etag(b"x")}"'}
        unknown = {**parts[1], "PartNumber": 9}
        complete = functools.partial(
            _stable, s3.complete_multipart_upload, Bucket=BUCKET, Key=OBJECT_KEY, UploadId=upload_id
        )
        answers = [
            complete(MultipartUpload={"Parts": [parts[0], wrong_etag]}),  # InvalidPart first
            complete(MultipartUpload={"Parts": [parts[0], parts[1]]}),  # EntityTooSmall
            complete(MultipartUpload={"Parts": [parts[1], unknown]}),
            complete(MultipartUpload={"Parts": []}),
            complete(MultipartUpload={"Parts": parts[1:]}),
        ]
        return answers + _reads(s3)


def test_a_refused_completion_is_refused_as_unpatched() -> None:
    plain = _refused_completions(None)

    assert _refused_completions(_lean()) == plain
    codes = [answer.get("Error", {}).get("Code") for answer in plain[:5]]
    assert codes == ["InvalidPart", "EntityTooSmall", "InvalidPart", "MalformedXML", None]


@pytest.mark.parametrize("size", [None, 0, 1, 7, 5 * MIB + 3])
def test_joined_bytes_read_as_one_bytes_io(size: int | None) -> None:
    chunks = [b"abc", b"", b"defgh", b"i" * (5 * MIB)]
    joined, plain = moto_patches._JoinedBytes(chunks), io.BytesIO(b"".join(chunks))
    for offset in (0, 2, 3, 8, 9, 5 * MIB + 7, 5 * MIB + 8, 5 * MIB + 20):
        assert joined.seek(offset) == plain.seek(offset)
        assert joined.read(size) == plain.read(size)
        assert joined.tell() == plain.tell()
    assert joined.seek(-4, io.SEEK_END) == plain.seek(-4, io.SEEK_END)
    assert joined.read() == plain.read()
    joined.close()
    with pytest.raises(ValueError, match="closed file"):
        joined.read()


def _stored_object() -> Any:
    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[BUCKET].keys[OBJECT_KEY]


@pytest.mark.parametrize(
    ("patches", "buffer"),
    [(_lean(), moto_patches._JoinedBytes), (_on_disk, tempfile.SpooledTemporaryFile)],
    ids=["in memory", "parts on disk"],
)
def test_a_completed_upload_shares_its_parts_bytes_when_they_are_in_memory(
    patches: S3Patches, buffer: type
) -> None:
    with _s3(patches) as (s3, key_id):
        upload_id, parts = _start(s3, key_id)
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key=OBJECT_KEY, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

        assert isinstance(_stored_object()._value_buffer, buffer)


def test_a_range_is_read_without_reading_the_whole_object() -> None:
    with _s3(_lean()) as (s3, key_id):
        upload_id, parts = _start(s3, key_id)
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key=OBJECT_KEY, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        with mock.patch.object(FakeKey, "value", new_callable=mock.PropertyMock) as value:
            ranged = s3.get_object(Bucket=BUCKET, Key=OBJECT_KEY, Range="bytes=0-4095")

            assert ranged["Body"].read() == PARTS[0][:4096]
            assert value.call_count == 0
