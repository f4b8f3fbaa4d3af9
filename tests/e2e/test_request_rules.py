"""Request rules of docs/api.md at their edges, end to end through local mode: exact prices, a
body that is not UTF-8, the Idempotency-Key fingerprint, declared content types, the header's
case, and a repeat while the first request is still running.

Bodies whose spelling matters are written as JSON text here (never a Python float through
``json.dumps``), and every test checks the status and body, then what the request left behind:
the key's S3 versions, the DynamoDB item, and the tasks' log lines about the request.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from tasks.contract.errors import INVALID_JSON_MESSAGE, OUTCOMES
from tasks.contract.idempotency import (
    DIFFERENT_BODY_MESSAGE,
    IN_PROGRESS_MESSAGE,
    idempotency_id,
)
from tasks.core.validation import INVALID_BODY_MESSAGE
from tests.oracle import contract_problems
from tests.unit.test_content_types import png

from .conftest import Upload, make_upload
from .test_idempotency import claim
from .test_upload import assert_error, assert_nothing_stored

# The price token of a response's raw text (the one member named "price").
_PRICE_TOKEN_RE = re.compile(r'"price"\s*:\s*(-?[0-9][0-9.eE+-]*)')
WILDCARD_MESSAGE = (
    "must be a MIME type 'type/subtype' (token characters, at most 127 each, no parameters, "
    "no wildcard)"
)


# --- helpers -----------------------------------------------------------------------------------


def json_text(members: list[tuple[str, str]], *, item_sep: str = ",", key_sep: str = ":") -> bytes:
    """A JSON object written member by member; each value is JSON text used as is."""
    inner = item_sep.join(f"{json.dumps(name)}{key_sep}{value}" for name, value in members)
    return ("{" + inner + "}").encode()


def members(upload: Upload, price: str) -> list[tuple[str, str]]:
    """The upload's body as (name, JSON text) pairs, its price written as the token ``price``."""
    return [
        (name, price if name == "price" else json.dumps(value))
        for name, value in upload.body.items()
    ]


def raw_body(upload: Upload, price: str) -> bytes:
    return json_text(members(upload, price))


def post_json_text(client: Any, raw: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post(raw=raw, headers={"Content-Type": "application/json", **(headers or {})})


def price_token(response: Any) -> str:
    """The price exactly as the response's raw text spells it."""
    [token] = _PRICE_TOKEN_RE.findall(response.text)
    return str(token)


def task_log(emulator: Any, task: str, request_id: str) -> list[dict[str, Any]]:
    """The task's structured log lines about one request (parsed), in order."""
    logs = emulator.client("logs")
    events = logs.filter_log_events(
        logGroupName=emulator.function(task).log_group, filterPattern=f'"{request_id}"'
    )["events"]
    lines = []
    for event in events:
        try:
            line = json.loads(event["message"])
        except ValueError:
            continue  # START / END / REPORT lines
        if isinstance(line, dict) and line.get("requestId") == request_id:
            lines.append(line)
    return lines


def messages(emulator: Any, task: str, request_id: str) -> list[str]:
    return [str(line.get("message")) for line in task_log(emulator, task, request_id)]


def store_line(emulator: Any, request_id: str, message: str) -> dict[str, Any]:
    """Store's one log line with this message about the request."""
    [line] = [
        line for line in task_log(emulator, "store", request_id) if line["message"] == message
    ]
    return line


def rejected_fields(emulator: Any, request_id: str) -> list[str]:
    """The fields validate's "Request rejected" line names for this request."""
    [line] = [
        line
        for line in task_log(emulator, "validate", request_id)
        if line.get("message") == "Request rejected"
    ]
    assert line["reason"] == "ValidationError", line
    return [problem["field"] for problem in line["problems"]]


def assert_rejected_by_validate(client: Any, response: Any, product_id: str, field: str) -> None:
    """Validate refused the request naming ``field``; Store never ran; nothing was stored."""
    request_id = response.json()["requestId"]
    assert rejected_fields(client.emulator, request_id) == [field]
    assert task_log(client.emulator, "store", request_id) == []
    assert_nothing_stored(client, product_id)


def executions_named(emulator: Any, name: str) -> list[dict[str, Any]]:
    """The Step Functions executions named ``name`` (a request id)."""
    sfn = emulator.client("stepfunctions")
    found = []
    for machine in emulator.state_machines:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine.arn):
            found += [e for e in page["executions"] if e["name"] == name]
    return found


def assert_stored_once(client: Any, upload: Upload, first: Any) -> dict[str, Any]:
    """Exactly the first request's version and its item: nothing was stored after it."""
    first_body = first.json()
    assert [v["VersionId"] for v in client.versions(upload.key)] == [first_body["versionId"]]
    [item] = client.items(upload.body["productId"])
    assert item["versionId"] == first_body["versionId"]
    assert item["requestId"] == first_body["requestId"]
    return dict(item)


def assert_replay_of(first: Any, replay: Any) -> None:
    """``replay`` is ``first``'s 200 (every field, and the price as first spelled) under its own
    request id."""
    assert replay.status_code == 200, replay.text
    assert contract_problems(replay, replay=True) == []
    replay_id = replay.headers["x-amzn-RequestId"]
    assert replay_id != first.headers["x-amzn-RequestId"]
    assert replay.json() == {**first.json(), "requestId": replay_id}
    assert price_token(replay) == price_token(first)


def key_header(name: str = "Idempotency-Key") -> dict[str, str]:
    return {name: f"key-{uuid.uuid4()}"}


# --- 1. exact prices ---------------------------------------------------------------------------

EXACT_PRICES = [
    "1.0000000000000000001",
    "99999999999.99999999",
    "999999999999.9999999",
    "0.1",
    "0.3",
    "123456789012.34567890123456789012345678",  # 38 significant digits, below 1e12
    "999999999999.99999999999999999999999999",  # 38 nines: the largest 38-digit price
    "0.12345678901234567890123456789012345678",  # 38 significant digits below 1
    "0",
]


@pytest.mark.parametrize("token", EXACT_PRICES)
def test_a_price_is_answered_and_stored_digit_for_digit(client, token):
    upload = make_upload()
    response = post_json_text(client, raw_body(upload, token))

    assert response.status_code == 200, response.text
    assert contract_problems(response) == []
    assert price_token(response) == token
    assert str(json.loads(response.text, parse_float=Decimal, parse_int=Decimal)["price"]) == token
    [version] = client.versions(upload.key)
    assert version["VersionId"] == response.json()["versionId"]
    [item] = client.items(upload.body["productId"])
    assert isinstance(item["price"], Decimal)
    assert str(item["price"]) == token
    assert item["versionId"] == response.json()["versionId"]


# Exponent forms are JSON numbers: accepted when in range, answered and stored as the same value.
EXPONENT_PRICES = {
    "1e3": Decimal(1000),
    "1.5E+2": Decimal(150),
    "1.2345678901234567890123456789012345678e-5": Decimal(
        "0.000012345678901234567890123456789012345678"
    ),
    "1E-130": Decimal("1E-130"),  # DynamoDB's smallest non-zero number
    "-0": Decimal(0),  # 0 <= -0
}


@pytest.mark.parametrize("token", EXPONENT_PRICES)
def test_a_price_in_exponent_form_is_stored_as_the_same_number(client, token):
    upload = make_upload()
    response = post_json_text(client, raw_body(upload, token))

    assert response.status_code == 200, response.text
    assert contract_problems(response) == []
    assert Decimal(price_token(response)) == EXPONENT_PRICES[token]
    [item] = client.items(upload.body["productId"])
    assert item["price"] == EXPONENT_PRICES[token]
    assert [v["VersionId"] for v in client.versions(upload.key)] == [response.json()["versionId"]]


LESS_THAN = "must be less than 1000000000000"
AT_MOST_38 = "must have at most 38 significant digits (DynamoDB's precision)"
REFUSED_PRICES = {
    # 39 significant digits, in range
    "123456789012.345678901234567890123456789": AT_MOST_38,
    "0.123456789012345678901234567890123456789": AT_MOST_38,
    "1.00000000000000000000000000000000000001": AT_MOST_38,
    # 1e12 and above, in every spelling
    "1e12": LESS_THAN,
    "1E+12": LESS_THAN,
    "1000000000000": LESS_THAN,
    "1000000000000.0": LESS_THAN,
    "1000000000000.0000000000000000000000001": LESS_THAN,
    "12345678901234567890123456789012345678": LESS_THAN,  # 38 digits, but above the bound
    "1e400": LESS_THAN,
    # below 0, and below DynamoDB's smallest non-zero number
    "-1": "must be at least 0",
    "-0.01": "must be at least 0",
    "1E-131": "must be 0 or at least 1E-130 (the smallest number DynamoDB can store)",
}


@pytest.mark.parametrize("token", REFUSED_PRICES)
def test_a_price_out_of_the_rules_is_400_naming_price_and_stores_nothing(client, token):
    upload = make_upload()
    response = post_json_text(client, raw_body(upload, token))

    body = assert_error(response, 400, "ValidationError")
    assert contract_problems(response) == []
    assert body["error"]["message"] == INVALID_BODY_MESSAGE
    assert body["error"]["details"] == [{"field": "price", "message": REFUSED_PRICES[token]}]
    assert_rejected_by_validate(client, response, upload.body["productId"], "price")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_and_the_body_is_refused(client, token):
    upload = make_upload()
    response = post_json_text(client, raw_body(upload, token))

    body = assert_error(response, 400, "ValidationError")
    assert body["error"]["message"] == INVALID_JSON_MESSAGE
    assert body["error"]["details"] == [{"field": "body", "message": "is not valid JSON"}]
    assert rejected_fields(client.emulator, body["requestId"]) == ["body"]
    assert task_log(client.emulator, "store", body["requestId"]) == []
    assert_nothing_stored(client, upload.body["productId"])


# --- 2. a body that is not UTF-8 ---------------------------------------------------------------

NOT_UTF8 = {
    "Latin-1 e acute": b"caf\xe9",
    "truncated two-byte sequence": b"caf\xc3",
    "overlong encoding of '/'": b"a\xc0\xafb",
    "encoded surrogate": b"a\xed\xa0\x80b",
    "byte 0xFF": b"\xff",
}


# Every kind of bad byte sequence, and one of them declared UTF-8 outright.
NOT_UTF8_CASES = [
    *((name, data, "application/json") for name, data in NOT_UTF8.items()),
    ("Latin-1 e acute", NOT_UTF8["Latin-1 e acute"], "application/json; charset=utf-8"),
]


@pytest.mark.parametrize(
    ("name_bytes", "content_type"),
    [case[1:] for case in NOT_UTF8_CASES],
    ids=[f"{case[2]}-{case[0]}" for case in NOT_UTF8_CASES],
)
def test_a_body_that_is_not_utf8_is_400_and_starts_nothing(client, name_bytes, content_type):
    upload = make_upload()
    raw = raw_body(upload, "12.5").replace(b'"Test Product"', b'"' + name_bytes + b'"')
    assert name_bytes in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")

    response = client.post(raw=raw, headers={"Content-Type": content_type})

    body = assert_error(response, 400, "ValidationError")
    assert contract_problems(response) == []
    # The API's edge refuses it against the request model: its gateway response, no details.
    bad_body = OUTCOMES["Gateway.BAD_REQUEST_BODY"].message  # "...must be a JSON object."
    assert body["error"] == {"code": "ValidationError", "message": bad_body}
    assert body["requestId"] == response.headers["x-amzn-RequestId"]
    assert executions_named(client.emulator, body["requestId"]) == []  # no workflow started
    for task in ("validate", "store", "record"):
        assert task_log(client.emulator, task, body["requestId"]) == []
    assert_nothing_stored(client, upload.body["productId"])

    # The same body in UTF-8 is accepted, and its execution is found where the other's was not.
    valid = raw.replace(b'"' + name_bytes + b'"', '"café"'.encode())
    accepted = client.post(raw=valid, headers={"Content-Type": content_type})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["productName"] == "café"
    assert len(executions_named(client.emulator, accepted.json()["requestId"])) == 1
    [item] = client.items(upload.body["productId"])
    assert item["productName"] == "café"


# --- 3. the Idempotency-Key fingerprint --------------------------------------------------------


def test_equal_json_values_with_one_key_are_one_body_and_replay_the_first(client):
    upload = make_upload()
    headers = key_header()
    first = post_json_text(client, raw_body(upload, "1.0"), headers)
    assert first.status_code == 200, first.text
    assert price_token(first) == "1.0"
    item = assert_stored_once(client, upload, first)
    assert item["price"] == Decimal("1.0")  # DynamoDB may drop the trailing zero

    reordered = list(reversed(members(upload, "1")))
    spellings = {
        "1 for 1.0": raw_body(upload, "1"),
        "1e0 for 1.0": raw_body(upload, "1e0"),
        "10E-1 for 1.0": raw_body(upload, "10E-1"),
        "keys reversed, spaces": json_text(reordered, item_sep=" ,\n  ", key_sep=" : "),
        # "\u0054" is "T": the same product name, spelled with an escape.
        "escaped letter, 1.00": raw_body(upload, "1.00").replace(
            b'"Test Product"', b'"\\u0054est Product"'
        ),
    }
    for spelling, raw in spellings.items():
        replay = post_json_text(client, raw, headers)
        assert_replay_of(first, replay)
        replayed = store_line(
            client.emulator, replay.json()["requestId"], "Idempotent replay of a completed request"
        )
        assert replayed["heldBy"] == first.json()["requestId"], spelling
        assert "File stored" not in messages(client.emulator, "store", replay.json()["requestId"])
        assert assert_stored_once(client, upload, first) == item, spelling

    stored = claim(client, headers)
    assert stored is not None
    assert stored["status"] == "COMPLETED"
    assert stored["requestId"] == first.json()["requestId"]


def test_another_price_with_the_same_key_is_409_and_stores_nothing(client):
    upload = make_upload()
    headers = key_header()
    first = post_json_text(client, raw_body(upload, "1.0"), headers)
    assert first.status_code == 200, first.text
    item = assert_stored_once(client, upload, first)

    for token in ("1.01", "1.0000000000000000001", "0.1"):
        response = post_json_text(client, raw_body(upload, token), headers)

        body = assert_error(response, 409, "IdempotencyConflict")
        assert contract_problems(response) == []
        assert body["error"]["message"] == DIFFERENT_BODY_MESSAGE
        assert body["requestId"] == response.headers["x-amzn-RequestId"]
        assert "Idempotency-Key reused with a different body" in messages(
            client.emulator, "store", body["requestId"]
        )
        assert "File stored" not in messages(client.emulator, "store", body["requestId"])
        assert assert_stored_once(client, upload, first) == item

    stored = claim(client, headers)
    assert stored is not None
    assert (stored["status"], stored["requestId"]) == ("COMPLETED", first.json()["requestId"])


# --- 4. declared content types -----------------------------------------------------------------

TEXT = b"Just some plain text, no signature at all.\n"


@pytest.mark.parametrize("declared", ["image/png", "application/pdf"])
def test_text_declared_as_a_signed_type_is_400_naming_content_type(client, declared):
    upload = make_upload(TEXT, contentType=declared)
    response = client.post(upload.body)

    body = assert_error(response, 400, "ValidationError")
    assert contract_problems(response) == []
    assert body["error"]["details"] == [
        {
            "field": "contentType",
            "message": f"is {declared!r} but the file's bytes are not {declared} "
            "(they lack its signature)",
        }
    ]
    assert_rejected_by_validate(client, response, upload.body["productId"], "contentType")


@pytest.mark.parametrize("declared", ["*/*", "image/*", "*/png"])
def test_a_media_range_is_not_a_content_type(client, declared):
    upload = make_upload(png(), fileName="pixel.png", contentType=declared)
    response = client.post(upload.body)

    body = assert_error(response, 400, "ValidationError")
    assert contract_problems(response) == []
    assert body["error"]["details"] == [{"field": "contentType", "message": WILDCARD_MESSAGE}]
    assert_rejected_by_validate(client, response, upload.body["productId"], "contentType")


def test_png_bytes_declared_as_image_png_are_stored(client):
    upload = make_upload(png(), fileName="pixel.png", contentType="image/png")
    response = client.post(upload.body)

    assert response.status_code == 200, response.text
    assert contract_problems(response) == []
    assert response.json()["contentType"] == "image/png"
    assert response.json()["sha256"] == upload.sha256
    [version] = client.versions(upload.key)
    assert version["VersionId"] == response.json()["versionId"]
    assert client.object_bytes(upload.key, version["VersionId"]) == upload.data
    head = client.s3.head_object(
        Bucket=client.bucket, Key=upload.key, VersionId=version["VersionId"]
    )
    assert head["ContentType"] == "image/png"
    [item] = client.items(upload.body["productId"])
    assert item["versionId"] == version["VersionId"]
    assert item["sha256"] == upload.sha256
    request_id = response.json()["requestId"]
    assert "Request valid" in messages(client.emulator, "validate", request_id)
    [valid] = [
        line
        for line in task_log(client.emulator, "validate", request_id)
        if line["message"] == "Request valid"
    ]
    assert valid["contentType"] == "image/png"


# --- 5. the header's case ----------------------------------------------------------------------


def post_on_the_wire(url: str, raw: bytes, headers: list[tuple[str, str]]) -> tuple[Any, bytes]:
    """POST ``raw`` with exactly these header lines, written byte by byte on a socket (no HTTP
    library between: the names go out spelled as given). Returns the response and what was
    sent."""
    split = urlsplit(url)
    assert split.hostname is not None
    lines = [
        f"POST {split.path} HTTP/1.1",
        f"Host: {split.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(raw)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + raw
    with socket.create_connection((split.hostname, split.port or 80), timeout=60) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        content = response.read()
    return _WireResponse(response.status, response.msg, content), request


class _WireResponse:
    """The parts of a ``requests`` response the assertions read."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, content: bytes) -> None:
        self.status_code = status
        self.headers = headers  # case-insensitive, like requests' headers
        self.text = content.decode()

    def json(self) -> Any:
        return json.loads(self.text)


def headers_received(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """Request id -> the headers the local API received, names as spelled on the wire."""
    received: dict[str, dict[str, str]] = {}
    handle = emulator.gateway.handle

    def recording(request: Any) -> Any:
        received[request.request_id] = dict(request.headers)
        return handle(request)

    monkeypatch.setattr(emulator.gateway, "handle", recording)
    return received


def key_headers(headers: dict[str, str], key: str) -> list[str]:
    """The names of the headers that carry ``key``."""
    return [name for name, value in headers.items() if value == key]


@pytest.mark.parametrize(
    ("first_name", "repeat_name"),
    [
        ("IDEMPOTENCY-KEY", "IDEMPOTENCY-KEY"),
        ("idempotency-key", "idempotency-key"),
        ("IDEMPOTENCY-KEY", "idempotency-key"),
        ("iDeMpOtEnCy-KeY", "Idempotency-Key"),
    ],
)
def test_the_header_name_is_case_insensitive(client, monkeypatch, first_name, repeat_name):
    upload = make_upload()
    key = f"key-{uuid.uuid4()}"
    raw = raw_body(upload, "19.99")
    received = headers_received(client.emulator, monkeypatch)

    first, sent = post_on_the_wire(client.emulator.api_url, raw, [(first_name, key)])
    assert f"\r\n{first_name}: {key}\r\n".encode() in sent
    assert key_headers(received[first.headers["x-amzn-RequestId"]], key) == [first_name]
    assert first.status_code == 200, first.text
    assert contract_problems(first) == []
    # The key reached Store under this spelling: it claimed exactly this key.
    claimed = store_line(client.emulator, first.json()["requestId"], "Idempotency-Key claimed")
    assert claimed["idempotencyId"] == idempotency_id("", key)
    item = assert_stored_once(client, upload, first)

    repeat, sent = post_on_the_wire(client.emulator.api_url, raw, [(repeat_name, key)])
    assert f"\r\n{repeat_name}: {key}\r\n".encode() in sent
    assert key_headers(received[repeat.headers["x-amzn-RequestId"]], key) == [repeat_name]
    assert_replay_of(first, repeat)
    replayed = store_line(
        client.emulator, repeat.json()["requestId"], "Idempotent replay of a completed request"
    )
    assert replayed["idempotencyId"] == idempotency_id("", key)
    assert replayed["heldBy"] == first.json()["requestId"]
    assert "File stored" not in messages(client.emulator, "store", repeat.json()["requestId"])
    assert assert_stored_once(client, upload, first) == item
    stored = claim(client, {"Idempotency-Key": key})
    assert stored is not None
    assert (stored["status"], stored["requestId"]) == ("COMPLETED", first.json()["requestId"])

    # And the key is really in force under that spelling: another body under it is refused.
    changed = raw_body(upload, "20")
    conflict, _ = post_on_the_wire(client.emulator.api_url, changed, [(repeat_name, key)])
    body = assert_error(conflict, 409, "IdempotencyConflict")
    assert body["error"]["message"] == DIFFERENT_BODY_MESSAGE
    assert assert_stored_once(client, upload, first) == item


# --- 6. a repeat while the first request is still running --------------------------------------


def test_a_repeat_while_the_first_runs_is_409_and_the_first_completes(client, emulator):
    # A cold first upload could outlast the delay.
    warm_up = client.post(make_upload().body)
    assert warm_up.status_code == 200, warm_up.text
    upload = make_upload()
    headers = key_header()
    raw = raw_body(upload, "42.42")
    claims_table = emulator.client("dynamodb")  # made now: a new client takes a while
    claim_id = {"S": idempotency_id("", headers["Idempotency-Key"])}

    def claim_status() -> str | None:
        found = claims_table.get_item(
            TableName=emulator.idempotency_table_name,
            Key={"idempotencyKey": claim_id},
            ConsistentRead=True,
        )
        return found["Item"]["status"]["S"] if "Item" in found else None

    assert claim_status() is None
    delay = emulator.faults.delay("s3", "PutObject", 1.0, count=1, task="store")
    results: dict[str, Any] = {}

    def send_first() -> None:
        try:
            results["first"] = post_json_text(client, raw, headers)
        except Exception as exc:  # reported by the assertion below
            results["error"] = exc

    first_thread = threading.Thread(target=send_first)
    first_thread.start()
    try:
        # In flight: it holds the key and its PutObject is being delayed.
        deadline = time.monotonic() + 30
        while delay.injected == 0 and first_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert delay.injected == 1, results
        assert claim_status() == "IN_PROGRESS"

        # Store decides while the first holds the key (a busy machine may deliver the answer
        # after the first's: only the answer itself tells).
        second = post_json_text(client, raw, headers)
    finally:
        first_thread.join(timeout=60)
    assert not first_thread.is_alive()
    assert "error" not in results, results

    body = assert_error(second, 409, "IdempotencyConflict")
    assert contract_problems(second) == []
    assert body["error"]["message"] == IN_PROGRESS_MESSAGE
    assert body["requestId"] == second.headers["x-amzn-RequestId"]
    first = results["first"]
    assert first.status_code == 200, first.text
    assert contract_problems(first) == []
    assert price_token(first) == "42.42"
    assert delay.injected == 1

    item = assert_stored_once(client, upload, first)
    assert str(item["price"]) == "42.42"
    second_id, first_id = body["requestId"], first.json()["requestId"]
    in_progress = store_line(
        emulator, second_id, "Idempotency-Key is held by a request in progress"
    )
    assert in_progress["heldBy"] == first_id
    assert "File stored" not in messages(emulator, "store", second_id)
    assert task_log(emulator, "record", second_id) == []
    assert "File stored" in messages(emulator, "store", first_id)
    stored = claim(client, headers)
    assert stored is not None
    assert (stored["status"], stored["requestId"]) == ("COMPLETED", first_id)

    # Once the first has completed, the same repeat replays it.
    third = post_json_text(client, raw, headers)
    assert_replay_of(first, third)
    assert assert_stored_once(client, upload, first) == item
