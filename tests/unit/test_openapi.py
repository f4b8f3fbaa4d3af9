"""docs/openapi.json: what infra/openapi.py writes, valid OpenAPI 3.1, and in step with the
definitions it is written from (the contract's limits and codes, the validate task's rules)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import openapi
from infra.openapi_schemas import BASE64_ALPHABET, FILE_CONTENT_MAX_CHARS
from tasks.contract import sessions
from tasks.contract.errors import OUTCOMES, Outcome, PayloadTooLarge, codes_by_status
from tasks.contract.limits import (
    CONTENT_TYPE_MAX_CHARS,
    FILE_NAME_MAX_CHARS,
    IDEMPOTENCY_KEY_MAX_CHARS,
    MAX_FILE_BYTES,
    PRODUCT_ID_PATTERN,
    PRODUCT_NAME_MAX_CHARS,
)
from tasks.core.models import SuccessBody
from tasks.core.session_rules import OPEN_FIELD_RULES, OPEN_REQUIRED
from tasks.core.validation import (
    REQUEST_FIELD_RULES,
    REQUIRED_REQUEST_FIELDS,
    check_content_type,
    check_file_name,
    check_idempotency_key,
    check_product_id,
    check_product_name,
    check_request,
    decode_file_content,
    price_text,
)

DOCUMENT = openapi.document()
SCHEMAS = DOCUMENT["components"]["schemas"]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        spec
        for item in document["paths"].values()
        for method, spec in item.items()
        if method in HTTP_METHODS
    ]


def _validator(schema: dict[str, Any]) -> jsonschema_rs.Draft202012Validator:
    """A validator of ``schema``, whose ``#/components/...`` references resolve in the document.
    Patterns are ECMA 262 regular expressions, as JSON Schema says (Python's ``re``, which
    jsonschema uses, lets ``$`` match before a final newline)."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": DOCUMENT["components"]})


def _field(schema_name: str, field: str) -> dict[str, Any]:
    schema: dict[str, Any] = SCHEMAS[schema_name]["properties"][field]
    return schema


def _accepts(schema: dict[str, Any], value: object) -> bool:
    return _validator(schema).is_valid(value)


def _passes(rule: Callable[[object], object], value: object) -> bool:
    try:
        rule(value)
    except ValueError:
        return False
    return True


# -- the file -------------------------------------------------------------------------------
def test_the_file_is_what_the_generator_writes() -> None:
    written = openapi.OPENAPI_FILE.read_bytes()
    assert written == openapi.render().encode(), (
        f"docs/openapi.json is out of date: run `{openapi.REGENERATE_COMMAND}`"
    )


def test_the_output_is_stable_json_with_a_trailing_newline() -> None:
    text = openapi.render()
    assert text == openapi.render()
    assert text.endswith("}\n")
    assert json.loads(text) == DOCUMENT


# -- valid OpenAPI and JSON Schema ----------------------------------------------------------
def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(DOCUMENT).validate()


def test_an_invalid_document_is_refused() -> None:
    broken = copy.deepcopy(DOCUMENT)
    del broken["paths"]["/upload"]["post"]["responses"]["200"]["description"]
    with pytest.raises(Exception, match="description"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_schema_is_valid_json_schema_2020_12() -> None:
    parameters = DOCUMENT["components"]["parameters"].values()
    for schema in [*SCHEMAS.values(), *(parameter["schema"] for parameter in parameters)]:
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_example_is_valid_for_its_schema() -> None:
    checked = 0
    for operation in _operations(DOCUMENT):
        contents = [r["content"]["application/json"] for r in operation["responses"].values()]
        if "requestBody" in operation:
            contents.append(operation["requestBody"]["content"]["application/json"])
        for content in contents:
            for example in content["examples"].values():
                _validator(content["schema"]).validate(example["value"])
                checked += 1
    for parameter in DOCUMENT["components"]["parameters"].values():
        _validator(parameter["schema"]).validate(parameter["example"])
    assert checked > len(_operations(DOCUMENT)) * 2


# -- the routes and their statuses ----------------------------------------------------------
def test_every_code_of_the_contract_is_documented_under_its_status() -> None:
    documented: dict[int, set[str]] = {}
    for operation in _operations(DOCUMENT):
        for status, response in operation["responses"].items():
            schema = response["content"]["application/json"]["schema"]
            if int(status) >= 400:
                codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
                documented.setdefault(int(status), set()).update(codes)
                assert set(response["content"]["application/json"]["examples"]) == set(codes)
    assert documented == codes_by_status()


def test_every_route_gets_api_gateways_and_step_functions_own_answers() -> None:
    own = [OUTCOMES[name] for name in OUTCOMES if name.startswith(("Edge.", "Gateway."))]
    for operation in _operations(DOCUMENT):
        for outcome in own:
            response = operation["responses"][str(outcome.status)]
            enum = response["content"]["application/json"]["schema"]["allOf"][1]
            assert outcome.code in enum["properties"]["error"]["properties"]["code"]["enum"]


def test_an_outcome_no_route_can_end_with_stops_the_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(OUTCOMES, "PartsTooSmall", Outcome(400, "ValidationError", "Too small."))
    with pytest.raises(ValueError, match="PartsTooSmall"):
        openapi.document()


def test_both_auth_modes_are_security_schemes() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert {name: scheme["name"] for name, scheme in schemes.items()} == {
        "iam": "Authorization",
        "apiKey": "x-api-key",
    }
    assert DOCUMENT["security"] == [{"iam": []}, {"apiKey": []}]


def test_a_new_session_links_to_the_operations_on_it() -> None:
    opened = DOCUMENT["paths"]["/uploads"]["post"]["responses"]["201"]
    assert {link["operationId"] for link in opened["links"].values()} == {
        "signParts",
        "describeSession",
        "abortSession",
    }


# -- the fields and their limits ------------------------------------------------------------
def test_the_bodies_have_the_fields_of_the_rules() -> None:
    upload, opening = SCHEMAS["UploadRequest"], SCHEMAS["OpenRequest"]
    assert list(upload["properties"]) == list(REQUEST_FIELD_RULES)
    assert set(upload["required"]) == REQUIRED_REQUEST_FIELDS
    assert list(opening["properties"]) == list(OPEN_FIELD_RULES)
    assert set(opening["required"]) == OPEN_REQUIRED
    assert set(SCHEMAS["SuccessBody"]["properties"]) == set(SuccessBody.__struct_fields__)
    assert "sha256" not in SCHEMAS["SuccessBody"]["required"]


def test_the_limits_are_the_contracts() -> None:
    key = DOCUMENT["components"]["parameters"]["IdempotencyKey"]
    assert key["name"] == "Idempotency-Key"
    assert key["schema"]["maxLength"] == IDEMPOTENCY_KEY_MAX_CHARS
    assert _field("UploadRequest", "productId")["pattern"] == PRODUCT_ID_PATTERN
    assert _field("UploadRequest", "productName")["maxLength"] == PRODUCT_NAME_MAX_CHARS
    assert _field("UploadRequest", "fileName")["maxLength"] == FILE_NAME_MAX_CHARS
    assert _field("UploadRequest", "contentType")["maxLength"] == CONTENT_TYPE_MAX_CHARS
    assert _field("OpenRequest", "size")["maximum"] == sessions.DEFAULT_MAX_UPLOAD_BYTES
    part_size = _field("OpenRequest", "partSize")
    assert (part_size["minimum"], part_size["maximum"]) == (
        sessions.MIN_PART_BYTES,
        sessions.MAX_PART_BYTES,
    )
    assert _field("PartsRequest", "parts")["maxItems"] == sessions.MAX_PARTS_PER_CALL


def test_file_content_s_max_length_is_the_largest_file() -> None:
    assert _field("UploadRequest", "fileContent")["maxLength"] == FILE_CONTENT_MAX_CHARS
    assert len(base64.b64decode("A" * FILE_CONTENT_MAX_CHARS)) == MAX_FILE_BYTES
    body = {"productId": "P", "productName": "N", "price": 1}
    check_request({**body, "fileContent": "A" * FILE_CONTENT_MAX_CHARS})
    with pytest.raises(PayloadTooLarge):
        check_request({**body, "fileContent": "A" * (FILE_CONTENT_MAX_CHARS + 1)})


# -- each field's schema decides as its rule does -------------------------------------------
BASE64_CASES = [
    "",
    "A",
    "AA",
    "AAA",
    "A===",
    "====",
    "AA==",
    "AB==",
    "AQ==",
    "00==",
    "0A==",
    "AAA=",
    "AAB=",
    "AAE=",
    "AA=A",
    "=AAA",
    "AAAA",
    "AAAA=",
    "AAAA====",
    "AA==AA==",
    "////",
    "+/+/",
    "-_-_",
    "AAAA\n",
    " AAAA",
    "QUJD",
    "QUI=",
    "QUJ=",
    "VGhpcyBpcyBhIHRlc3QgZmlsZQ==",
]


@pytest.mark.parametrize("text", BASE64_CASES)
def test_the_file_content_pattern_is_validates_decision(text: str) -> None:
    assert _accepts(_field("UploadRequest", "fileContent"), text) == _passes(
        decode_file_content, text
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=BASE64_ALPHABET + "=", max_size=12))
def test_the_file_content_pattern_agrees_with_validate_on_any_short_text(text: str) -> None:
    assert _accepts(_field("UploadRequest", "fileContent"), text) == _passes(
        decode_file_content, text
    )


FIELD_CASES: list[tuple[str, Callable[[object], object], object]] = [
    *(
        ("productId", check_product_id, value)
        for value in ("P", "PROD-001", "a.b:c_d-e", "-P", "P P", "", "P" * 128, "P" * 129, 7)
    ),
    *(
        ("productName", check_product_name, value)
        for value in ("Test Product", "", "é 😀", "a\tb", "a\x7fb", "N" * 256, "N" * 257, None)
    ),
    *(
        ("price", price_text, value)
        for value in (0, -0.0, 99.99, 1e-130, 1.5e-130, 9e-131, 5e-324, 999999999999.99)
    ),
    *(("price", price_text, value) for value in (10**12, -1, "1", True, None)),
    *(
        ("fileName", check_file_name, value)
        for value in ("a", ".", "..", "...", ".a", "a.", " a", "a ", "a b", "é", None, 5)
    ),
    *(
        ("fileName", check_file_name, value)
        for value in ("a/b", "a\\b", "a\x00", "a\x7f", "", "n" * 255, "n" * 256, ". ", ".. ")
    ),
    *(
        ("contentType", check_content_type, value)
        for value in ("text/plain", "a/b", "image/*", "*/*", "text", "", None, 1)
    ),
    *(
        ("contentType", check_content_type, value)
        for value in ("text/plain; charset=utf-8", "a" * 127 + "/b", "a" * 128 + "/b")
    ),
]


@pytest.mark.parametrize(("field", "rule", "value"), FIELD_CASES)
def test_a_field_s_schema_decides_as_its_rule(
    field: str, rule: Callable[[object], object], value: object
) -> None:
    assert _accepts(_field("UploadRequest", field), value) == _passes(rule, value)


@pytest.mark.parametrize(
    "value", ["", "k", "order-4711", "a b", " ", "é", "\t", "~!", "k" * 128, "k" * 129]
)
def test_the_idempotency_key_s_schema_decides_as_validate(value: str) -> None:
    schema = DOCUMENT["components"]["parameters"]["IdempotencyKey"]["schema"]
    # The request template passes an empty header to validate as none (None).
    assert _accepts(schema, value) == _passes(check_idempotency_key, value or None)
