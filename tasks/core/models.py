"""The task payloads: what the state machine hands each task and what each task returns.

msgspec Structs, converted and checked by :func:`parse_payload` where a payload enters a task; a
task's event is converted and checked in one C call, and importing msgspec costs a few
milliseconds of cold start (README "Performance"). The client's body and its rules are in
:mod:`tasks.core.validation`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from tasks.contract.errors import InvalidTaskInput
from tasks.contract.limits import (
    CALLER_MAX_CHARS,
    CONTENT_TYPE_MAX_CHARS,
    FILE_NAME_MAX_CHARS,
    PRICE_MAX_FRACTION_DIGITS,
    PRODUCT_ID_PATTERN,
    PRODUCT_NAME_MAX_CHARS,
    S3_VERSION_ID_MAX_BYTES,
)
from tasks.contract.sessions import MAX_OBJECT_BYTES

SUCCESS_MESSAGE: Final = "File uploaded successfully"
# A price as validate writes it: plain decimal text, no exponent, below 1e12.
PRICE_TEXT_PATTERN: Final = rf"^(0|[1-9][0-9]{{0,11}})(\.[0-9]{{1,{PRICE_MAX_FRACTION_DIGITS}}})?$"
SHA256_HEX_PATTERN: Final = r"^[0-9a-f]{64}$"


# --- task payloads: what the state machine hands each task (infra/state_machine.py) ---
# msgspec Structs: a task's event is converted and checked in one C call, and importing msgspec
# costs a few milliseconds of cold start (README "Performance").

_RequestId = Annotated[str, Meta(min_length=1, max_length=128)]
_Sha256 = Annotated[str, Meta(pattern=SHA256_HEX_PATTERN)]
_NonEmpty = Annotated[str, Meta(min_length=1)]
_ProductId = Annotated[str, Meta(pattern=PRODUCT_ID_PATTERN)]
_ProductName = Annotated[str, Meta(min_length=1, max_length=PRODUCT_NAME_MAX_CHARS)]
_Attempt = Annotated[int, Meta(ge=0)]
# API Gateway's limit on a whole request line is 8 KiB; a path segment cannot be longer.
PATH_ID_MAX_CHARS: Final = 8192


class Payload(Struct, frozen=True, kw_only=True):
    """A task payload: fields the model does not name are ignored. The constraints are checked
    where a payload enters a task (:func:`parse_payload`), not when a task builds one."""

    def to_dict(self) -> dict[str, Any]:
        """The payload as JSON-ready builtins (what the task returns to the state machine)."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


class UploadMetadata(Payload, frozen=True, kw_only=True):
    """What validate learned; returned to ``$.upload``. A session's commit (``sessionId`` set)
    may not know the whole file's SHA-256 (a file of several parts: None) or its content type
    (none declared: None, detected by store from the file's first bytes)."""

    productId: _ProductId
    productName: _ProductName
    price: Annotated[str, Meta(pattern=PRICE_TEXT_PATTERN)]
    fileName: Annotated[str, Meta(min_length=1, max_length=FILE_NAME_MAX_CHARS)]
    contentType: Annotated[str, Meta(min_length=3, max_length=CONTENT_TYPE_MAX_CHARS)] | None
    # An inline file is at most MAX_FILE_BYTES (validate's rule); a session's up to S3's limit.
    size: Annotated[int, Meta(ge=1, le=MAX_OBJECT_BYTES)]
    sha256: _Sha256 | None
    s3Key: _NonEmpty
    # Only with an Idempotency-Key (tasks.contract.idempotency): the claim's table key (the key
    # scoped to the caller, hashed) and the body's fingerprint; None without the header.
    idempotencyId: _Sha256 | None = None
    fingerprint: _Sha256 | None = None
    # The upload session this request commits (tasks.contract.sessions); None for an inline file.
    sessionId: _RequestId | None = None


class SparsePayload(Payload, frozen=True, kw_only=True):
    """A payload whose optional fields are left out when None (they exist only for some
    uploads: an upload session's)."""

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in super().to_dict().items() if value is not None}


class Checksum(Payload, frozen=True, kw_only=True):
    """The stored object's checksum as S3 keeps it: the whole file's SHA-256 (FULL_OBJECT: a
    single PUT) or S3's composite of the parts' SHA-256 digests (COMPOSITE, ``<base64>-<parts>``:
    a multipart upload, whatever its number of parts)."""

    algorithm: Literal["SHA256"] = "SHA256"
    type: Literal["FULL_OBJECT", "COMPOSITE"]
    value: _NonEmpty


class StoreReceipt(SparsePayload, frozen=True, kw_only=True):
    """What store wrote; returned in the body's place (``$.body``), then moved to ``$.stored``.
    A session's commit adds what only the stored object tells: its content type (as declared
    or detected from its first bytes) and its checksum."""

    bucket: _NonEmpty
    s3Key: _NonEmpty
    versionId: Annotated[str, Meta(min_length=1, max_length=S3_VERSION_ID_MAX_BYTES)]
    contentType: Annotated[str, Meta(min_length=3, max_length=CONTENT_TYPE_MAX_CHARS)] | None = None
    checksum: Checksum | None = None


class SuccessBody(SparsePayload, frozen=True, kw_only=True):
    """The client's 200 body (docs/api.md), returned by record to ``$.receipt``. ``sha256`` is
    left out when unknown (a session of several parts), ``uploadId`` and ``checksum`` for an
    inline file."""

    message: Literal["File uploaded successfully"] = SUCCESS_MESSAGE
    requestId: str
    productId: str
    productName: str
    # The price's exact decimal text: it stays a string through Step Functions (which may read a
    # number as a binary float) and the response template writes it as a JSON number.
    price: Annotated[str, Meta(pattern=PRICE_TEXT_PATTERN)]
    fileName: str
    contentType: str
    size: int
    sha256: str | None
    s3Key: str
    versionId: str
    timestamp: str
    uploadId: str | None = None
    checksum: Checksum | None = None


class CompensationResult(Payload, frozen=True, kw_only=True):
    """Returned to ``$.compensation``."""

    deletedVersionIds: list[str]


class OrphanReport(Payload, frozen=True, kw_only=True):
    """Returned by report to ``$.report``: the versions of the request it found (None: the
    lookup failed; the sweep finds them)."""

    versionIds: list[str] | None


class ValidateEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    idempotencyKey: Any = None
    # Who called (the API's IAM principal id or API key id; "" or None when unknown): scopes the
    # Idempotency-Key.
    caller: Annotated[str, Meta(max_length=CALLER_MAX_CHARS)] | None = None
    # The client's body as the JSON text it sent (numbers parsed by validate, exactly).
    body: str


class StoreEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    upload: UploadMetadata
    # The client's body as JSON text: Store takes the file from it.
    body: str
    # $$.State.RetryCount: 0 on the first attempt, n on the n-th retry.
    attempt: _Attempt = 0
    # $$.Execution.StartTime: bounds the search for an earlier attempt's versions.
    startedAt: str | None = None


class RecordEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    upload: UploadMetadata
    stored: StoreReceipt


class CompensateEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    # $.upload.productId / productName: the metadata item Record may have written.
    productId: _ProductId
    productName: _ProductName
    s3Key: _NonEmpty
    startedAt: str | None = None
    # $.upload.idempotencyId: the claim to release (None without an Idempotency-Key).
    idempotencyId: _Sha256 | None = None
    # $$.State.RetryCount: below TASK_RETRY.max_attempts a retry remains.
    attempt: _Attempt = 0
    # The state that failed (Store or Record) and its error name: whether a write of this
    # request may still be in flight (tasks/compensate.py, step 5).
    failedState: str | None = None
    error: str | None = None
    # $.upload.sessionId: the session whose commit failed (None for an inline file).
    sessionId: _RequestId | None = None


class ReportEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    productId: _ProductId
    productName: _ProductName
    s3Key: _NonEmpty
    startedAt: str | None = None
    # How Compensate ended (its error name).
    error: str | None = None
    sessionId: _RequestId | None = None


class SweepEvent(Payload, frozen=True, kw_only=True):
    # The schedule's execution id (the logs' correlation id); absent when run by hand.
    requestId: str | None = None


class SessionEvent(Payload, frozen=True, kw_only=True):
    """The sessions workflow's input (infra/templates/session_request.vtl)."""

    operation: Literal["open", "parts", "describe", "abort"]
    requestId: _RequestId
    caller: Annotated[str, Meta(max_length=CALLER_MAX_CHARS)] | None = None
    # The path's {uploadId} as the client sent it (None on POST /uploads): any text, since an id
    # that cannot exist is simply not found.
    uploadId: Annotated[str, Meta(min_length=1, max_length=PATH_ID_MAX_CHARS)] | None = None
    # The client's JSON text ("" for GET and DELETE).
    body: str = ""


PayloadT = TypeVar("PayloadT", bound=Payload)

# msgspec names the first problem: "<what> - at `$.path`", or "Object missing required field
# `name`" (with " - at `$.parent`" when nested).
_ERROR_PATH_RE: Final = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING_FIELD_RE: Final = re.compile(r"^Object missing required field `(?P<field>[^`]*)`")


def parse_payload(model: type[PayloadT], event: object) -> PayloadT:
    """Read a task's event; a malformed one is a wiring fault (:class:`InvalidTaskInput`), named
    by its field path only (no values: the event may carry the file)."""
    try:
        return msgspec.convert(event, model)
    except msgspec.ValidationError as exc:
        raise InvalidTaskInput(
            f"The task's input does not match {model.__name__}: {error_path(str(exc))}"
        ) from None


def error_path(message: str) -> str:
    """The field path a msgspec validation message names (``<event>`` for the event itself)."""
    located = _ERROR_PATH_RE.search(message)
    parts = [located["path"]] if located and located["path"] else []
    missing = _MISSING_FIELD_RE.match(message)
    if missing:
        parts.append(missing["field"])
    return ".".join(parts) or "<event>"
