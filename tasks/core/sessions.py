"""Upload sessions in storage: the session's item in the sessions table and its S3 multipart
upload (what a session is: tasks.contract.sessions).

Every function takes its clients and table or bucket; SDK errors propagate (the caller wraps them
in :func:`tasks.core.aws.storage_errors`), except the ones named here as outcomes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import botocore.exceptions

from tasks.contract import sessions
from tasks.contract.keys import REQUEST_ID_METADATA
from tasks.core import aws

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef
    from mypy_boto3_s3 import S3Client

NO_SUCH_UPLOAD: Final = "NoSuchUpload"
# The owner of sessions opened without a caller id (local mode, which authenticates nobody): a
# DynamoDB key attribute cannot be empty.
ANONYMOUS_CALLER: Final = "anonymous"
_STATE: Final = {"#state": sessions.STATE}
_SESSION_ID_RE: Final = re.compile(sessions.SESSION_ID_PATTERN)


@dataclass(frozen=True)
class Session:
    """One upload session as its item holds it."""

    upload_id: str  # the session's id (the API's uploadId)
    caller: str  # who opened it: only this caller sees it
    product_id: str
    file_name: str
    s3_key: str
    size: int
    part_size: int
    part_count: int
    content_type: str | None  # declared at open; None: detected at commit
    multipart_id: str  # S3's UploadId
    state: str
    created_at: int  # epoch seconds
    expires_at: int  # epoch seconds

    def is_open(self, now: int) -> bool:
        return self.state == sessions.OPEN and now < self.expires_at

    def part_bytes(self, part_number: int) -> int:
        return sessions.part_bytes(self.size, self.part_size, part_number)

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            sessions.PARTITION_KEY: {"S": self.upload_id},
            "caller": {"S": self.caller},
            "productId": {"S": self.product_id},
            "fileName": {"S": self.file_name},
            "s3Key": {"S": self.s3_key},
            "size": {"N": str(self.size)},
            "partSize": {"N": str(self.part_size)},
            "partCount": {"N": str(self.part_count)},
            "multipartId": {"S": self.multipart_id},
            sessions.STATE: {"S": self.state},
            "createdAt": {"N": str(self.created_at)},
            sessions.EXPIRES_AT: {"N": str(self.expires_at)},
            sessions.DELETE_AT: {"N": str(self.expires_at + sessions.KEEP_CLOSED_SECONDS)},
        }
        if self.content_type is not None:
            item["contentType"] = {"S": self.content_type}
        if self.state == sessions.OPEN:
            item[sessions.OPEN_CALLER] = {"S": self.caller}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Session:
        def text(name: str) -> str:
            return aws.string_attribute(item, name) or ""

        def number(name: str) -> int:
            return int(aws.number_attribute(item, name) or 0)

        return cls(
            upload_id=text(sessions.PARTITION_KEY),
            caller=text("caller"),
            product_id=text("productId"),
            file_name=text("fileName"),
            s3_key=text("s3Key"),
            size=number("size"),
            part_size=number("partSize"),
            part_count=number("partCount"),
            content_type=aws.string_attribute(item, "contentType"),
            multipart_id=text("multipartId"),
            state=text(sessions.STATE),
            created_at=number("createdAt"),
            expires_at=number(sessions.EXPIRES_AT),
        )


@dataclass(frozen=True)
class Part:
    """A part S3 holds for a multipart upload."""

    number: int
    size: int
    sha256: str | None  # hex; None if S3 kept no SHA-256 for it
    etag: str


def hex_to_base64(digest: str) -> str:
    return base64.b64encode(bytes.fromhex(digest)).decode("ascii")


def base64_to_hex(digest: str) -> str | None:
    try:
        raw = base64.b64decode(digest, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None  # a SHA-256 digest is 32 bytes


# -- the sessions table ------------------------------------------------------------------------


def is_session_id(text: str) -> bool:
    """Whether ``text`` can be a session's id (the id of the request that opened it)."""
    return _SESSION_ID_RE.fullmatch(text) is not None


def owner(caller: str | None) -> str:
    """Whom a session belongs to: the API's caller id (IAM principal or API key id)."""
    return caller or ANONYMOUS_CALLER


def open_sessions(dynamodb: DynamoDBClient, table: str, *, caller: str, now: int) -> int:
    """How many sessions ``caller`` holds open and unexpired (the sparse index; it may lag a
    moment behind, so the limit holds up to a few concurrent opens)."""
    count = 0
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        IndexName=sessions.OPEN_INDEX,
        KeyConditionExpression="#caller = :caller AND #expiresAt > :now",
        ExpressionAttributeNames={
            "#caller": sessions.OPEN_CALLER,
            "#expiresAt": sessions.EXPIRES_AT,
        },
        ExpressionAttributeValues={":caller": {"S": caller}, ":now": {"N": str(now)}},
        Select="COUNT",
    )
    for page in pages:
        count += int(page.get("Count", 0))
    return count


def put_session(dynamodb: DynamoDBClient, table: str, session: Session) -> None:
    dynamodb.put_item(
        TableName=table,
        Item=session.to_item(),
        ConditionExpression="attribute_not_exists(#pk)",
        ExpressionAttributeNames={"#pk": sessions.PARTITION_KEY},
    )


def read_session(
    dynamodb: DynamoDBClient, table: str, upload_id: str, *, caller: str
) -> Session | None:
    """The session, if it exists and belongs to ``caller`` (else None: another caller's session
    is as absent as one that never existed)."""
    session = read_any(dynamodb, table, upload_id)
    return session if session is not None and session.caller == caller else None


def read_any(dynamodb: DynamoDBClient, table: str, upload_id: str) -> Session | None:
    """The session whoever owns it (the workflow's own steps, not a caller's request)."""
    item = dynamodb.get_item(
        TableName=table,
        Key={sessions.PARTITION_KEY: {"S": upload_id}},
        ConsistentRead=True,
    ).get("Item")
    return Session.from_item(dict(item)) if item else None


def mark_aborted(dynamodb: DynamoDBClient, table: str, session: Session) -> bool:
    """OPEN -> ABORTED (it leaves the open index). False when it was no longer OPEN."""
    return aws.conditional_write(
        lambda: dynamodb.update_item(
            TableName=table,
            Key={sessions.PARTITION_KEY: {"S": session.upload_id}},
            UpdateExpression="SET #state = :aborted REMOVE #openCaller",
            ConditionExpression="#state = :open",
            ExpressionAttributeNames={**_STATE, "#openCaller": sessions.OPEN_CALLER},
            ExpressionAttributeValues={
                ":aborted": {"S": sessions.ABORTED},
                ":open": {"S": sessions.OPEN},
            },
        )
    )


# -- the S3 multipart upload -------------------------------------------------------------------


def create_multipart(s3: S3Client, *, bucket: str, key_arn: str, session: Session) -> str:
    """Start the session's multipart upload at its final key; returns S3's UploadId. The
    version it completes into carries the session id where an inline upload's carries its request
    id (tasks.contract.keys.REQUEST_ID_METADATA): compensation and the sweep find it by it."""
    response = s3.create_multipart_upload(
        Bucket=bucket,
        Key=session.s3_key,
        ContentType=session.content_type or "application/octet-stream",
        ChecksumAlgorithm="SHA256",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_arn,
        BucketKeyEnabled=True,
        Metadata={REQUEST_ID_METADATA: session.upload_id, "product-id": session.product_id},
    )
    return response["UploadId"]


def held_parts(s3: S3Client, *, bucket: str, session: Session) -> list[Part] | None:
    """The parts S3 holds for the session, by part number; None when the multipart upload is
    gone (completed or aborted)."""
    parts: list[Part] = []
    try:
        for page in _part_pages(s3, bucket, session):
            for part in page.get("Parts", []):
                checksum = part.get("ChecksumSHA256")
                parts.append(
                    Part(
                        number=int(part["PartNumber"]),
                        size=int(part["Size"]),
                        sha256=base64_to_hex(checksum) if checksum else None,
                        etag=str(part["ETag"]),
                    )
                )
    except botocore.exceptions.ClientError as exc:
        if aws.error_code(exc) == NO_SUCH_UPLOAD:
            return None
        raise
    return sorted(parts, key=lambda part: part.number)


def _part_pages(s3: S3Client, bucket: str, session: Session) -> Iterator[Any]:
    paginator = s3.get_paginator("list_parts")
    yield from paginator.paginate(Bucket=bucket, Key=session.s3_key, UploadId=session.multipart_id)


def abort_multipart(s3: S3Client, *, bucket: str, session: Session) -> None:
    """Abort the multipart upload (its parts are deleted); one already gone is fine."""
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=session.s3_key, UploadId=session.multipart_id)
    except botocore.exceptions.ClientError as exc:
        if aws.error_code(exc) != NO_SUCH_UPLOAD:
            raise


def presign_part(
    s3: S3Client, *, bucket: str, session: Session, part_number: int, sha256: str, expires: int
) -> tuple[str, dict[str, str]]:
    """A presigned UploadPart URL and the headers the client must send with it: the part's
    SHA-256 and length are signed in, so S3 refuses any other bytes (400 BadDigest)."""
    checksum = hex_to_base64(sha256)
    length = session.part_bytes(part_number)
    url = s3.generate_presigned_url(
        "upload_part",
        Params={
            "Bucket": bucket,
            "Key": session.s3_key,
            "UploadId": session.multipart_id,
            "PartNumber": part_number,
            "ChecksumSHA256": checksum,
            "ContentLength": length,
        },
        ExpiresIn=expires,
    )
    return url, {"x-amz-checksum-sha256": checksum, "content-length": str(length)}


# -- committing (POST /upload with uploadId: tasks.core.commits) -------------------------------


def begin_commit(
    table: str, upload_id: str, request_id: str, *, now: int
) -> TransactWriteItemTypeDef:
    """Store's part of its begin transaction: OPEN (and unexpired) -> COMMITTING by this request,
    or already COMMITTING by it (a retried Store). Leaves the open index: a session being
    committed counts no more against its caller's limit."""
    return {
        "Update": {
            "TableName": table,
            "Key": {sessions.PARTITION_KEY: {"S": upload_id}},
            "UpdateExpression": "SET #state = :committing, #holder = :request REMOVE #openCaller",
            "ConditionExpression": "(#state = :open AND #expiresAt > :now) "
            "OR (#state = :committing AND #holder = :request)",
            "ExpressionAttributeNames": {
                **_STATE,
                "#holder": sessions.HOLDER,
                "#openCaller": sessions.OPEN_CALLER,
                "#expiresAt": sessions.EXPIRES_AT,
            },
            "ExpressionAttributeValues": {
                ":committing": {"S": sessions.COMMITTING},
                ":open": {"S": sessions.OPEN},
                ":request": {"S": request_id},
                ":now": {"N": str(now)},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def commit(table: str, upload_id: str, request_id: str) -> TransactWriteItemTypeDef:
    """Record's part of its commit transaction: COMMITTING by this request -> COMMITTED."""
    return {
        "Update": {
            "TableName": table,
            "Key": {sessions.PARTITION_KEY: {"S": upload_id}},
            "UpdateExpression": "SET #state = :committed",
            "ConditionExpression": "#state = :committing AND #holder = :request",
            "ExpressionAttributeNames": {**_STATE, "#holder": sessions.HOLDER},
            "ExpressionAttributeValues": {
                ":committed": {"S": sessions.COMMITTED},
                ":committing": {"S": sessions.COMMITTING},
                ":request": {"S": request_id},
            },
        }
    }


def release_commit(
    dynamodb: DynamoDBClient, table: str, upload_id: str, request_id: str, *, completed: bool
) -> bool:
    """Compensate's step for a failed commit: back to OPEN when the multipart upload never
    completed (the client may fix what failed and commit again), else ABORTED (its version is
    deleted like any failed upload's). False when this request was not committing it."""
    if completed:
        action = "SET #state = :aborted REMOVE #holder"
        values = {":aborted": {"S": sessions.ABORTED}}
    else:
        action = "SET #state = :open, #openCaller = #caller REMOVE #holder"
        values = {":open": {"S": sessions.OPEN}}
    return aws.conditional_write(
        lambda: dynamodb.update_item(
            TableName=table,
            Key={sessions.PARTITION_KEY: {"S": upload_id}},
            UpdateExpression=action,
            ConditionExpression="#state = :committing AND #holder = :request",
            ExpressionAttributeNames={
                **_STATE,
                "#holder": sessions.HOLDER,
                **({} if completed else {"#openCaller": sessions.OPEN_CALLER, "#caller": "caller"}),
            },
            ExpressionAttributeValues={
                **values,
                ":committing": {"S": sessions.COMMITTING},
                ":request": {"S": request_id},
            },
        )
    )


def complete_multipart(s3: S3Client, *, bucket: str, session: Session, parts: list[Part]) -> str:
    """Complete the multipart upload with exactly ``parts`` (each with its SHA-256, which S3
    checks against the part it holds): the commit point, one call whatever the file's size.
    Returns the new version's id. botocore raises for a 200 whose body is an error
    (CompleteMultipartUpload can answer so)."""
    response = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=session.s3_key,
        UploadId=session.multipart_id,
        MultipartUpload={
            "Parts": [
                {
                    "PartNumber": part.number,
                    "ETag": part.etag,
                    "ChecksumSHA256": hex_to_base64(part.sha256 or ""),
                }
                for part in parts
            ]
        },
    )
    return str(response.get("VersionId") or "")


def read_head(s3: S3Client, *, bucket: str, key: str, version_id: str, length: int) -> bytes:
    """The first ``length`` bytes of one version (a ranged GET: the only read of the file)."""
    response = s3.get_object(
        Bucket=bucket, Key=key, VersionId=version_id, Range=f"bytes=0-{length - 1}"
    )
    head: bytes = response["Body"].read()
    return head
