"""Typed shapes: the client's request body, the task payloads and the success body.

The request model enforces CONTRACT.md's field rules; each rule raises ``ValueError`` with the
client-facing message, and pydantic collects every field's problem in one pass.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from decimal import (
    Clamped,
    Context,
    Decimal,
    DecimalException,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Underflow,
)
from typing import Annotated, Any, Final, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from tasks.core.content_types import is_valid_content_type
from tasks.core.errors import InvalidTaskInput
from tasks.core.keys import PRODUCT_ID_RE
from tasks.core.limits import (
    CALLER_MAX_CHARS,
    CONTENT_TYPE_MAX_CHARS,
    FILE_NAME_MAX_CHARS,
    IDEMPOTENCY_KEY_MAX_CHARS,
    MAX_FILE_BYTES,
    PRICE_UPPER_BOUND,
    PRODUCT_ID_PATTERN,
    PRODUCT_NAME_MAX_CHARS,
    S3_VERSION_ID_MAX_BYTES,
)

SUCCESS_MESSAGE: Final = "File uploaded successfully"

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE_RE: Final = re.compile(r"[\ud800-\udfff]")
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_VISIBLE_ASCII_RE: Final = re.compile(r"[\x21-\x7e]+")
# DynamoDB numbers: at most 38 significant digits, a non-zero magnitude from 1E-130 to
# 9.9999999999999999999999999999999999999E+125 (the upper end is far above PRICE_UPPER_BOUND).
_MAX_PRICE_DIGITS: Final = 38
_SMALLEST_PRICE: Final = Decimal("1E-130")
# boto3's serializer (boto3.dynamodb.types.DYNAMODB_CONTEXT, mirrored here so validate does not
# import boto3) converts every number in this context and refuses any that it would round or
# clamp: its smallest exponent is Emin - prec + 1 = -165, so the last digit of a stored price
# is at most 165 places after the point.
_DYNAMODB_CONTEXT: Final = Context(
    Emin=-128,
    Emax=126,
    prec=_MAX_PRICE_DIGITS,
    traps=[Clamped, Overflow, Inexact, Rounded, Underflow],
)
_MAX_PRICE_FRACTION_DIGITS: Final = 165
PRICE_TEXT_PATTERN: Final = rf"^(0|[1-9][0-9]{{0,11}})(\.[0-9]{{1,{_MAX_PRICE_FRACTION_DIGITS}}})?$"
SHA256_HEX_PATTERN: Final = r"^[0-9a-f]{64}$"


# --- field rules (each returns the clean value or raises ValueError with the client message) ---


def _require_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _check_text(value: str) -> None:
    if _SURROGATE_RE.search(value):
        raise ValueError("must be valid Unicode text (no unpaired surrogates)")
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters (U+0000-U+001F, U+007F)")


def check_product_id(value: object) -> str:
    text = _require_str(value)
    if PRODUCT_ID_RE.fullmatch(text) is None:
        raise ValueError(f"must match {PRODUCT_ID_PATTERN}")
    return text


def check_product_name(value: object) -> str:
    text = _require_str(value)
    if not 1 <= len(text) <= PRODUCT_NAME_MAX_CHARS:
        raise ValueError(f"must be 1 to {PRODUCT_NAME_MAX_CHARS} characters long")
    _check_text(text)
    return text


def price_text(value: object) -> str:
    """The exact decimal text of a JSON number as the event's parser produced it.

    ``json`` gives ``int`` or ``float``; ``repr(float)`` is the shortest text that reads back as
    the same float, i.e. what the client wrote (up to 17 significant digits).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a JSON number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:  # pragma: no cover - int/float/Decimal always convert
        raise ValueError("must be a JSON number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if number < 0:
        raise ValueError("must be at least 0")
    if number >= PRICE_UPPER_BOUND:
        raise ValueError(f"must be less than {PRICE_UPPER_BOUND}")
    # DynamoDB's number rules (record would fail after the file was stored, giving a 500).
    if len(number.as_tuple().digits) > _MAX_PRICE_DIGITS:
        raise ValueError(
            f"must have at most {_MAX_PRICE_DIGITS} significant digits (DynamoDB's precision)"
        )
    if not number.is_zero() and number < _SMALLEST_PRICE:
        raise ValueError("must be 0 or at least 1E-130 (the smallest number DynamoDB can store)")
    try:
        _DYNAMODB_CONTEXT.create_decimal(number)
    except DecimalException:
        # Only a Decimal spelled with more places than JSON numbers parse to reaches this (e.g.
        # 38 digits just above 1E-130, or 0E-400): DynamoDB could not hold it exactly.
        raise ValueError("must be a number DynamoDB can store exactly") from None
    if number.is_zero():
        number = number.copy_abs()  # -0 and -0.0 are 0
    return format(number, "f")


def decoded_size_bound(text: str) -> int:
    """The number of bytes ``text`` decodes to if it is valid base64 (an upper bound otherwise),
    computed without decoding."""
    padding = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return -(-len(text) // 4) * 3 - padding


def decode_file_content(value: object) -> bytes:
    text = _require_str(value)
    if not text:
        raise ValueError("must not be empty (the file has no bytes)")
    if len(text) % 4 or _BASE64_RE.fullmatch(text) is None:
        raise ValueError(
            "must be standard base64 (A-Z, a-z, 0-9, '+', '/', '=' padding, no whitespace)"
        )
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(
            "must be standard base64 (A-Z, a-z, 0-9, '+', '/', '=' padding, no whitespace)"
        ) from None
    # Canonical form only: the unused bits of the last quantum must be zero.
    tail = text[-4:].encode("ascii")
    if base64.b64encode(base64.b64decode(tail)) != tail:
        raise ValueError("must be canonical base64 (the unused bits of the last group are not 0)")
    if not data:
        raise ValueError("must not be empty (the file has no bytes)")
    if len(data) > MAX_FILE_BYTES:  # pragma: no cover - the size check before decoding catches it
        raise ValueError(f"must decode to at most {MAX_FILE_BYTES} bytes")
    return data


def check_file_name(value: object) -> str | None:
    if value is None:
        return None
    text = _require_str(value)
    if not 1 <= len(text) <= FILE_NAME_MAX_CHARS:
        raise ValueError(f"must be 1 to {FILE_NAME_MAX_CHARS} characters long")
    if "/" in text or "\\" in text:
        raise ValueError("must not contain '/' or '\\'")
    _check_text(text)
    if text in (".", ".."):
        raise ValueError("must not be '.' or '..'")
    if text != text.strip(" "):
        raise ValueError("must not start or end with a space")
    return text


def check_content_type(value: object) -> str | None:
    if value is None:
        return None
    text = _require_str(value)
    if not is_valid_content_type(text):
        raise ValueError(
            "must be a MIME type 'type/subtype' (token characters, at most 127 each, no parameters)"
        )
    return text


def check_idempotency_key(value: object) -> str | None:
    if value is None:
        return None
    text = _require_str(value)
    if len(text) > IDEMPOTENCY_KEY_MAX_CHARS or _VISIBLE_ASCII_RE.fullmatch(text) is None:
        raise ValueError(
            f"must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters (no spaces)"
        )
    return text


# Every model is declared with ``defer_build=True``: pydantic builds its validator and serializer
# when :func:`build` is called (each task's import, for the models that task uses), so a task's
# cold start pays only for its own models, and still none of it on the first invocation. A model
# used before it was built is built then (same behaviour, later).


def build(*models: type[BaseModel]) -> None:
    """Build ``models``' validators and serializers now (a task calls it at import)."""
    for model in models:
        model.model_rebuild()


# --- the client's request body ---


class UploadRequest(BaseModel):
    """The client's JSON body after every rule passed. ``fileContent`` holds the decoded bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    productId: Annotated[str, PlainValidator(check_product_id)]
    productName: Annotated[str, PlainValidator(check_product_name)]
    price: Annotated[str, PlainValidator(price_text)]
    fileContent: Annotated[bytes, PlainValidator(decode_file_content)]
    fileName: Annotated[str | None, PlainValidator(check_file_name)] = None
    contentType: Annotated[str | None, PlainValidator(check_content_type)] = None


# --- task payloads (see spec/INTERFACES.md, "State machine data flow") ---

_RequestId = Annotated[str, Field(min_length=1, max_length=128)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class UploadMetadata(_Payload):
    """What validate learned; returned to ``$.upload``."""

    productId: Annotated[str, Field(pattern=PRODUCT_ID_PATTERN)]
    productName: Annotated[str, Field(min_length=1, max_length=PRODUCT_NAME_MAX_CHARS)]
    price: Annotated[str, Field(pattern=PRICE_TEXT_PATTERN)]
    fileName: Annotated[str, Field(min_length=1, max_length=FILE_NAME_MAX_CHARS)]
    contentType: Annotated[str, Field(min_length=3, max_length=CONTENT_TYPE_MAX_CHARS)]
    size: Annotated[int, Field(ge=1, le=MAX_FILE_BYTES)]
    sha256: Annotated[str, Field(pattern=SHA256_HEX_PATTERN)]
    s3Key: Annotated[str, Field(min_length=1)]
    # Only with an Idempotency-Key (tasks.core.idempotency): the claim's table key (the key
    # scoped to the caller, hashed) and the body's fingerprint; None without the header.
    idempotencyId: Annotated[str | None, Field(pattern=SHA256_HEX_PATTERN)] = None
    fingerprint: Annotated[str | None, Field(pattern=SHA256_HEX_PATTERN)] = None


class StoreReceipt(_Payload):
    """What store wrote; returned in the body's place (``$.body``), then moved to ``$.stored``."""

    bucket: Annotated[str, Field(min_length=1)]
    s3Key: Annotated[str, Field(min_length=1)]
    versionId: Annotated[str, Field(min_length=1, max_length=S3_VERSION_ID_MAX_BYTES)]


class SuccessBody(_Payload):
    """The client's 200 body (CONTRACT.md), returned by record to ``$.receipt``."""

    message: Literal["File uploaded successfully"] = SUCCESS_MESSAGE
    requestId: str
    productId: str
    productName: str
    price: int | float
    fileName: str
    contentType: str
    size: int
    sha256: str
    s3Key: str
    versionId: str
    timestamp: str


class CompensationResult(_Payload):
    """Returned to ``$.compensation``."""

    deletedVersionIds: list[str]


class ValidateEvent(_Payload):
    requestId: _RequestId
    idempotencyKey: Any = None
    # Who called (the API's IAM principal id or API key id; "" or None when unknown): scopes the
    # Idempotency-Key.
    caller: Annotated[str | None, Field(max_length=CALLER_MAX_CHARS)] = None
    body: Any = None


class StoreEvent(_Payload):
    requestId: _RequestId
    upload: UploadMetadata
    fileContent: str
    # $$.State.RetryCount: 0 on the first attempt, n on the n-th retry.
    attempt: Annotated[int, Field(ge=0)] = 0
    # $$.Execution.StartTime: bounds the search for an earlier attempt's versions.
    startedAt: str | None = None


class RecordEvent(_Payload):
    requestId: _RequestId
    upload: UploadMetadata
    stored: StoreReceipt


class CompensateEvent(_Payload):
    requestId: _RequestId
    # $.upload.productId / productName: the metadata item Record may have written.
    productId: Annotated[str, Field(pattern=PRODUCT_ID_PATTERN)]
    productName: Annotated[str, Field(min_length=1, max_length=PRODUCT_NAME_MAX_CHARS)]
    s3Key: Annotated[str, Field(min_length=1)]
    startedAt: str | None = None
    # $.upload.idempotencyId: the claim to release (None without an Idempotency-Key).
    idempotencyId: Annotated[str | None, Field(pattern=SHA256_HEX_PATTERN)] = None
    # $$.State.RetryCount: below RETRY_MAX_ATTEMPTS a retry remains.
    attempt: Annotated[int, Field(ge=0)] = 0


def price_as_json_number(text: str) -> int | float:
    """The price for the client's body: an integer when sent as one, else the float it reads as."""
    return float(text) if "." in text else int(text)


PayloadT = TypeVar("PayloadT", bound=BaseModel)


def parse_payload(model: type[PayloadT], event: object) -> PayloadT:
    """Read a task's event; a malformed one is a wiring fault (:class:`InvalidTaskInput`), named
    by its field paths only (no values: the event may carry the file)."""
    try:
        return model.model_validate(event)
    except pydantic.ValidationError as exc:
        where = sorted({".".join(str(p) for p in e["loc"]) or "<event>" for e in exc.errors()})
        raise InvalidTaskInput(
            f"The task's input does not match {model.__name__}: {', '.join(where)}"
        ) from None
