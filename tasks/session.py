"""Session task: the upload sessions' routes (tasks.contract.sessions), one operation per call.

Event: {"operation", "requestId", "caller", "uploadId", "body"} (SessionEvent: operation is
``open`` for ``POST /uploads``, ``parts`` for ``POST /uploads/{uploadId}/parts``, ``describe`` for
``GET /uploads/{uploadId}``, ``abort`` for ``DELETE /uploads/{uploadId}``; body is the client's
JSON text); returns the client's body (docs/api.md "Large files"). Env: UPLOAD_BUCKET_NAME,
UPLOAD_KEY_ARN, SESSIONS_TABLE_NAME, MAX_UPLOAD_BYTES, MAX_OPEN_SESSIONS, ALLOWED_CONTENT_TYPES.
Raises ValidationError, PayloadTooLarge, SessionNotFound, SessionNotOpen, TooManySessions
(client errors), TransientStorageError, StorageError, InvalidTaskInput.

A session belongs to the caller that opened it (the API's IAM principal or API key id, the scope
of an Idempotency-Key): any other caller gets SessionNotFound, as for an id that never existed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from tasks.contract import names, sessions
from tasks.contract.content_types import policy_from_env
from tasks.contract.errors import (
    SESSION_NOT_FOUND_MESSAGE,
    InvalidTaskInput,
    RequestRejected,
    SessionNotFound,
    SessionNotOpen,
    TooManySessions,
)
from tasks.contract.keys import object_key
from tasks.core import aws
from tasks.core import sessions as store
from tasks.core.entry import lambda_handler, task_input
from tasks.core.models import SessionEvent
from tasks.core.observability import logger
from tasks.core.session_rules import parse_open, parse_parts
from tasks.core.validation import parse_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

TASK = names.SESSION
NOT_OPEN_MESSAGE: Final = "The upload session is {state}: it takes no more parts."


@dataclass(frozen=True)
class Context:
    """What every operation works with: the request, the clients and the settings."""

    request_id: str
    caller: str
    dynamodb: DynamoDBClient
    s3: S3Client
    table: str
    bucket: str
    env: Mapping[str, str]
    now: int


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_session(ctx: Context, body: str) -> dict[str, Any]:
    """``POST /uploads``: the rules, the caller's open-session limit, the multipart upload, then
    the session's item (an item is written only for a multipart upload that exists)."""
    request = parse_open(
        parse_body(body),
        max_bytes=int(ctx.env.get(names.MAX_UPLOAD_BYTES) or sessions.DEFAULT_MAX_UPLOAD_BYTES),
        policy=policy_from_env(ctx.env.get(names.ALLOWED_CONTENT_TYPES)),
    )
    limit = int(ctx.env.get(names.MAX_OPEN_SESSIONS) or sessions.DEFAULT_MAX_OPEN_SESSIONS)
    with aws.storage_errors("Counting the open upload sessions"):
        held = store.open_sessions(ctx.dynamodb, ctx.table, caller=ctx.caller, now=ctx.now)
    if held >= limit:
        raise TooManySessions(
            f"You already hold {held} open upload sessions (at most {limit}); commit or abort "
            "one, or wait until one expires."
        )
    part_size, part_count = sessions.part_plan(request.size, request.partSize)
    session = store.Session(
        upload_id=ctx.request_id,
        caller=ctx.caller,
        product_id=request.productId,
        file_name=request.fileName,
        s3_key=object_key(request.productId, request.fileName),
        size=request.size,
        part_size=part_size,
        part_count=part_count,
        content_type=request.contentType,
        multipart_id="",
        state=sessions.OPEN,
        created_at=ctx.now,
        expires_at=ctx.now + sessions.SESSION_SECONDS,
    )
    key_arn = aws.required_setting(ctx.env, names.UPLOAD_KEY_ARN)
    with aws.storage_errors("Opening the upload session", write=True):
        multipart_id = store.create_multipart(
            ctx.s3, bucket=ctx.bucket, key_arn=key_arn, session=session
        )
    session = replace(session, multipart_id=multipart_id)
    with _abort_on_failure(ctx, session), aws.storage_errors("Opening the upload session"):
        store.put_session(ctx.dynamodb, ctx.table, session)
    logger.info(
        "Upload session opened",
        extra={"uploadId": session.upload_id, "s3Key": session.s3_key, "size": session.size},
    )
    return {
        "uploadId": session.upload_id,
        "s3Key": session.s3_key,
        "partSize": session.part_size,
        "partCount": session.part_count,
        "expiresAt": iso(session.expires_at),
        "requestId": ctx.request_id,
    }


@contextmanager
def _abort_on_failure(ctx: Context, session: store.Session) -> Iterator[None]:
    """A session whose item could not be written is aborted at once: no multipart upload stays
    behind that no session names (the bucket's lifecycle rule is the backstop if this fails)."""
    try:
        yield
    except Exception:
        with suppress(*aws.SDK_ERRORS):
            store.abort_multipart(ctx.s3, bucket=ctx.bucket, session=session)
        raise


def sign_parts(ctx: Context, upload_id: str, body: str) -> dict[str, Any]:
    """``POST /uploads/{uploadId}/parts``: a presigned URL per part, valid for an hour at most and
    never past the session's expiry."""
    session = _open_session(ctx, upload_id)
    parts = parse_parts(parse_body(body), part_count=session.part_count)
    expires = min(sessions.PART_URL_SECONDS, session.expires_at - ctx.now)
    signer = aws.s3_client(ctx.env, presign=True)
    signed = []
    for part in parts:
        url, headers = store.presign_part(
            signer,
            bucket=ctx.bucket,
            session=session,
            part_number=part.partNumber,
            sha256=part.sha256,
            expires=expires,
        )
        signed.append({"partNumber": part.partNumber, "url": url, "headers": headers})
    logger.info("Part URLs signed", extra={"uploadId": upload_id, "parts": len(signed)})
    return {
        "uploadId": upload_id,
        "parts": signed,
        "expiresAt": iso(ctx.now + expires),
        "requestId": ctx.request_id,
    }


def describe(ctx: Context, upload_id: str) -> dict[str, Any]:
    """``GET /uploads/{uploadId}``: the session and the parts S3 holds (to resume)."""
    session = _session(ctx, upload_id)
    parts: list[store.Part] = []
    if session.state == sessions.OPEN:
        with aws.storage_errors("Listing the session's parts"):
            parts = store.held_parts(ctx.s3, bucket=ctx.bucket, session=session) or []
    state = session.state
    if state == sessions.OPEN and not session.is_open(ctx.now):
        state = sessions.EXPIRED
    return {
        "uploadId": upload_id,
        "state": state,
        "s3Key": session.s3_key,
        "size": session.size,
        "partSize": session.part_size,
        "partCount": session.part_count,
        "parts": [
            {"partNumber": part.number, "size": part.size, "sha256": part.sha256} for part in parts
        ],
        "expiresAt": iso(session.expires_at),
        "requestId": ctx.request_id,
    }


def abort(ctx: Context, upload_id: str) -> dict[str, Any]:
    """``DELETE /uploads/{uploadId}``: the multipart upload aborted (its parts deleted) and the
    session ABORTED. Aborting an aborted session again answers the same."""
    session = _session(ctx, upload_id)
    if session.state not in (sessions.OPEN, sessions.ABORTED):
        raise SessionNotOpen(f"The upload session is {session.state}: it cannot be aborted.")
    with aws.storage_errors("Aborting the upload session"):
        store.abort_multipart(ctx.s3, bucket=ctx.bucket, session=session)
        if session.state == sessions.OPEN:
            store.mark_aborted(ctx.dynamodb, ctx.table, session)
    logger.info("Upload session aborted", extra={"uploadId": upload_id})
    return {"uploadId": upload_id, "state": sessions.ABORTED, "requestId": ctx.request_id}


def _session(ctx: Context, upload_id: str) -> store.Session:
    if not store.is_session_id(upload_id):
        raise SessionNotFound(SESSION_NOT_FOUND_MESSAGE)
    with aws.storage_errors("Reading the upload session"):
        session = store.read_session(ctx.dynamodb, ctx.table, upload_id, caller=ctx.caller)
    if session is None:
        raise SessionNotFound(SESSION_NOT_FOUND_MESSAGE)
    return session


def _open_session(ctx: Context, upload_id: str) -> store.Session:
    session = _session(ctx, upload_id)
    if not session.is_open(ctx.now):
        state = sessions.EXPIRED if session.state == sessions.OPEN else session.state
        raise SessionNotOpen(NOT_OPEN_MESSAGE.format(state=state))
    return session


def dispatch(payload: SessionEvent, ctx: Context) -> dict[str, Any]:
    if payload.operation == "open":
        return open_session(ctx, payload.body)
    if payload.uploadId is None:
        raise InvalidTaskInput(f"{payload.operation} needs an uploadId")
    if payload.operation == "parts":
        return sign_parts(ctx, payload.uploadId, payload.body)
    if payload.operation == "describe":
        return describe(ctx, payload.uploadId)
    return abort(ctx, payload.uploadId)


def run(
    event: dict[str, Any], *, env: Mapping[str, str], clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """One operation on a session, with settings and endpoint taken from ``env``."""
    with task_input(TASK, SessionEvent, event, env) as payload:
        ctx = Context(
            request_id=payload.requestId,
            caller=store.owner(payload.caller),
            dynamodb=aws.dynamodb_client(env),
            s3=aws.s3_client(env),
            table=aws.required_setting(env, names.SESSIONS_TABLE_NAME),
            bucket=aws.required_setting(env, names.UPLOAD_BUCKET_NAME),
            env=env,
            now=int(clock()),
        )
        try:
            return dispatch(payload, ctx)
        except RequestRejected as exc:
            # Logged, not counted: the Rejections metric is the upload workflow's (its alarm).
            logger.info(
                "Request rejected",
                extra={"reason": type(exc).__name__, "operation": payload.operation},
            )
            raise


handler = lambda_handler(run)
