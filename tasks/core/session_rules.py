"""The sessions routes' bodies: the rules of ``POST /uploads`` and
``POST /uploads/{uploadId}/parts`` (docs/api.md "Large files"). Each rule returns the clean value
or raises ``ValueError`` with the client message; every field's problem is reported at once, as
for ``POST /upload``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Final

import msgspec

from tasks.contract import sessions
from tasks.contract.content_types import ContentTypePolicy
from tasks.contract.errors import FieldProblem, PayloadTooLarge, ValidationError
from tasks.contract.keys import key_fits
from tasks.core.validation import (
    INVALID_BODY_MESSAGE,
    KEY_TOO_LONG_MESSAGE,
    MAX_REPORTED_PROBLEMS,
    NOT_AN_OBJECT_MESSAGE,
    apply_rules,
    check_content_type,
    check_file_name,
    check_product_id,
    unknown_fields,
)

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_LARGEST_INTEGER: Final = sessions.MAX_OBJECT_BYTES


class OpenRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /uploads`` after every rule passed."""

    productId: str
    fileName: str
    size: int
    contentType: str | None = None
    partSize: int | None = None


class PartRequest(msgspec.Struct, frozen=True, kw_only=True):
    partNumber: int
    sha256: str


def _integer(value: object) -> int:
    """A JSON integer (the body's numbers are parsed as exact Decimals)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError("must be an integer")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError("must be an integer")
        if abs(value) > _LARGEST_INTEGER:  # never expand a huge exponent into an int
            raise ValueError(f"must be at most {_LARGEST_INTEGER}")
    return int(value)


def _over(value: object, limit: int) -> bool:
    """A ``size`` that is a number above ``limit`` (however large: compared, never expanded)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return False
    return not (isinstance(value, Decimal) and value.is_nan()) and value > limit


def check_size(value: object) -> int:
    size = _integer(value)
    if size < 1:
        raise ValueError("must be at least 1")
    return size


def check_part_size(value: object) -> int | None:
    if value is None:
        return None
    part_size = _integer(value)
    if not sessions.MIN_PART_BYTES <= part_size <= sessions.MAX_PART_BYTES:
        raise ValueError(
            f"must be {sessions.MIN_PART_BYTES} to {sessions.MAX_PART_BYTES} bytes (5 MiB to 5 GiB)"
        )
    return part_size


def _required_file_name(value: object) -> str:
    name = check_file_name(value)
    if name is None:
        raise ValueError("must be a string")
    return name


OPEN_FIELD_RULES: Final[dict[str, Callable[[object], object]]] = {
    "productId": check_product_id,
    "fileName": _required_file_name,
    "size": check_size,
    "contentType": check_content_type,
    "partSize": check_part_size,
}
OPEN_REQUIRED: Final = frozenset({"productId", "fileName", "size"})


def parse_open(body: object, *, max_bytes: int, policy: ContentTypePolicy) -> OpenRequest:
    """The ``POST /uploads`` body, every problem at once (ValidationError), or PayloadTooLarge
    when ``size`` is over ``max_bytes``."""
    fields = _object(body)
    if _over(fields.get("size"), max_bytes):
        raise PayloadTooLarge(
            f"The file is larger than the limit of {max_bytes} bytes.",
            [FieldProblem("size", f"must be at most {max_bytes}")],
        )
    values, problems = apply_rules(fields, OPEN_FIELD_RULES, OPEN_REQUIRED)
    problems.extend(unknown_fields(fields, OPEN_FIELD_RULES))
    size = values.get("size")
    named = "productId" in values and "fileName" in values
    if named and not key_fits(values["productId"], values["fileName"]):
        problems.append(FieldProblem("fileName", KEY_TOO_LONG_MESSAGE))
    content_type = values.get("contentType")
    if isinstance(content_type, str) and not policy.permits(content_type):
        problems.append(
            FieldProblem(
                "contentType",
                f"{content_type!r} is not an allowed content type (allowed: {policy.describe()})",
            )
        )
    if isinstance(size, int) and not problems:
        try:
            sessions.part_plan(size, values.get("partSize"))
        except ValueError as exc:
            problems.append(FieldProblem("partSize", str(exc)))
    if problems:
        raise ValidationError(INVALID_BODY_MESSAGE, problems[:MAX_REPORTED_PROBLEMS])
    return OpenRequest(**values)


def parse_parts(body: object, *, part_count: int) -> list[PartRequest]:
    """The ``POST /uploads/{uploadId}/parts`` body: 1..100 distinct parts of this session."""
    fields = _object(body)
    problems = [
        FieldProblem(str(name)[:128], "is not an allowed field")
        for name in fields
        if name != "parts"
    ]
    parts = fields.get("parts")
    if not isinstance(parts, list) or not 1 <= len(parts) <= sessions.MAX_PARTS_PER_CALL:
        problems.append(
            FieldProblem("parts", f"must be a list of 1 to {sessions.MAX_PARTS_PER_CALL} parts")
        )
        raise ValidationError(INVALID_BODY_MESSAGE, problems[:MAX_REPORTED_PROBLEMS])
    found: list[PartRequest] = []
    seen: set[int] = set()
    for index, entry in enumerate(parts):
        try:
            part = _part(entry, part_count)
        except ValueError as exc:
            problems.append(FieldProblem(f"parts[{index}]", str(exc)))
            continue
        if part.partNumber in seen:
            problems.append(FieldProblem(f"parts[{index}]", "repeats an earlier partNumber"))
        seen.add(part.partNumber)
        found.append(part)
    if problems:
        raise ValidationError(INVALID_BODY_MESSAGE, problems[:MAX_REPORTED_PROBLEMS])
    return found


def _part(entry: object, part_count: int) -> PartRequest:
    if not isinstance(entry, Mapping) or set(entry) != {"partNumber", "sha256"}:
        raise ValueError("must be an object with exactly partNumber and sha256")
    number = _integer(entry["partNumber"])
    if not 1 <= number <= part_count:
        raise ValueError(f"partNumber must be 1 to {part_count} (the session's parts)")
    digest = entry["sha256"]
    if not isinstance(digest, str) or _SHA256_RE.fullmatch(digest) is None:
        raise ValueError("sha256 must be 64 lowercase hexadecimal digits")
    return PartRequest(partNumber=number, sha256=digest)


def _object(body: object) -> Mapping[str, object]:
    if not isinstance(body, Mapping):
        raise ValidationError(
            NOT_AN_OBJECT_MESSAGE, [FieldProblem("body", "must be a JSON object")]
        )
    return body
