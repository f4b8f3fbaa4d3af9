"""Typed shapes: the client's request body, the task payloads and the success body.

The client's body is checked field by field (:func:`parse_request`): each rule raises
``ValueError`` with the client-facing message, and every field's problem is collected in one pass.
The task payloads are msgspec Structs, converted and checked by :func:`parse_payload`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping
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

import msgspec
from msgspec import Meta, Struct

from tasks.core.content_types import is_valid_content_type
from tasks.core.errors import FieldProblem, InvalidTaskInput
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


# --- the client's request body ---


class UploadRequest(Struct, frozen=True, kw_only=True):
    """The client's JSON body after every rule passed. ``fileContent`` holds the decoded bytes."""

    productId: str
    productName: str
    price: str
    fileContent: bytes
    fileName: str | None = None
    contentType: str | None = None


# Each field's rule, in the order problems are reported. An absent optional field is None.
REQUEST_FIELD_RULES: Final[dict[str, Callable[[object], object]]] = {
    "productId": check_product_id,
    "productName": check_product_name,
    "price": price_text,
    "fileContent": decode_file_content,
    "fileName": check_file_name,
    "contentType": check_content_type,
}
REQUIRED_REQUEST_FIELDS: Final = frozenset({"productId", "productName", "price", "fileContent"})
_MAX_FIELD_NAME_CHARS: Final = 128


def parse_request(body: Mapping[str, object]) -> tuple[UploadRequest | None, list[FieldProblem]]:
    """Apply every field rule to the client's body: the request if all passed (else None), and
    each problem (the declared fields in order, then each unknown field as it appears)."""
    values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for name, rule in REQUEST_FIELD_RULES.items():
        if name not in body:
            if name in REQUIRED_REQUEST_FIELDS:
                problems.append(FieldProblem(name, "is required"))
            continue
        try:
            values[name] = rule(body[name])
        except ValueError as exc:
            problems.append(FieldProblem(name, str(exc)))
    problems.extend(
        FieldProblem(_field_label(str(name)), "is not an allowed field")
        for name in body
        if name not in REQUEST_FIELD_RULES
    )
    if problems:
        return None, problems
    return UploadRequest(**values), problems


def _field_label(name: str) -> str:
    """An unknown field's name as reported: cut to a readable length."""
    if len(name) > _MAX_FIELD_NAME_CHARS:
        return name[:_MAX_FIELD_NAME_CHARS] + "..."
    return name


# --- task payloads (see spec/INTERFACES.md, "State machine data flow") ---
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
    # Only with an Idempotency-Key (tasks.core.idempotency): the claim's table key (the key
    # scoped to the caller, hashed) and the body's fingerprint; None without the header.
    idempotencyId: _Sha256 | None = None
    fingerprint: _Sha256 | None = None


class StoreReceipt(Payload, frozen=True, kw_only=True):
    """What store wrote; returned in the body's place (``$.body``), then moved to ``$.stored``."""

    bucket: _NonEmpty
    s3Key: _NonEmpty
    versionId: Annotated[str, Meta(min_length=1, max_length=S3_VERSION_ID_MAX_BYTES)]


class SuccessBody(Payload, frozen=True, kw_only=True):
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


class CompensationResult(Payload, frozen=True, kw_only=True):
    """Returned to ``$.compensation``."""

    deletedVersionIds: list[str]


class ValidateEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    idempotencyKey: Any = None
    # Who called (the API's IAM principal id or API key id; "" or None when unknown): scopes the
    # Idempotency-Key.
    caller: Annotated[str, Meta(max_length=CALLER_MAX_CHARS)] | None = None
    body: Any = None


class StoreEvent(Payload, frozen=True, kw_only=True):
    requestId: _RequestId
    upload: UploadMetadata
    fileContent: str
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
    # $$.State.RetryCount: below RETRY_MAX_ATTEMPTS a retry remains.
    attempt: _Attempt = 0


def price_as_json_number(text: str) -> int | float:
    """The price for the client's body: an integer when sent as one, else the float it reads as."""
    return float(text) if "." in text else int(text)


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
