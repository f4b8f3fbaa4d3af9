"""MAX_FILE_BYTES is derived here, not guessed.

The largest request the contract allows (every field other than the file at its maximum, spelled
as long as JSON allows, with an Idempotency-Key and the longest caller id) goes through the real
request template (which puts the body in the execution input as JSON text, escaped once more)
and the real validate logic; the states Step Functions holds (the execution
input; + the validated metadata after Validate; after Store, its result in the body's place: a
store receipt, or the first success body replayed for an idempotent repeat) are serialized in
their longest form (``json.dumps(ensure_ascii=True)``: astral characters become
12-byte surrogate escapes). With a file of MAX_FILE_BYTES the largest state must fit the
256 KiB limit; with one byte more it must not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec
import pytest

from infra.templates import request_template
from local.vtl import render
from tasks.contract.errors import PayloadTooLarge
from tasks.contract.keys import S3_KEY_MAX_BYTES, UPLOAD_PREFIX
from tasks.contract.limits import (
    CALLER_MAX_CHARS,
    CONTENT_TYPE_MAX_CHARS,
    FILE_NAME_MAX_CHARS,
    IDEMPOTENCY_KEY_MAX_CHARS,
    MAX_FILE_BYTES,
    PRICE_UPPER_BOUND,
    PRODUCT_NAME_MAX_CHARS,
    S3_VERSION_ID_MAX_BYTES,
    STATE_PAYLOAD_LIMIT_BYTES,
)
from tasks.core.models import StoreReceipt
from tasks.core.validation import parse_body, price_text, validate_upload
from tasks.record import success_body

STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Test"
REQUEST_ID = "c0ffee00-1234-4abc-8def-0123456789ab"  # API Gateway request ids are UUIDs
BUCKET_NAME = "b" * 63  # S3 bucket names have at most 63 characters
ASTRAL = "\U0001f600"  # 4 bytes of UTF-8, 12 bytes as a JSON surrogate-pair escape
TWO_BYTE = "\u00e9"  # 2 bytes of UTF-8, 6 bytes as a JSON escape
# Prices are exact decimals: at most 38 significant digits, and the last at most 165 places after
# the point (DynamoDB's number context), non-zero ones from 1E-130 up. The longest plain text
# validate stores is a price just above 1E-130 whose last digit is 165 places after the point:
# "0." + 129 zeros + 36 digits = 167 characters, written the same way in the body.
LONGEST_PRICE = Decimal("0." + "0" * 129 + "1" + "2" * 35)
# Visible ASCII (the key's rule) that JSON must escape: 2 bytes per character, both in the
# input string the template builds and in the state.
IDEMPOTENCY_KEY = '"' * IDEMPOTENCY_KEY_MAX_CHARS
# The caller id ($context.identity.caller / apiKeyId) at its bound, every character one JSON
# escapes (real principal ids need none: this over-estimates by CALLER_MAX_CHARS bytes).
CALLER = '"' * CALLER_MAX_CHARS
TIMESTAMP = "2026-11-25T22:48:54.123Z"
# Token characters only (RFC 9110); none needs escaping in JSON.
CONTENT_TYPE = "a" * 127 + "/" + "b" * 127


def _spelled_out(value: Any) -> str:
    """The longest JSON spelling of ``value`` without insignificant whitespace: every character
    of every string (keys too) as a \\uXXXX escape, astral characters as surrogate pairs; the
    file's base64 as is (the limit is about the file, not about how its text is spelled)."""
    if isinstance(value, dict):
        members = (
            f"{_spelled_out(k)}:{json.dumps(v) if k == 'fileContent' else _spelled_out(v)}"
            for k, v in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        units = value.encode("utf-16-be")
        return (
            '"'
            + "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
            + '"'
        )
    return json.dumps(value)


def _longest_file_name(product_id: str) -> str:
    """The file name with the longest JSON form that validate accepts next to ``product_id``:
    at most FILE_NAME_MAX_CHARS characters, and the key uploads/<productId>/<fileName> within
    S3_KEY_MAX_BYTES of UTF-8. Astral and two-byte characters both give 3 JSON bytes per UTF-8
    byte; astral ones use the byte budget with fewer characters."""
    budget = S3_KEY_MAX_BYTES - len(UPLOAD_PREFIX) - len(product_id) - 1
    astral = min(FILE_NAME_MAX_CHARS, max(0, (budget - 2 * FILE_NAME_MAX_CHARS) // 2))
    return ASTRAL * astral + TWO_BYTE * (FILE_NAME_MAX_CHARS - astral)


def _state_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=True).encode("utf-8"))


def _largest_state(file_size: int, product_id_length: int) -> int:
    """The largest payload of one upload of ``file_size`` bytes with every other field at its
    worst, checked by the real template and the real validate logic along the way."""
    product_id = "P" * product_id_length
    body = {
        "productId": product_id,
        "productName": ASTRAL * PRODUCT_NAME_MAX_CHARS,
        "price": LONGEST_PRICE,
        "fileContent": base64.b64encode(b"\xa5" * file_size).decode("ascii"),
        "fileName": _longest_file_name(product_id),
        "contentType": CONTENT_TYPE,
    }
    raw_body = _spelled_out(body)
    rendered = render(
        request_template(STATE_MACHINE_ARN),
        body=raw_body,
        headers={"Idempotency-Key": IDEMPOTENCY_KEY, "Content-Type": "application/json"},
        context={"requestId": REQUEST_ID, "identity": {"caller": CALLER}},
    )
    execution_input_text = json.loads(rendered.text)["input"]
    execution_input = json.loads(execution_input_text)
    assert execution_input["body"] == raw_body
    assert parse_body(execution_input["body"]) == body
    assert execution_input["idempotencyKey"] == IDEMPOTENCY_KEY
    assert execution_input["caller"] == CALLER

    # Validate refuses files over MAX_FILE_BYTES, so the metadata comes from the same request with
    # a one-byte file, then gets this file's size and hash (the only fields the file decides).
    one_byte = parse_body(_spelled_out({**body, "fileContent": base64.b64encode(b"\xa5").decode()}))
    upload = validate_upload(
        REQUEST_ID, one_byte, execution_input["idempotencyKey"], execution_input["caller"]
    )
    assert upload.idempotencyId is not None
    assert upload.fingerprint is not None
    digest = hashlib.sha256(b"\xa5" * file_size).hexdigest()
    upload = msgspec.structs.replace(upload, size=file_size, sha256=digest)
    stored = StoreReceipt(
        bucket=BUCKET_NAME, s3Key=upload.s3Key, versionId="v" * S3_VERSION_ID_MAX_BYTES
    )
    after_validate = {**execution_input, "upload": upload.to_dict()}
    # Store's result replaces the body (ResultPath $.body): the file leaves with it.
    after_store = {**after_validate, "body": stored.to_dict()}
    # An idempotent repeat of this request: Store returns the first request's success body (its
    # own request id, version id and timestamp, of the same lengths).
    receipt = success_body(REQUEST_ID, upload, stored, TIMESTAMP).to_dict()
    after_replay = {**after_validate, "body": {"replay": True, "receipt": receipt}}
    return max(
        len(execution_input_text.encode("utf-8")),  # Step Functions measures the input as sent
        _state_bytes(after_validate),
        _state_bytes(after_store),
        _state_bytes(after_replay),
    )


@cache
def _worst_product_id_length() -> int:
    """A shorter product id leaves more of the key's byte budget to the file name, which the
    largest state holds three times over: search every allowed length."""
    return max(range(1, 129), key=lambda length: _largest_state(1, length))


def _derived_max_file_bytes() -> int:
    worst = _worst_product_id_length()
    low, high = 1, STATE_PAYLOAD_LIMIT_BYTES  # fits, does not fit
    while high - low > 1:
        middle = (low + high) // 2
        if _largest_state(middle, worst) <= STATE_PAYLOAD_LIMIT_BYTES:
            low = middle
        else:
            high = middle
    return low


def test_the_worst_case_fields_are_at_their_maximum() -> None:
    assert len(CONTENT_TYPE) == CONTENT_TYPE_MAX_CHARS
    assert 0 <= LONGEST_PRICE < PRICE_UPPER_BOUND
    assert len(LONGEST_PRICE.as_tuple().digits) == 36
    assert len(price_text(LONGEST_PRICE)) == 167
    assert price_text(LONGEST_PRICE) == format(LONGEST_PRICE, "f")
    longest = len(price_text(LONGEST_PRICE))
    for other in (
        Decimal("1E-130"),
        Decimal("9.87654321098765432109876543210987654E-130"),
        Decimal("1.2345678901234567890123456789012345678E-128"),
        Decimal("999999999999.99999999999999999999999999"),
    ):
        assert len(price_text(other)) <= longest
    for refused in (
        Decimal("9.9E-131"),
        Decimal("1.0000000000000000000000000000000000001E-130"),  # a 166th place
        Decimal("1.23456789012345678901234567890123456789"),  # 39 significant digits
        math.nextafter(1e-130, 0),
    ):
        with pytest.raises(ValueError, match=r"1E-130|DynamoDB|significant digits"):
            price_text(refused)
    file_name = _longest_file_name("P")
    assert len(file_name) == FILE_NAME_MAX_CHARS
    assert len(f"{UPLOAD_PREFIX}P/{file_name}".encode()) in (S3_KEY_MAX_BYTES - 1, S3_KEY_MAX_BYTES)


def test_max_file_bytes_is_the_largest_file_that_fits_the_state_limit() -> None:
    worst = _worst_product_id_length()
    assert _largest_state(MAX_FILE_BYTES, worst) <= STATE_PAYLOAD_LIMIT_BYTES
    assert _largest_state(MAX_FILE_BYTES + 1, worst) > STATE_PAYLOAD_LIMIT_BYTES


def test_validate_accepts_the_maximal_request_and_refuses_one_byte_more() -> None:
    body = {
        "productId": "P",
        "productName": ASTRAL * PRODUCT_NAME_MAX_CHARS,
        "price": LONGEST_PRICE,
        "fileContent": base64.b64encode(b"\xa5" * MAX_FILE_BYTES).decode("ascii"),
        "fileName": _longest_file_name("P"),
        "contentType": CONTENT_TYPE,
    }
    upload = validate_upload(REQUEST_ID, body, IDEMPOTENCY_KEY, CALLER)
    assert upload.price == format(LONGEST_PRICE, "f")
    assert upload.size == MAX_FILE_BYTES
    assert upload.fileName == body["fileName"]
    too_large = {**body, "fileContent": base64.b64encode(b"\xa5" * (MAX_FILE_BYTES + 1)).decode()}
    with pytest.raises(PayloadTooLarge):
        validate_upload(REQUEST_ID, too_large, IDEMPOTENCY_KEY)


def test_max_file_bytes_fits_with_any_product_id_length() -> None:
    for length in (1, 2, 64, 127, 128):
        assert _largest_state(MAX_FILE_BYTES, length) <= STATE_PAYLOAD_LIMIT_BYTES


def test_max_file_bytes_matches_the_derivation() -> None:
    assert _derived_max_file_bytes() == MAX_FILE_BYTES
