"""Committing an upload session: ``POST /upload`` with ``uploadId`` instead of ``fileContent``
(tasks.contract.sessions), through the same workflow as an inline upload.

- Validate (:func:`validate_commit`) checks the body with the inline rules, then reads the
  session (this caller's, OPEN and unexpired) and the parts S3 holds: contiguous 1..N, each the
  size the session's plan says, each with its SHA-256. A refusal is a 400 (a 404 or 409 for the
  session itself) that leaves the session OPEN: the client can fix it and commit again.
- Store (:func:`complete`) completes the multipart upload, the commit point, then reads the
  object's first bytes (:data:`HEAD_BYTES`, the only read of the file) to check its content
  type; a contradiction is a ContentMismatch, which the workflow compensates (nothing remains)
  before answering 400.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from tasks.contract import names, sessions
from tasks.contract.content_types import ContentTypePolicy
from tasks.contract.errors import (
    SESSION_NOT_FOUND_MESSAGE,
    ContentMismatch,
    FieldProblem,
    InvalidTaskInput,
    SessionNotFound,
    SessionNotOpen,
    StorageError,
    ValidationError,
)
from tasks.contract.timing import SESSION_READ_SDK
from tasks.core.models import Checksum, UploadMetadata
from tasks.core.validation import (
    INVALID_BODY_MESSAGE,
    MAX_REPORTED_PROBLEMS,
    UploadRequest,
    check_request,
    content_of,
    with_idempotency,
)

if TYPE_CHECKING:  # botocore is imported only by a commit: an inline validate never loads it
    from mypy_boto3_s3 import S3Client

    from tasks.core.sessions import Part, Session

# Enough for every signature the content detection knows that sits at the start of a file.
HEAD_BYTES: Final = 4096


def validate_commit(
    request_id: str,
    body: Mapping[str, object],
    idempotency_key: object,
    caller: str | None,
    *,
    policy: ContentTypePolicy,
    env: Mapping[str, str],
    clock: Callable[[], float] = time.time,
) -> UploadMetadata:
    """Validate's work for a commit (module doc); the only AWS reads validate ever makes."""
    from tasks.core import aws
    from tasks.core import sessions as store

    request, _ = check_request(body, idempotency_key, policy=policy)
    upload_id = str(request.uploadId)
    bucket = aws.required_setting(env, names.UPLOAD_BUCKET_NAME)
    with aws.storage_errors("Reading the upload session"):
        session = store.read_session(
            aws.dynamodb_client(env, SESSION_READ_SDK),
            aws.required_setting(env, names.SESSIONS_TABLE_NAME),
            upload_id,
            caller=store.owner(caller),
        )
        parts = None
        if session is not None and session.state == sessions.OPEN:
            parts = store.held_parts(
                aws.s3_client(env, SESSION_READ_SDK), bucket=bucket, session=session
            )
    upload = describe_commit(
        request_id,
        request,
        session,
        parts,
        now=int(clock()),
        replayable=isinstance(idempotency_key, str),
    )
    return with_idempotency(upload, body, idempotency_key, caller)


def describe_commit(
    request_id: str,
    request: UploadRequest,
    session: Session | None,
    parts: list[Part] | None,
    *,
    now: int,
    replayable: bool,
) -> UploadMetadata:
    """The commit's metadata, or why it is refused. A session already committing or committed
    is let through only with an Idempotency-Key (``replayable``): store replays the first
    answer for the same key and body, and refuses anything else (409)."""
    if session is None:
        raise SessionNotFound(SESSION_NOT_FOUND_MESSAGE)
    busy = session.state in (sessions.COMMITTING, sessions.COMMITTED)
    if not (session.is_open(now) or (busy and replayable)):
        state = sessions.EXPIRED if session.state == sessions.OPEN else session.state
        raise SessionNotOpen(f"The upload session is {state}: it cannot be committed.")
    problems = _mismatches(request, session)
    if session.state == sessions.OPEN:
        problems.extend(part_problems(session, parts))
    if problems:
        raise ValidationError(INVALID_BODY_MESSAGE, problems[:MAX_REPORTED_PROBLEMS])
    whole = parts[0].sha256 if parts and session.part_count == 1 else None
    return UploadMetadata(
        productId=session.product_id,
        productName=request.productName,
        price=request.price,
        fileName=session.file_name,
        contentType=request.contentType or session.content_type,
        size=session.size,
        sha256=whole,
        s3Key=session.s3_key,
        sessionId=session.upload_id,
    )


def _mismatches(request: UploadRequest, session: Session) -> list[FieldProblem]:
    """The body's fields that contradict the session (fileName and contentType may be left
    out: the session's apply)."""
    problems = []
    if request.productId != session.product_id:
        problems.append(FieldProblem("productId", "must be the upload session's productId"))
    if request.fileName is not None and request.fileName != session.file_name:
        problems.append(FieldProblem("fileName", "must be the upload session's fileName"))
    declared = session.content_type
    if request.contentType is not None and declared is not None and request.contentType != declared:
        problems.append(
            FieldProblem("contentType", f"must be the upload session's contentType ({declared})")
        )
    return problems


def part_problems(session: Session, parts: list[Part] | None) -> list[FieldProblem]:
    """What is wrong with the parts S3 holds: every part 1..N present, each of the planned size,
    each with its SHA-256 (the file is exactly the session's size then)."""
    if parts is None:
        return [FieldProblem("uploadId", "the upload session's parts are gone")]
    held = {part.number: part for part in parts}
    problems = [
        FieldProblem("uploadId", f"part {number} is beyond the session's {session.part_count}")
        for number in held
        if number > session.part_count
    ]
    for number in range(1, session.part_count + 1):
        part = held.get(number)
        expected = session.part_bytes(number)
        if part is None:
            problems.append(FieldProblem("uploadId", f"part {number} is missing"))
        elif part.size != expected:
            problems.append(
                FieldProblem("uploadId", f"part {number} is {part.size} bytes, not {expected}")
            )
        elif part.sha256 is None:
            problems.append(FieldProblem("uploadId", f"part {number} has no SHA-256 checksum"))
    return problems


def complete(
    s3: S3Client, *, bucket: str, session: Session, parts: list[Part]
) -> tuple[str, Checksum]:
    """Complete the session's multipart upload: the new version's id and its checksum."""
    from tasks.core import sessions as store

    version_id = store.complete_multipart(s3, bucket=bucket, session=session, parts=parts)
    if not version_id or version_id == "null":
        raise StorageError("Storing the file failed.")  # an unversioned bucket
    return version_id, checksum_of(parts)


def checksum_of(parts: list[Part]) -> Checksum:
    """The object's SHA-256 checksum as S3 keeps it for these parts (each checked by S3 against
    its part): a multipart upload's SHA-256 is always S3's composite,
    ``base64(sha256(the parts' raw digests)) + "-" + count``, a single part's too (S3 keeps a
    full-object SHA-256 only for a single PUT; the whole file's SHA-256 of a one-part session is
    its ``sha256``)."""
    digests = b"".join(bytes.fromhex(part.sha256 or "") for part in parts)
    composite = base64.b64encode(hashlib.sha256(digests).digest()).decode("ascii")
    return Checksum(type="COMPOSITE", value=f"{composite}-{len(parts)}")


def checked_content_type(head: bytes, declared: str | None, policy: ContentTypePolicy) -> str:
    """The stored file's content type from its first bytes (declared, else detected), or a
    ContentMismatch naming the problem."""
    if not head:
        raise InvalidTaskInput("the stored file has no first bytes")
    content_type, problem = content_of(head, declared, policy, head=True)
    if problem is not None:
        raise ContentMismatch(INVALID_BODY_MESSAGE, [FieldProblem("contentType", problem)])
    return content_type
