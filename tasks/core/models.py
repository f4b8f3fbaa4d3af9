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
    MAX_FILE_BYTES,
    PRICE_MAX_FRACTION_DIGITS,
    PRODUCT_ID_PATTERN,
    PRODUCT_NAME_MAX_CHARS,
    S3_VERSION_ID_MAX_BYTES,
)

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


class Payload(Struct, frozen=True, kw_only=True):
    """A task payload: fields the model does not name are ignored. The constraints are checked
    where a payload enters a task (:func:`parse_payload`), not when a task builds one."""

    def to_dict(self) -> dict[str, Any]:
        """The payload as JSON-ready builtins (what the task returns to the state machine)."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


class UploadMetadata(Payload, frozen=True, kw_only=True):
    """What validate learned; returned to ``$.upload``."""

    productId: _ProductId
    productName: _ProductName
    price: Annotated[str, Meta(pattern=PRICE_TEXT_PATTERN)]
    fileName: Annotated[str, Meta(min_length=1, max_length=FILE_NAME_MAX_CHARS)]
    contentType: Annotated[str, Meta(min_length=3, max_length=CONTENT_TYPE_MAX_CHARS)]
    size: Annotated[int, Meta(ge=1, le=MAX_FILE_BYTES)]
    sha256: _Sha256
    s3Key: _NonEmpty
    # Only with an Idempotency-Key (tasks.contract.idempotency): the claim's table key (the key
    # scoped to the caller, hashed) and the body's fingerprint; None without the header.
    idempotencyId: _Sha256 | None = None
    fingerprint: _Sha256 | None = None


class StoreReceipt(Payload, frozen=True, kw_only=True):
    """What store wrote; returned in the body's place (``$.body``), then moved to ``$.stored``."""

    bucket: _NonEmpty
    s3Key: _NonEmpty
    versionId: Annotated[str, Meta(min_length=1, max_length=S3_VERSION_ID_MAX_BYTES)]


class SuccessBody(Payload, frozen=True, kw_only=True):
    """The client's 200 body (docs/api.md), returned by record to ``$.receipt``."""

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
    sha256: str
    s3Key: str
    versionId: str
    timestamp: str


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
    # request may still be in flight (tasks/compensate.py, step 4).
    failedState: str | None = None
    error: str | None = None


class ReportEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    productId: _ProductId
    productName: _ProductName
    s3Key: _NonEmpty
    startedAt: str | None = None
    # How Compensate ended (its error name).
    error: str | None = None


class SweepEvent(Payload, frozen=True, kw_only=True):
    # The schedule's execution id (the logs' correlation id); absent when run by hand.
    requestId: str | None = None


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
