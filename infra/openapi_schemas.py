"""The JSON Schemas of the API's bodies (OpenAPI 3.1, JSON Schema 2020-12), for infra/openapi.py.

Each rule comes from where the service defines it: the limits and patterns of
``tasks.contract``, the field names and required fields of the validate task's rules
(``tasks.core.validation``, ``tasks.core.session_rules``) and the success body's struct
(``tasks.core.models.SuccessBody``). What a schema cannot say (a key's UTF-8 length, a declared
type the bytes contradict, distinct part numbers) is in its description.
"""

from __future__ import annotations

import math
import string
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from tasks.contract import sessions
from tasks.contract.content_types import CONTENT_TYPE_RE
from tasks.contract.keys import S3_KEY_MAX_BYTES
from tasks.contract.limits import (
    CONTENT_TYPE_MAX_CHARS,
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
from tasks.core.models import SHA256_HEX_PATTERN, Checksum, SuccessBody
from tasks.core.session_rules import OPEN_FIELD_RULES, OPEN_REQUIRED
from tasks.core.validation import REQUEST_FIELD_RULES, REQUIRED_REQUEST_FIELDS

Schema = dict[str, Any]

SCHEMAS_PREFIX: Final = "#/components/schemas/"
# RFC 4648 section 4, in the order of the values the characters stand for.
BASE64_ALPHABET: Final = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
# The longest fileContent whose decoded size can be at most MAX_FILE_BYTES: any longer one is
# answered 413 before its characters are read (tasks.core.validation.decoded_size_bound).
FILE_CONTENT_MAX_CHARS: Final = math.ceil(MAX_FILE_BYTES / 3) * 4
# Control characters (U+0000-U+001F, U+007F), which no name may contain.
_CONTROL: Final = r"\x00-\x1f\x7f"
_NAME_CHAR: Final = rf"[^/\\{_CONTROL}]"
_NAME_EDGE: Final = rf"[^/\\{_CONTROL} ]"  # no space at either end
_NAME_START: Final = rf"[^/\\{_CONTROL} .]"
_TIMESTAMP_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def ref(name: str) -> Schema:
    return {"$ref": SCHEMAS_PREFIX + name}


def canonical_base64_pattern() -> str:
    """Standard base64 with ``=`` padding, canonical: before ``==`` the last character carries 2
    bits of data (its 4 low bits must be 0), before ``=`` 4 bits (its 2 low bits must be 0)."""
    char = "[A-Za-z0-9+/]"
    one_byte = "".join(c for value, c in enumerate(BASE64_ALPHABET) if value % 16 == 0)
    two_bytes = "".join(c for value, c in enumerate(BASE64_ALPHABET) if value % 4 == 0)
    tail = f"(?:{char}{{4}}|{char}[{one_byte}]==|{char}{{2}}[{two_bytes}]=)"
    return f"^(?:{char}{{4}})*{tail}$"


def file_name_pattern() -> str:
    """No ``/``, ``\\`` or control character, no space at either end, not ``.`` or ``..``
    (written without lookarounds, which not every JSON Schema regex engine has)."""
    dotted = rf"\.(?:{_NAME_START}|{_NAME_CHAR}+{_NAME_EDGE})"
    return rf"^(?:{_NAME_START}(?:{_NAME_CHAR}*{_NAME_EDGE})?|{dotted})$"


def content_type_pattern() -> str:
    """``type/subtype`` of token characters: the contract's rule without ``*`` (a media range
    such as ``image/*`` is not a type)."""
    return CONTENT_TYPE_RE.pattern.replace("*", "")


def _nullable(schema: Schema, absent: str) -> Schema:
    """An optional field that may be sent as ``null``, which counts as absent."""
    types_ = [schema["type"], "null"]
    return {**schema, "type": types_, "description": f"{schema['description']} {absent}"}


def product_id() -> Schema:
    return {"type": "string", "pattern": PRODUCT_ID_PATTERN, "description": "The product's id."}


def file_name(*, optional: bool) -> Schema:
    schema: Schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": FILE_NAME_MAX_CHARS,
        "pattern": file_name_pattern(),
        "description": (
            "The file's name: no '/', '\\' or control characters, not '.' or '..', no leading "
            "or trailing space, no unpaired surrogate. The key 'uploads/<productId>/<fileName>' "
            f"must fit in {S3_KEY_MAX_BYTES} bytes of UTF-8."
        ),
    }
    if optional:
        return _nullable(schema, "Default: derived from the request id.")
    return schema


def content_type() -> Schema:
    return _nullable(
        {
            "type": "string",
            "maxLength": CONTENT_TYPE_MAX_CHARS,
            "pattern": content_type_pattern(),
            "description": (
                "A MIME type 'type/subtype' (no parameters, no wildcard). Refused with 400 when "
                "the file's bytes contradict it, or when the deployment's allowedContentTypes "
                "does not list it."
            ),
        },
        "Default: detected from the file's bytes, else application/octet-stream.",
    )


def _price() -> Schema:
    return {
        "type": "number",
        "minimum": 0,
        "exclusiveMaximum": PRICE_UPPER_BOUND,
        "anyOf": [{"const": 0}, {"minimum": float(PRICE_SMALLEST_NONZERO)}],
        "description": (
            f"A JSON number, 0 or from {PRICE_SMALLEST_NONZERO} up and below "
            f"{PRICE_UPPER_BOUND}, with at most {PRICE_MAX_DIGITS} significant digits: stored "
            "and answered digit for digit, never rounded."
        ),
    }


def _file_content() -> Schema:
    return {
        "type": "string",
        "maxLength": FILE_CONTENT_MAX_CHARS,
        "pattern": canonical_base64_pattern(),
        "contentEncoding": "base64",
        "description": (
            "The file, standard base64 (A-Z, a-z, 0-9, '+', '/', '=' padding, no whitespace) in "
            "its canonical form: the unused bits of the last group are 0, so 'AA==' is accepted "
            "and '00==' is refused (400). It decodes to 1 to "
            f"{MAX_FILE_BYTES} bytes; a longer text is answered 413 PayloadTooLarge."
        ),
    }


def session_id() -> Schema:
    return {
        "type": "string",
        "pattern": f"^{SESSION_ID_PATTERN}$",
        "description": "An upload session's id, as POST /uploads returned it.",
    }


def _properties(rules: Iterable[str], schemas: Mapping[str, Schema]) -> Schema:
    """The schemas of the fields ``rules`` names, in the rules' order; a rule without a schema
    (or a schema without a rule) is a document out of step with the service."""
    names = list(rules)
    if set(names) != set(schemas):
        raise ValueError(f"fields {sorted(schemas)} != the rules' fields {sorted(names)}")
    return {name: schemas[name] for name in names}


def _object(properties: Schema, required: Iterable[str], **extra: Any) -> Schema:
    names = set(required)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in properties if name in names],
        "properties": properties,
        **extra,
    }


def upload_request() -> Schema:
    """``POST /upload``: an inline file (``fileContent``) or a session's commit (``uploadId``)."""
    fields = {
        "productId": product_id(),
        "productName": {
            "type": "string",
            "minLength": 1,
            "maxLength": PRODUCT_NAME_MAX_CHARS,
            "pattern": f"^[^{_CONTROL}]*$",
            "description": "The product's name: no control characters, no unpaired surrogate.",
        },
        "price": _price(),
        "fileContent": _file_content(),
        "uploadId": {
            **session_id(),
            "description": (
                "Instead of fileContent: the upload session to commit. productId must be the "
                "session's; fileName and contentType are left out or equal the session's."
            ),
        },
        "fileName": file_name(optional=True),
        "contentType": content_type(),
    }
    return _object(
        _properties(REQUEST_FIELD_RULES, fields),
        REQUIRED_REQUEST_FIELDS,
        oneOf=[{"required": ["fileContent"]}, {"required": ["uploadId"]}],
        description="Exactly one of fileContent and uploadId. Any other field is refused.",
    )


def open_request(max_upload_bytes: int) -> Schema:
    """``POST /uploads``."""
    fields = {
        "productId": product_id(),
        "fileName": file_name(optional=False),
        "size": {
            "type": "integer",
            "minimum": 1,
            "maximum": max_upload_bytes,
            "description": (
                "The file's size in bytes, at most the deployment's maxUploadBytes (the default "
                "here); a larger one is answered 413 PayloadTooLarge."
            ),
        },
        "contentType": content_type(),
        "partSize": _nullable(
            {
                "type": "integer",
                "minimum": sessions.MIN_PART_BYTES,
                "maximum": sessions.MAX_PART_BYTES,
                "description": (
                    f"Every part's size but the last's; at most {sessions.MAX_PARTS} parts."
                ),
            },
            f"Default: {sessions.DEFAULT_PART_BYTES} bytes, raised to a whole MiB when more "
            f"than {sessions.MAX_PARTS} parts would be needed.",
        ),
    }
    return _object(_properties(OPEN_FIELD_RULES, fields), OPEN_REQUIRED)


def parts_request() -> Schema:
    """``POST /uploads/{uploadId}/parts``."""
    part = _object(
        {
            "partNumber": {"type": "integer", "minimum": 1, "maximum": sessions.MAX_PARTS},
            "sha256": {"type": "string", "pattern": SHA256_HEX_PATTERN},
        },
        ["partNumber", "sha256"],
    )
    parts = {
        "type": "array",
        "minItems": 1,
        "maxItems": sessions.MAX_PARTS_PER_CALL,
        "items": part,
        "description": "Distinct parts of the session (partNumber at most its partCount).",
    }
    return _object({"parts": parts}, ["parts"])


def idempotency_key() -> Schema:
    return {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX_CHARS, "pattern": r"^[\x21-\x7e]*$"}


def _admits_none(annotation: object) -> bool:
    return isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)


def struct_object(struct: type[msgspec.Struct], properties: Schema) -> Schema:
    """A task's struct as the client receives it: a field whose value may be None is left out
    then (``SparsePayload``), so only the others are required."""
    fields = msgspec.structs.fields(struct)
    checked = _properties([field.encode_name for field in fields], properties)
    required = [field.encode_name for field in fields if not _admits_none(field.type)]
    return _object(checked, required)


def _strings(*names: str) -> Schema:
    return {name: {"type": "string", "minLength": 1} for name in names}


def success_body() -> Schema:
    """``POST /upload``'s 200: the struct record returns, its price a JSON number."""
    return struct_object(
        SuccessBody,
        {
            "message": _choices(SuccessBody, "message"),
            **_strings("requestId", "productId", "productName"),
            "price": {"type": "number", "minimum": 0, "exclusiveMaximum": PRICE_UPPER_BOUND},
            **_strings("fileName", "contentType"),
            "size": {"type": "integer", "minimum": 1},
            "sha256": {
                "type": "string",
                "pattern": SHA256_HEX_PATTERN,
                "description": "Left out for a session of several parts.",
            },
            **_strings("s3Key", "versionId"),
            "timestamp": {"type": "string", "format": "date-time", "pattern": _TIMESTAMP_PATTERN},
            "uploadId": {**session_id(), "description": "A session's commit only."},
            "checksum": ref("Checksum"),
        },
    )


def _choices(struct: type[msgspec.Struct], name: str) -> Schema:
    """The values of a struct's ``Literal`` field."""
    [field] = [field for field in msgspec.structs.fields(struct) if field.encode_name == name]
    return {"enum": list(typing.get_args(field.type))}


def checksum() -> Schema:
    return struct_object(
        Checksum,
        {
            "algorithm": _choices(Checksum, "algorithm"),
            "type": _choices(Checksum, "type"),
            "value": {"type": "string", "minLength": 1},
        },
    )


def _plan() -> Schema:
    return {
        "partSize": {"type": "integer", "minimum": 1},
        "partCount": {"type": "integer", "minimum": 1, "maximum": sessions.MAX_PARTS},
    }


def _timestamp(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


def opened_session() -> Schema:
    """``POST /uploads``' 201."""
    fields = {
        "uploadId": session_id(),
        **_strings("s3Key"),
        **_plan(),
        "expiresAt": _timestamp("When the session expires."),
        **_strings("requestId"),
    }
    return _object(fields, fields)


def signed_parts() -> Schema:
    """``POST /uploads/{uploadId}/parts``' 200: a presigned URL per part."""
    headers = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Every header to send with the PUT (each is signed into the URL).",
    }
    part = _object(
        {
            "partNumber": {"type": "integer", "minimum": 1, "maximum": sessions.MAX_PARTS},
            "url": {"type": "string", "format": "uri"},
            "headers": headers,
        },
        ["partNumber", "url", "headers"],
    )
    fields = {
        "uploadId": session_id(),
        "parts": {"type": "array", "items": part},
        "expiresAt": _timestamp("When the URLs expire."),
        **_strings("requestId"),
    }
    return _object(fields, fields)


def described_session() -> Schema:
    """``GET /uploads/{uploadId}``' 200: the session and the parts S3 holds while it is open."""
    states = [
        sessions.OPEN,
        sessions.COMMITTING,
        sessions.COMMITTED,
        sessions.ABORTED,
        sessions.EXPIRED,
    ]
    part = _object(
        {
            "partNumber": {"type": "integer", "minimum": 1, "maximum": sessions.MAX_PARTS},
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": ["string", "null"], "pattern": SHA256_HEX_PATTERN},
        },
        ["partNumber", "size", "sha256"],
    )
    fields = {
        "uploadId": session_id(),
        "state": {"enum": states},
        **_strings("s3Key"),
        "size": {"type": "integer", "minimum": 1},
        **_plan(),
        "parts": {"type": "array", "items": part},
        "expiresAt": _timestamp("When the session expires (or expired)."),
        **_strings("requestId"),
    }
    return _object(fields, fields)


def aborted_session() -> Schema:
    """``DELETE /uploads/{uploadId}``' 200."""
    fields = {
        "uploadId": session_id(),
        "state": {"const": sessions.ABORTED},
        **_strings("requestId"),
    }
    return _object(fields, fields)


def error_body() -> Schema:
    """Every error: ``{"error": {"code", "message"[, "details"]}, "requestId"}``."""
    problem = _object(_strings("field", "message"), ["field", "message"])
    error = _object(
        {
            **_strings("code", "message"),
            "details": {
                "type": "array",
                "items": problem,
                "description": "One entry per problem (a refused body: every field at fault).",
            },
        },
        ["code", "message"],
    )
    return _object({"error": error, **_strings("requestId")}, ["error", "requestId"])


def error_with_codes(codes: Iterable[str]) -> Schema:
    """The error body whose code is one of ``codes``."""
    code = {"enum": sorted(codes)}
    return {
        "allOf": [ref("Error"), {"properties": {"error": {"properties": {"code": code}}}}],
    }
