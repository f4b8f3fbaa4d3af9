"""Every request rule of the contract (docs/api.md), with its edges, through the validate task's
plain function."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, DecimalException
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from tasks.contract.errors import FieldProblem, PayloadTooLarge, ValidationError
from tasks.contract.idempotency import fingerprint
from tasks.contract.limits import MAX_FILE_BYTES
from tasks.core.validation import parse_body, validate_upload
from tasks.record import attribute_value

from .support import b64

REQUEST_ID = "c0ffee00-1111-2222-3333-444455556666"
TEXT = b"hello, upload test"  # 18 bytes
BASE64_MESSAGE = "must be standard base64 (A-Z, a-z, 0-9, '+', '/', '=' padding, no whitespace)"
CONTROL_MESSAGE = "must not contain control characters (U+0000-U+001F, U+007F)"
KEY_MESSAGE = "must be 1 to 128 visible ASCII characters (no spaces)"
CONTENT_TYPE_MESSAGE = (
    "must be a MIME type 'type/subtype' (token characters, at most 127 each, no parameters, "
    "no wildcard)"
)


def body(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": 99.99,
        "fileContent": b64(TEXT),
        "fileName": "test-file.txt",
    }
    for name, value in overrides.items():
        if value is ...:
            document.pop(name)
        else:
            document[name] = value
    return document


def problems(document: object, idempotency_key: object = None) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        validate_upload(REQUEST_ID, document, idempotency_key)
    assert type(caught.value) is ValidationError
    return [(d.field, d.message) for d in caught.value.details]


def test_valid_request_is_described_exactly() -> None:
    upload = validate_upload(REQUEST_ID, body(), "key-1")
    assert upload.to_dict() == {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": "99.99",
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "size": 18,
        "sha256": hashlib.sha256(TEXT).hexdigest(),
        "s3Key": "uploads/PROD-001/test-file.txt",
        # With an Idempotency-Key: the key scoped to the caller (none here), hashed, and the
        # body's canonical fingerprint (tests/unit/test_idempotency.py).
        "idempotencyId": hashlib.sha256(b"\nkey-1").hexdigest(),
        # The canonical body: sorted keys, no whitespace, every number as digits and exponent.
        "fingerprint": hashlib.sha256(
            (
                '{"fileContent":"' + b64(TEXT) + '","fileName":"test-file.txt",'
                '"price":9999E-2,"productId":"PROD-001","productName":"Test Product"}'
            ).encode()
        ).hexdigest(),
        # An inline file commits no upload session.
        "sessionId": None,
    }
    plain = validate_upload(REQUEST_ID, body())
    assert (plain.idempotencyId, plain.fingerprint) == (None, None)


# --- price ---


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (0, "0"),
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (99.99, "99.99"),
        (5, "5"),
        (5.0, "5.0"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (999_999_999_999, "999999999999"),
        (999999999999.99, "999999999999.99"),
        (json.loads("12.50"), "12.5"),
    ],
)
def test_price_is_kept_as_exact_decimal_text(price: float, text: str) -> None:
    assert validate_upload(REQUEST_ID, body(price=price)).price == text


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (True, "must be a JSON number"),
        (False, "must be a JSON number"),
        ("5", "must be a JSON number"),
        (None, "must be a JSON number"),
        ([1], "must be a JSON number"),
        (-1, "must be at least 0"),
        (-0.01, "must be at least 0"),
        (1e12, "must be less than 1000000000000"),
        (10**12, "must be less than 1000000000000"),
        (float("nan"), "must be a finite number"),
        (float("inf"), "must be a finite number"),
        (float("-inf"), "must be a finite number"),
    ],
)
def test_price_rejections(price: object, message: str) -> None:
    assert problems(body(price=price)) == [("price", message)]


TOO_SMALL_MESSAGE = "must be 0 or at least 1E-130 (the smallest number DynamoDB can store)"
TOO_PRECISE_MESSAGE = "must have at most 38 significant digits (DynamoDB's precision)"
# The first attempt a stored, then unrecordable, price would have cost (2.2e-308 passed before).
SMALLEST_PRICE_TEXT = "0." + "0" * 129 + "1"


@pytest.mark.parametrize(
    "price",
    [
        2.2e-308,
        2.2250738585072014e-308,  # the smallest normal double
        5e-324,  # the smallest subnormal double
        1e-131,
        9.999999999999999e-131,
        Decimal("9.9999999999999999999999999999999999999E-131"),
        json.loads("1e-200"),
    ],
)
def test_non_zero_prices_below_dynamodbs_smallest_number_are_rejected(price: object) -> None:
    assert problems(body(price=price)) == [("price", TOO_SMALL_MESSAGE)]


@pytest.mark.parametrize(
    "price",
    [
        Decimal("1.23456789012345678901234567890123456789"),  # 39 significant digits
        Decimal("0.100000000000000000000000000000000000000"),  # trailing zeros count (boto3)
        Decimal("123456789012.345678901234567890123456789"),
    ],
)
def test_prices_with_more_than_38_significant_digits_are_rejected(price: object) -> None:
    assert problems(body(price=price)) == [("price", TOO_PRECISE_MESSAGE)]


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (1e-130, SMALLEST_PRICE_TEXT),
        (Decimal("1E-130"), SMALLEST_PRICE_TEXT),
        (1.0000000000000003e-130, "0." + "0" * 129 + "10000000000000003"),
        (9.876543210987654e-130, "0." + "0" * 129 + "9876543210987654"),
        (0, "0"),
        (0.0, "0.0"),
        (Decimal("0E-165"), "0." + "0" * 165),
        (
            Decimal("1.234567890123456789012345678E-130"),
            "0." + "0" * 129 + "1234567890123456789012345678",
        ),
        (
            Decimal("12345678901.234567890123456789012345678"),  # 38 significant digits
            "12345678901.234567890123456789012345678",
        ),
    ],
)
def test_prices_dynamodb_can_store_are_accepted_and_serialize(price: object, text: str) -> None:
    stored = validate_upload(REQUEST_ID, body(price=price)).price
    assert stored == text
    # boto3's serializer, as an oracle, refuses what DynamoDB cannot hold (Inexact, Rounded,
    # Underflow, Overflow are trapped), and record sends the same text.
    assert TypeSerializer().serialize(Decimal(stored)) == attribute_value(Decimal(stored))


@pytest.mark.parametrize(
    "price",
    [
        Decimal("1.0000000000000000000000000000000000001E-130"),  # last digit at 1E-167
        Decimal("0E-400"),
    ],
)
def test_decimals_dynamodb_would_round_or_clamp_are_rejected(price: Decimal) -> None:
    with pytest.raises(DecimalException):  # what record would hit
        TypeSerializer().serialize(price)
    assert problems(body(price=price)) == [("price", "must be a number DynamoDB can store exactly")]


def test_nan_and_infinity_tokens_from_json_are_rejected() -> None:
    for token in ("NaN", "Infinity", "-Infinity"):
        document = json.loads(f'{{"price": {token}}}')
        assert problems(body(**document)) == [("price", "must be a finite number")]


# --- productId / productName ---


@pytest.mark.parametrize("product_id", ["A", "a" * 128, "A.b_c:d-e9", "0"])
def test_product_id_accepted(product_id: str) -> None:
    assert validate_upload(REQUEST_ID, body(productId=product_id)).productId == product_id


@pytest.mark.parametrize(
    "product_id", ["", "a" * 129, "-abc", ".x", "a/b", "../x", "a b", "é", "a\n", 7]
)
def test_product_id_rejected(product_id: object) -> None:
    expected = (
        "must be a string"
        if not isinstance(product_id, str)
        else "must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
    )
    assert problems(body(productId=product_id)) == [("productId", expected)]


@pytest.mark.parametrize("name", ["x", "n" * 256, "\U0001f600" * 256, "Ünïcödé 名前"])
def test_product_name_accepted(name: str) -> None:
    assert validate_upload(REQUEST_ID, body(productName=name)).productName == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must be 1 to 256 characters long"),
        ("n" * 257, "must be 1 to 256 characters long"),
        ("a\x00b", CONTROL_MESSAGE),
        ("a\nb", CONTROL_MESSAGE),
        ("a\x1f", CONTROL_MESSAGE),
        ("a\x7f", CONTROL_MESSAGE),
        ("a\ud800b", "must be valid Unicode text (no unpaired surrogates)"),
        (12, "must be a string"),
    ],
)
def test_product_name_rejected(name: object, message: str) -> None:
    assert problems(body(productName=name)) == [("productName", message)]


# --- fileContent ---


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("aGVs bG8=", BASE64_MESSAGE),
        ("aGVsbG8=\n", BASE64_MESSAGE),
        ("aGVs\tbG8=", BASE64_MESSAGE),
        ("aGVsbG8", BASE64_MESSAGE),  # padding missing
        ("aGV$bG8=", BASE64_MESSAGE),
        ("aGVsbG8-", BASE64_MESSAGE),  # URL-safe alphabet
        ("_-__", BASE64_MESSAGE),
        ("QQ==QQ==", BASE64_MESSAGE),
        ("QQ===", BASE64_MESSAGE),
        ("====", BASE64_MESSAGE),
        ("QR==", "must be canonical base64 (the unused bits of the last group are not 0)"),
        ("", "must not be empty (the file has no bytes)"),
        (12, "must be a string"),
    ],
)
def test_file_content_rejected(content: object, message: str) -> None:
    assert problems(body(fileContent=content)) == [("fileContent", message)]


def test_one_byte_file_is_accepted() -> None:
    upload = validate_upload(REQUEST_ID, body(fileContent="AA=="))
    assert (upload.size, upload.sha256) == (1, hashlib.sha256(b"\x00").hexdigest())


def test_file_of_exactly_max_bytes_passes() -> None:
    data = bytes(range(256)) * (MAX_FILE_BYTES // 256) + b"x" * (MAX_FILE_BYTES % 256)
    assert len(data) == MAX_FILE_BYTES
    upload = validate_upload(REQUEST_ID, body(fileContent=b64(data)))
    assert upload.size == MAX_FILE_BYTES
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("extra_bytes", [1, 2, 3, 100_000])
def test_file_over_max_bytes_is_payload_too_large(extra_bytes: int) -> None:
    content = b64(b"\x01" * (MAX_FILE_BYTES + extra_bytes))
    with pytest.raises(PayloadTooLarge) as caught:
        validate_upload(REQUEST_ID, body(fileContent=content, price="not checked"))
    assert caught.value.message == f"The file is larger than the limit of {MAX_FILE_BYTES} bytes."
    assert str(MAX_FILE_BYTES) in str(caught.value)
    assert caught.value.details == [
        FieldProblem("fileContent", f"decodes to more than {MAX_FILE_BYTES} bytes")
    ]


def test_too_long_content_is_payload_too_large_even_when_not_base64() -> None:
    with pytest.raises(PayloadTooLarge):
        validate_upload(REQUEST_ID, body(fileContent="!" * (MAX_FILE_BYTES // 3 * 4 + 8)))


# --- fileName ---


@pytest.mark.parametrize("name", ["résumé.pdf", "a", "...", "a b.txt", "x" * 255, "名前.png"])
def test_file_name_accepted(name: str) -> None:
    upload = validate_upload(REQUEST_ID, body(fileName=name))
    assert (upload.fileName, upload.s3Key) == (name, f"uploads/PROD-001/{name}")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a/b", "must not contain '/' or '\\'"),
        ("../x", "must not contain '/' or '\\'"),
        ("a\\b", "must not contain '/' or '\\'"),
        (".", "must not be '.' or '..'"),
        ("..", "must not be '.' or '..'"),
        (" a", "must not start or end with a space"),
        ("a ", "must not start or end with a space"),
        ("a\tb", CONTROL_MESSAGE),
        ("a\x00", CONTROL_MESSAGE),
        ("a\x7f", CONTROL_MESSAGE),
        ("", "must be 1 to 255 characters long"),
        ("x" * 256, "must be 1 to 255 characters long"),
        (5, "must be a string"),
    ],
)
def test_file_name_rejected(name: object, message: str) -> None:
    assert problems(body(fileName=name)) == [("fileName", message)]


def test_file_name_whose_key_exceeds_s3_limit_is_rejected() -> None:
    name = "\U0001f600" * 255  # 1,020 bytes of UTF-8
    assert problems(body(fileName=name)) == [
        (
            "fileName",
            "is too long: the object key 'uploads/<productId>/<fileName>' must fit "
            "in 1024 bytes of UTF-8",
        )
    ]


# --- defaults: file name from the request id, content type from the bytes ---

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.mark.parametrize(
    ("data", "content_type", "expected_type", "expected_name"),
    [
        (PNG, None, "image/png", f"{REQUEST_ID}.png"),
        (b"%PDF-1.7\n", None, "application/pdf", f"{REQUEST_ID}.pdf"),
        (b"plain text\n", None, "text/plain", f"{REQUEST_ID}.txt"),
        (b"\x00\x01\x02\xff", None, "application/octet-stream", f"{REQUEST_ID}.bin"),
        # A declared type names the extension even when the bytes are not recognised.
        (b"\x00\x01\x02\xff", "audio/mpeg", "audio/mpeg", f"{REQUEST_ID}.mp3"),
        (b"%PDF-1.7\n", "application/pdf", "application/pdf", f"{REQUEST_ID}.pdf"),
        (b"\x00\x01", "application/x-custom", "application/x-custom", f"{REQUEST_ID}.bin"),
    ],
)
def test_defaults(
    data: bytes, content_type: str | None, expected_type: str, expected_name: str
) -> None:
    document = body(fileName=..., fileContent=b64(data), contentType=content_type)
    upload = validate_upload(REQUEST_ID, document)
    assert (upload.contentType, upload.fileName, upload.s3Key) == (
        expected_type,
        expected_name,
        f"uploads/PROD-001/{expected_name}",
    )


def test_default_file_name_is_safe_for_an_odd_request_id() -> None:
    upload = validate_upload("../a b/é", body(fileName=None, fileContent=b64(b"\xff\xfe")))
    assert upload.fileName == "_a_b__.bin"


# --- contentType ---


@pytest.mark.parametrize(
    "content_type", ["text/plain", "image/svg+xml", "a" * 127 + "/" + "b" * 127, "Text/HTML"]
)
def test_content_type_accepted(content_type: str) -> None:
    upload = validate_upload(REQUEST_ID, body(contentType=content_type))
    assert upload.contentType == content_type


@pytest.mark.parametrize(
    "content_type",
    [
        "text",
        "text/",
        "/plain",
        "text/plain; charset=utf-8",
        " text/plain",
        "a" * 128 + "/b",
        "",
        "*/*",  # a media range is not a type
        "text/*",
    ],
)
def test_content_type_rejected(content_type: str) -> None:
    assert problems(body(contentType=content_type)) == [("contentType", CONTENT_TYPE_MESSAGE)]


# --- idempotency key ---


@pytest.mark.parametrize("key", [None, "a", "A" * 128, "!~key-1"])
def test_idempotency_key_accepted(key: str | None) -> None:
    assert validate_upload(REQUEST_ID, body(), key).productId == "PROD-001"


@pytest.mark.parametrize("key", ["", "a b", "é", "A" * 129, "a\x00", 5])
def test_idempotency_key_rejected(key: object) -> None:
    expected = KEY_MESSAGE if isinstance(key, str) else "must be a string"
    assert problems(body(), key) == [("Idempotency-Key", expected)]


# --- shape of the body ---


def test_unknown_field_is_named() -> None:
    assert problems(body(colour="red")) == [("colour", "is not an allowed field")]


def test_missing_fields_are_each_named() -> None:
    assert problems({}) == [
        ("productId", "is required"),
        ("productName", "is required"),
        ("price", "is required"),
        ("fileContent", "is required (or uploadId, to commit an upload session)"),
    ]


def test_all_problems_are_collected_in_one_error() -> None:
    document = {
        "productId": "../etc",
        "productName": "",
        "price": "5",
        "fileContent": "not base64!",
        "fileName": "..",
        "contentType": "nope",
        "extra": 1,
    }
    with pytest.raises(ValidationError) as caught:
        validate_upload(REQUEST_ID, document, "bad key")
    assert json.loads(str(caught.value)) == {
        "message": "The request body is invalid.",
        "details": [
            {"field": "Idempotency-Key", "message": KEY_MESSAGE},
            {"field": "productId", "message": "must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"},
            {"field": "productName", "message": "must be 1 to 256 characters long"},
            {"field": "price", "message": "must be a JSON number"},
            {"field": "fileContent", "message": BASE64_MESSAGE},
            {"field": "fileName", "message": "must not be '.' or '..'"},
            {"field": "contentType", "message": CONTENT_TYPE_MESSAGE},
            {"field": "extra", "message": "is not an allowed field"},
        ],
    }


def test_number_of_reported_problems_is_capped() -> None:
    document = body(**{f"x{i}": i for i in range(100)})
    reported = problems(document)
    assert len(reported) == 32
    assert reported[0] == ("x0", "is not an allowed field")


@pytest.mark.parametrize("document", [None, [], "text", 5, True, [body()]])
def test_body_must_be_an_object(document: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_upload(REQUEST_ID, document)
    assert json.loads(str(caught.value)) == {
        "message": "The request body must be a JSON object.",
        "details": [{"field": "body", "message": "must be a JSON object"}],
    }


# --- the body as the client sent it: JSON text, every number exact ---


def body_text(price: str) -> str:
    """The client's JSON text with ``price`` spelled exactly as given."""
    return json.dumps(body(price=0)).replace('"price": 0', f'"price": {price}')


@pytest.mark.parametrize(
    ("spelled", "text"),
    [
        ("1.0000000000000000001", "1.0000000000000000001"),  # a float would say 1.0
        ("99999999999.99999999", "99999999999.99999999"),  # a float would say 100000000000.0
        ("999999999999.9999999", "999999999999.9999999"),  # below 1e12 (a float: 1e12, refused)
        ("12.50", "12.50"),
        ("5", "5"),
        ("1e2", "100"),
        ("1E-7", "0.0000001"),
        ("0", "0"),
        ("-0", "0"),
        ("0.0", "0.0"),
    ],
)
def test_parse_body_keeps_every_digit_of_the_price(spelled: str, text: str) -> None:
    document = parse_body(body_text(spelled))
    assert isinstance(document, dict)
    assert isinstance(document["price"], Decimal)
    assert validate_upload(REQUEST_ID, document).price == text


def test_a_price_just_below_the_bound_is_accepted_and_the_bound_refused() -> None:
    assert validate_upload(REQUEST_ID, parse_body(body_text("999999999999.9999999"))).price == (
        "999999999999.9999999"
    )
    assert problems(parse_body(body_text("1000000000000.0"))) == [
        ("price", "must be less than 1000000000000")
    ]


def test_a_price_with_39_significant_digits_is_refused_naming_price() -> None:
    assert problems(parse_body(body_text("1.23456789012345678901234567890123456789"))) == [
        ("price", TOO_PRECISE_MESSAGE)
    ]


@pytest.mark.parametrize(
    "text",
    [
        body_text("NaN"),
        body_text("Infinity"),
        body_text("-Infinity"),
        "",
        "{",
        "not json",
        "{'productId': 'PROD-001'}",
        '{"a": 1,}',
        "[" * 100_000,  # too deep for the parser
    ],
)
def test_a_body_that_is_not_json_is_refused_on_body(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_body(text)
    assert type(caught.value) is ValidationError
    assert json.loads(str(caught.value)) == {
        "message": "The request body is not valid JSON.",
        "details": [{"field": "body", "message": "is not valid JSON"}],
    }


def test_parse_body_reads_any_json_value() -> None:
    assert parse_body('"text"') == "text"
    assert parse_body("null") is None
    assert parse_body('[1, 2.5, {"a": true}]') == [Decimal(1), Decimal("2.5"), {"a": True}]


# --- the fingerprint: equal JSON values are the same body ---


def fingerprint_of(text: str) -> str:
    return fingerprint(parse_body(text))


@pytest.mark.parametrize("spelled", ["1", "1.0", "1e0", "1E+0", "10e-1", "1.000", "0.1e1"])
def test_the_fingerprint_reads_numbers_by_value(spelled: str) -> None:
    assert fingerprint_of(body_text(spelled)) == fingerprint_of(body_text("1"))
    assert fingerprint(body(price=1.0)) == fingerprint_of(body_text("1"))  # a float too
    assert fingerprint(body(price=1)) == fingerprint_of(body_text(spelled))  # and an int


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("1", "2"),
        ("1", "1.0000000000000000001"),  # the same float, not the same number
        ("1", "10"),
        ("1", "0.1"),
        ("0", "1e-130"),
    ],
)
def test_the_fingerprint_tells_different_numbers_apart(one: str, other: str) -> None:
    assert fingerprint_of(body_text(one)) != fingerprint_of(body_text(other))


def test_the_fingerprint_ignores_key_order_and_whitespace() -> None:
    assert fingerprint_of('{"a": 1, "b": [1.0, "x"], "c": {"y": 2, "z": 3}}') == fingerprint_of(
        '{"c":{"z":3e0,"y":2},"b":[1,"x"],"a":1.00}'
    )
    assert fingerprint_of('{"b": [1, 2]}') != fingerprint_of('{"b": [2, 1]}')  # order of a list
    assert fingerprint_of('{"a": "1"}') != fingerprint_of('{"a": 1}')  # a string is no number


def test_a_replay_of_the_same_body_spelled_otherwise_has_the_same_upload_fingerprint() -> None:
    first = validate_upload(REQUEST_ID, parse_body(body_text("10")), "key-1")
    again = validate_upload(REQUEST_ID, parse_body(body_text("1.0E1")), "key-1")
    assert first.fingerprint == again.fingerprint
    assert first.price == "10"
    assert again.price == "10"
