"""The client's body: every field rule, and the validate task's plain function that applies them.

Each field rule returns the clean value or raises ``ValueError`` with the client-facing message;
:func:`parse_request` applies every rule and collects every field's problem in one pass;
:func:`validate_upload` adds the checks across fields (key length, content type) and describes
the upload (:class:`~tasks.core.models.UploadMetadata`). The API these rules implement is written
down in ``docs/api.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
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
from typing import Any, Final

import msgspec
from msgspec import Struct

from tasks.contract import idempotency
from tasks.contract.content_types import (
    ANY_CONTENT_TYPE,
    ContentTypePolicy,
    extension_for,
    is_textual,
    is_valid_content_type,
)
from tasks.contract.errors import (
    INVALID_JSON_MESSAGE,
    FieldProblem,
    PayloadTooLarge,
    ValidationError,
)
from tasks.contract.keys import (
    PRODUCT_ID_RE,
    S3_KEY_MAX_BYTES,
    default_file_name,
    key_fits,
    object_key,
)
from tasks.contract.limits import (
    FILE_NAME_MAX_CHARS,
    IDEMPOTENCY_KEY_MAX_CHARS,
    MAX_FILE_BYTES,
    PRICE_MAX_DIGITS,
    PRICE_SMALLEST_NONZERO,
    PRICE_UPPER_BOUND,
    PRODUCT_ID_PATTERN,
    PRODUCT_NAME_MAX_CHARS,
)
from tasks.contract.sessions import SESSION_ID_PATTERN
from tasks.core.content_detection import contradiction, detect, is_text, recognise
from tasks.core.models import UploadMetadata

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE_RE: Final = re.compile(r"[\ud800-\udfff]")
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_VISIBLE_ASCII_RE: Final = re.compile(r"[\x21-\x7e]+")
_UPLOAD_ID_RE: Final = re.compile(SESSION_ID_PATTERN)
_SMALLEST_PRICE: Final = Decimal(PRICE_SMALLEST_NONZERO)
# boto3's serializer context (mirrored here so validate does not import boto3): it refuses any
# number it would round or clamp (tasks.contract.limits.PRICE_MAX_FRACTION_DIGITS).
_DYNAMODB_CONTEXT: Final = Context(
    Emin=-128,
    Emax=126,
    prec=PRICE_MAX_DIGITS,
    traps=[Clamped, Overflow, Inexact, Rounded, Underflow],
)

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
    if len(number.as_tuple().digits) > PRICE_MAX_DIGITS:
        raise ValueError(
            f"must have at most {PRICE_MAX_DIGITS} significant digits (DynamoDB's precision)"
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
            "must be a MIME type 'type/subtype' (token characters, at most 127 each, no "
            "parameters, no wildcard)"
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


def check_upload_id(value: object) -> str:
    text = _require_str(value)
    if _UPLOAD_ID_RE.fullmatch(text) is None:
        raise ValueError("must be the uploadId POST /uploads returned")
    return text


class UploadRequest(Struct, frozen=True, kw_only=True):
    """The client's JSON body after every rule passed: exactly one of ``fileContent`` (the decoded
    bytes) and ``uploadId`` (an upload session to commit)."""

    productId: str
    productName: str
    price: str
    fileContent: bytes | None = None
    uploadId: str | None = None
    fileName: str | None = None
    contentType: str | None = None


# Each field's rule, in the order problems are reported. An absent optional field is None.
REQUEST_FIELD_RULES: Final[dict[str, Callable[[object], object]]] = {
    "productId": check_product_id,
    "productName": check_product_name,
    "price": price_text,
    "fileContent": decode_file_content,
    "uploadId": check_upload_id,
    "fileName": check_file_name,
    "contentType": check_content_type,
}
REQUIRED_REQUEST_FIELDS: Final = frozenset({"productId", "productName", "price"})
_MAX_FIELD_NAME_CHARS: Final = 128


def parse_request(body: Mapping[str, object]) -> tuple[UploadRequest | None, list[FieldProblem]]:
    """Apply every field rule to the client's body: the request if all passed (else None), and
    each problem (the declared fields in order, then each unknown field as it appears)."""
    values, problems = apply_rules(body, REQUEST_FIELD_RULES, REQUIRED_REQUEST_FIELDS)
    if "fileContent" in body and "uploadId" in body:
        problems.append(FieldProblem("uploadId", "must not be sent together with fileContent"))
    elif "fileContent" not in body and "uploadId" not in body:
        problems.append(
            FieldProblem("fileContent", "is required (or uploadId, to commit an upload session)")
        )
    problems.extend(unknown_fields(body, REQUEST_FIELD_RULES))
    if problems:
        return None, problems
    return UploadRequest(**values), problems


def apply_rules(
    fields: Mapping[str, object],
    rules: Mapping[str, Callable[[object], object]],
    required: frozenset[str],
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Each rule applied to its field, in the rules' order: the clean values, and each problem
    (a required field that is absent, or the rule's message)."""
    values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for name, rule in rules.items():
        if name not in fields:
            if name in required:
                problems.append(FieldProblem(name, "is required"))
            continue
        try:
            values[name] = rule(fields[name])
        except ValueError as exc:
            problems.append(FieldProblem(name, str(exc)))
    return values, problems


def unknown_fields(fields: Mapping[str, object], rules: Mapping[str, object]) -> list[FieldProblem]:
    """A problem for each field no rule names, as it appears."""
    return [
        FieldProblem(_field_label(str(name)), "is not an allowed field")
        for name in fields
        if name not in rules
    ]


def _field_label(name: str) -> str:
    """An unknown field's name as reported: cut to a readable length."""
    if len(name) > _MAX_FIELD_NAME_CHARS:
        return name[:_MAX_FIELD_NAME_CHARS] + "..."
    return name


INVALID_BODY_MESSAGE: Final = "The request body is invalid."
BODY_FIELD: Final = "body"
NOT_AN_OBJECT_MESSAGE: Final = "The request body must be a JSON object."
TOO_LARGE_MESSAGE: Final = f"The file is larger than the limit of {MAX_FILE_BYTES} bytes."
IDEMPOTENCY_KEY_FIELD: Final = "Idempotency-Key"
CONTENT_TYPE_FIELD: Final = "contentType"
KEY_TOO_LONG_MESSAGE: Final = (
    f"is too long: the object key 'uploads/<productId>/<fileName>' must fit in {S3_KEY_MAX_BYTES} "
    "bytes of UTF-8"
)
# A body with thousands of unknown fields must not produce an error larger than the body.
MAX_REPORTED_PROBLEMS: Final = 32


def parse_body(text: str) -> object:
    """The client's body, exactly as sent: every number an exact decimal (a JSON number read as a
    binary float would lose digits of the price). Not JSON: :class:`ValidationError`."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_name)
    except (ValueError, RecursionError):
        raise ValidationError(
            INVALID_JSON_MESSAGE, [FieldProblem(BODY_FIELD, "is not valid JSON")]
        ) from None


def _no_name(name: str) -> object:
    """``NaN`` and ``Infinity`` are not JSON."""
    raise ValueError(name)


def validate_upload(
    request_id: str,
    body: object,
    idempotency_key: object = None,
    caller: str | None = None,
    *,
    policy: ContentTypePolicy = ANY_CONTENT_TYPE,
) -> UploadMetadata:
    """Check an inline upload's body against the API rules (docs/api.md) and describe the
    upload (:func:`check_request`; a body with ``uploadId`` is a session's commit:
    tasks.core.commits)."""
    request, content_type = check_request(body, idempotency_key, policy=policy)
    if request.fileContent is None:
        raise ValueError("validate_upload takes an inline upload; a commit is tasks.core.commits")
    upload = describe(request_id, request, content_type)
    return with_idempotency(upload, body, idempotency_key, caller)


def check_request(
    body: object, idempotency_key: object = None, *, policy: ContentTypePolicy = ANY_CONTENT_TYPE
) -> tuple[UploadRequest, str]:
    """Every rule of the body and the Idempotency-Key, all problems at once: the request and its
    content type (:func:`content_type_of`).

    Raises :class:`PayloadTooLarge` when ``fileContent`` decodes to more than ``MAX_FILE_BYTES``
    bytes (known from its length, before any decoding and before the other rules), else
    :class:`ValidationError` listing every field's problem.
    """
    if not isinstance(body, Mapping):
        raise ValidationError(
            NOT_AN_OBJECT_MESSAGE, [FieldProblem("body", "must be a JSON object")]
        )
    content = body.get("fileContent")
    if isinstance(content, str) and decoded_size_bound(content) > MAX_FILE_BYTES:
        raise PayloadTooLarge(
            TOO_LARGE_MESSAGE,
            [FieldProblem("fileContent", f"decodes to more than {MAX_FILE_BYTES} bytes")],
        )
    problems: list[FieldProblem] = []
    try:
        check_idempotency_key(idempotency_key)
    except ValueError as exc:
        problems.append(FieldProblem(IDEMPOTENCY_KEY_FIELD, str(exc)))
    request, request_problems = parse_request(body)
    problems.extend(request_problems)
    if (
        request is not None
        and request.fileName is not None
        and not key_fits(request.productId, request.fileName)
    ):
        problems.append(FieldProblem("fileName", KEY_TOO_LONG_MESSAGE))
    content_type = ""
    if request is not None:
        content_type, problem = content_type_of(request, policy)
        if problem is not None:
            problems.append(FieldProblem(CONTENT_TYPE_FIELD, problem))
    if problems or request is None:
        raise ValidationError(INVALID_BODY_MESSAGE, problems[:MAX_REPORTED_PROBLEMS])
    return request, content_type


def with_idempotency(
    upload: UploadMetadata, body: object, idempotency_key: object, caller: str | None
) -> UploadMetadata:
    """With an Idempotency-Key, the metadata also carries the key scoped to ``caller`` and hashed
    (``idempotencyId``) and the body's ``fingerprint`` (tasks.contract.idempotency)."""
    if not isinstance(idempotency_key, str):  # checked: 1..128 visible ASCII characters
        return upload
    return msgspec.structs.replace(
        upload,
        idempotencyId=idempotency.idempotency_id(caller or "", idempotency_key),
        fingerprint=idempotency.fingerprint(body),
    )


def content_type_of(request: UploadRequest, policy: ContentTypePolicy) -> tuple[str, str | None]:
    """The upload's content type (declared, else detected) and the problem with it, if any: the
    declared type contradicts the bytes, or it or the bytes' type is outside ``policy``
    (rules: tasks.core.content_detection, tasks.contract.content_types). A session's commit has
    no bytes here: only its declared type is checked against ``policy`` (store checks the
    bytes)."""
    if request.fileContent is None:
        declared = request.contentType
        if declared is None or policy.permits(declared):
            return declared or "", None
        return declared, f"{declared!r} is not an allowed content type ({policy.describe()})"
    return content_of(request.fileContent, request.contentType, policy)


def content_of(
    data: bytes, declared: str | None, policy: ContentTypePolicy, *, head: bool = False
) -> tuple[str, str | None]:
    """The content type of ``data`` (declared, else detected) and the problem with it, if any
    (:func:`content_type_of`). ``head``: ``data`` is only the file's first bytes."""
    recognition = recognise(data)
    content_type = declared or detect(data, recognition, head=head)
    if declared is not None:
        found = contradiction(declared, data, recognition, head=head)
        if found is not None:
            return content_type, f"is {declared!r} but the file's bytes are {found}"
    allowed = f"allowed: {policy.describe()}"
    if not policy.permits(content_type):
        origin = "" if declared is not None else " (detected from the file's bytes)"
        return content_type, f"{content_type!r}{origin} is not an allowed content type ({allowed})"
    # Text may begin like a signature ("ID3 ..."): a textual type for text bytes stands.
    text_exempt = is_textual(content_type) and is_text(data, head=head)
    if (
        recognition.candidates
        and not text_exempt
        and not any(policy.permits(c) for c in recognition.candidates)
    ):
        return content_type, (
            f"the file's bytes are {recognition.best}, which is not an allowed content type "
            f"({allowed})"
        )
    return content_type, None


def describe(request_id: str, request: UploadRequest, content_type: str = "") -> UploadMetadata:
    """The metadata of a valid inline request: size, hash, content type, clean file name, key."""
    data = request.fileContent or b""
    content_type = content_type or content_type_of(request, ANY_CONTENT_TYPE)[0]
    file_name = request.fileName or default_file_name(request_id, extension_for(content_type))
    return UploadMetadata(
        productId=request.productId,
        productName=request.productName,
        price=request.price,
        fileName=file_name,
        contentType=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        s3Key=object_key(request.productId, file_name),
    )
