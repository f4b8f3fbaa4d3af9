"""local.s3_checks: the emulated S3 answers presigned part uploads as S3 does (BadDigest,
SignatureDoesNotMatch, expired, NoSuchUpload) and lists parts with their SHA-256 checksums (from
the digests kept on upload, or hashed, alike), on a real checked moto server."""

from __future__ import annotations

import base64
import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.config import Config

from local.s3_checks import CheckedMotoServer, PartDigests

REGION = "us-east-1"
DATA = b"part bytes " * 100
OTHER = b"other byte " * 100  # as long as DATA


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class Clock:
    """The server's time: now, moved on by ``skew``."""

    def __init__(self) -> None:
        self.skew = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skew


@dataclass
class S3:
    endpoint: str
    client: Any
    bucket: str
    clock: Clock
    digests: PartDigests

    def upload(self) -> tuple[str, str]:
        """A new multipart upload (SHA-256 checksums): its key and upload id."""
        key = f"large/{uuid.uuid4()} a+b"
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"
        )
        return key, created["UploadId"]

    def part_url(
        self, key: str, upload_id: str, *, expires: int = 600, number: int = 1, data: bytes = DATA
    ) -> str:
        """A presigned UploadPart URL for ``data`` as part ``number``, its SHA-256 and length
        signed in."""
        return str(
            self.client.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": number,
                    "ChecksumSHA256": sha256(data),
                    "ContentLength": len(data),
                },
                ExpiresIn=expires,
            )
        )

    def parts(self, key: str, upload_id: str) -> list[Any]:
        listed = self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return list(listed.get("Parts", []))


def client(endpoint: str, access_key: str = "local") -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key="local",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    clock = Clock()
    server = CheckedMotoServer(ip_address="127.0.0.1", port=0, verbose=False, clock=clock)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = S3(endpoint, client(endpoint), f"parts-{uuid.uuid4()}", clock, server.part_digests)
    s3.client.create_bucket(Bucket=s3.bucket)
    yield s3
    # moto's state is per process: leave nothing behind for other tests in it.
    for upload in s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []):
        s3.client.abort_multipart_upload(
            Bucket=s3.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    for item in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", []):
        s3.client.delete_object(Bucket=s3.bucket, Key=item["Key"])
    s3.client.delete_bucket(Bucket=s3.bucket)
    server.stop()


def put(url: str, data: bytes = DATA, checksum: str | None = None) -> requests.Response:
    """The client's PUT of a part to its presigned URL, with the headers signed in it."""
    headers = {"x-amz-checksum-sha256": checksum or sha256(data)}
    return requests.put(url, data=data, headers=headers, timeout=10)


def assert_error(response: requests.Response, status: int, code: str) -> ET.Element:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/xml"
    error = ET.fromstring(response.content)
    assert error.tag == "Error"
    assert error.findtext("Code") == code
    assert error.findtext("Message")
    assert error.findtext("RequestId") == response.headers["x-amz-request-id"]
    return error


def test_part_with_its_checksum_is_stored_and_completes_the_object(s3: S3) -> None:
    key, upload_id = s3.upload()

    _completed(s3, key, upload_id)

    assert s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == DATA
    download = s3.client.generate_presigned_url(
        "get_object", Params={"Bucket": s3.bucket, "Key": key}
    )
    assert requests.get(download, timeout=10).content == DATA


def test_part_whose_bytes_differ_from_its_checksum_is_bad_digest_and_not_stored(s3: S3) -> None:
    key, upload_id = s3.upload()

    response = put(s3.part_url(key, upload_id), data=OTHER, checksum=sha256(DATA))

    error = assert_error(response, 400, "BadDigest")
    assert error.findtext("Message") == (
        "The SHA256 you specified did not match the calculated checksum."
    )
    assert s3.parts(key, upload_id) == []


def _altered_signature(url: str) -> tuple[str, bytes, str]:
    signature = url.rsplit("=", 1)[1]
    return url.replace(signature, signature[::-1]), DATA, sha256(DATA)


def _altered_part_number(url: str) -> tuple[str, bytes, str]:
    return url.replace("partNumber=1", "partNumber=2"), DATA, sha256(DATA)


def _altered_key(url: str) -> tuple[str, bytes, str]:
    return url.replace("/large/", "/larger/"), DATA, sha256(DATA)


def _altered_checksum_header(url: str) -> tuple[str, bytes, str]:
    return url, OTHER, sha256(OTHER)  # the header matches the bytes, not what was signed


def _altered_content_length(url: str) -> tuple[str, bytes, str]:
    return url, DATA + b"!", sha256(DATA + b"!")


@pytest.mark.parametrize(
    "alter",
    [
        _altered_signature,
        _altered_part_number,
        _altered_key,
        _altered_checksum_header,
        _altered_content_length,
    ],
)
def test_altered_presigned_request_does_not_match_its_signature(
    s3: S3, alter: Callable[[str], tuple[str, bytes, str]]
) -> None:
    key, upload_id = s3.upload()
    url, data, checksum = alter(s3.part_url(key, upload_id))

    response = put(url, data=data, checksum=checksum)

    assert_error(response, 403, "SignatureDoesNotMatch")
    assert s3.parts(key, upload_id) == []


def test_expired_presigned_url_is_access_denied(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    key, upload_id = s3.upload()
    url = s3.part_url(key, upload_id, expires=60)
    monkeypatch.setattr(s3.clock, "skew", timedelta(seconds=61))

    response = put(url)

    error = assert_error(response, 403, "AccessDenied")
    assert error.findtext("Message") == "Request has expired"
    assert s3.parts(key, upload_id) == []


def test_unknown_access_key_is_refused(s3: S3) -> None:
    key, upload_id = s3.upload()
    stranger = S3(
        s3.endpoint, client(s3.endpoint, access_key="stranger"), s3.bucket, s3.clock, s3.digests
    )

    response = put(stranger.part_url(key, upload_id))

    assert_error(response, 403, "InvalidAccessKeyId")


def _aborted(s3: S3, key: str, upload_id: str) -> None:
    s3.client.abort_multipart_upload(Bucket=s3.bucket, Key=key, UploadId=upload_id)


def _completed(s3: S3, key: str, upload_id: str) -> None:
    """PUT the one part to its presigned URL (accepted) and complete the upload with it."""
    response = put(s3.part_url(key, upload_id))
    assert response.status_code == 200, response.text
    etag = response.headers["ETag"]
    s3.client.complete_multipart_upload(
        Bucket=s3.bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": etag, "ChecksumSHA256": sha256(DATA)}]
        },
    )


@pytest.mark.parametrize("end", [_aborted, _completed])
def test_part_for_an_ended_upload_is_no_such_upload(
    s3: S3, end: Callable[[S3, str, str], None]
) -> None:
    key, upload_id = s3.upload()
    end(s3, key, upload_id)

    response = put(s3.part_url(key, upload_id))

    error = assert_error(response, 404, "NoSuchUpload")
    assert error.findtext("Message") == (
        "The specified upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed."
    )


def test_part_for_an_upload_of_another_key_is_no_such_upload(s3: S3) -> None:
    key, upload_id = s3.upload()

    response = put(s3.part_url(f"{key}-other", upload_id))

    assert_error(response, 404, "NoSuchUpload")
    assert s3.parts(key, upload_id) == []


def test_sdk_put_object_with_its_checksum_is_stored(s3: S3) -> None:
    key = f"small/{uuid.uuid4()}"

    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=DATA, ChecksumSHA256=sha256(DATA))

    assert s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == DATA


def test_sdk_put_object_with_another_checksum_is_bad_digest(s3: S3) -> None:
    key = f"small/{uuid.uuid4()}"

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=OTHER, ChecksumSHA256=sha256(DATA))

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == "BadDigest"
    assert "Contents" not in s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=key)


def test_list_parts_of_a_sha256_upload_shows_each_parts_checksum(s3: S3) -> None:
    key, upload_id = s3.upload()
    assert put(s3.part_url(key, upload_id)).status_code == 200
    for number, data in ((2, OTHER), (3, b"last")):
        s3.client.upload_part(
            Bucket=s3.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumSHA256=sha256(data),
        )

    listed = s3.parts(key, upload_id)

    assert [(p["PartNumber"], p["Size"], p.get("ChecksumSHA256")) for p in listed] == [
        (1, len(DATA), sha256(DATA)),
        (2, len(OTHER), sha256(OTHER)),
        (3, 4, sha256(b"last")),
    ]
    # A page of the listing (the paginator's requests) carries them too.
    page = s3.client.list_parts(
        Bucket=s3.bucket, Key=key, UploadId=upload_id, MaxParts=1, PartNumberMarker=1
    )
    assert [(p["PartNumber"], p.get("ChecksumSHA256")) for p in page["Parts"]] == [
        (2, sha256(OTHER))
    ]
    assert page["IsTruncated"] is True


def test_list_parts_shows_the_checksum_of_a_replaced_parts_new_bytes(s3: S3) -> None:
    key, upload_id = s3.upload()
    for data in (DATA, OTHER):
        s3.client.upload_part(
            Bucket=s3.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=1,
            Body=data,
            ChecksumSHA256=sha256(data),
        )

    listed = s3.parts(key, upload_id)

    assert [(p["PartNumber"], p.get("ChecksumSHA256")) for p in listed] == [(1, sha256(OTHER))]


def test_list_parts_of_an_upload_without_sha256_checksums_shows_none(s3: S3) -> None:
    key = f"large/{uuid.uuid4()}"
    upload_id = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"]
    s3.client.upload_part(Bucket=s3.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=DATA)

    listed = s3.parts(key, upload_id)

    assert [p["PartNumber"] for p in listed] == [1]
    assert "ChecksumSHA256" not in listed[0]


def test_list_parts_of_an_ended_upload_is_still_no_such_upload(s3: S3) -> None:
    key, upload_id = s3.upload()
    _aborted(s3, key, upload_id)

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3.parts(key, upload_id)

    assert raised.value.response["Error"]["Code"] == "NoSuchUpload"


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _put_parts(s3: S3, key: str, upload_id: str, parts: list[bytes]) -> None:
    for number, data in enumerate(parts, start=1):
        response = put(s3.part_url(key, upload_id, number=number, data=data), data=data)
        assert response.status_code == 200, response.text


def test_list_parts_answers_from_the_digests_kept_on_upload_as_from_the_parts(s3: S3) -> None:
    key, upload_id = s3.upload()
    _put_parts(s3, key, upload_id, [DATA, OTHER])
    s3.client.upload_part(  # without a SHA-256: its digest is not known
        Bucket=s3.bucket, Key=key, UploadId=upload_id, PartNumber=3, Body=b"last"
    )

    kept = s3.parts(key, upload_id)
    s3.digests.forget(upload_id)
    hashed = s3.parts(key, upload_id)

    assert kept == hashed
    assert [(p["PartNumber"], p.get("ChecksumSHA256")) for p in kept] == [
        (1, sha256(DATA)),
        (2, sha256(OTHER)),
        (3, sha256(b"last")),
    ]


def test_list_parts_takes_a_kept_digest_as_it_is(s3: S3) -> None:
    """A kept digest is listed without hashing the part again."""
    key, upload_id = s3.upload()
    _put_parts(s3, key, upload_id, [DATA])
    assert s3.digests.get(upload_id, 1, _etag(DATA)) == hashlib.sha256(DATA).digest()
    s3.digests.remember(upload_id, 1, _etag(DATA), hashlib.sha256(b"kept").digest())

    assert [p.get("ChecksumSHA256") for p in s3.parts(key, upload_id)] == [sha256(b"kept")]


def test_list_parts_hashes_a_part_replaced_without_its_checksum(s3: S3) -> None:
    key, upload_id = s3.upload()
    _put_parts(s3, key, upload_id, [DATA])
    s3.client.upload_part(Bucket=s3.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=OTHER)

    listed = s3.parts(key, upload_id)

    assert [(p["PartNumber"], p.get("ChecksumSHA256")) for p in listed] == [(1, sha256(OTHER))]


@pytest.mark.parametrize("end", [_aborted, _completed])
def test_an_uploads_digests_are_forgotten_when_it_ends(
    s3: S3, end: Callable[[S3, str, str], None]
) -> None:
    key, upload_id = s3.upload()
    _put_parts(s3, key, upload_id, [DATA])
    assert upload_id in s3.digests

    end(s3, key, upload_id)

    assert upload_id not in s3.digests


def test_an_uploads_digests_are_kept_when_its_completion_is_refused(s3: S3) -> None:
    key, upload_id = s3.upload()
    _put_parts(s3, key, upload_id, [DATA])

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3.client.complete_multipart_upload(
            Bucket=s3.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": _etag(OTHER)}]},
        )

    assert raised.value.response["Error"]["Code"] == "InvalidPart"
    assert upload_id in s3.digests
