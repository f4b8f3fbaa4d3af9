"""Property-based tests through local mode: whatever the body, the response has a contract
status and body shape, no 5xx happens without an injected fault, and the stored state matches the
status (200: exactly the one reported version and item; anything else: nothing new at all).

Example counts (150 in total): arbitrary JSON / bytes 40, mutated valid bodies 60, generated
valid bodies 50. Each example gets its own productId; besides the per-example checks, each test
compares the whole bucket and table before and after, so a write under an unexpected key is
caught too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.load import Target, stored_items, stored_versions
from tests.oracle import contract_problems, echo_problems, exact_price

ARBITRARY_EXAMPLES, MUTATED_EXAMPLES, VALID_EXAMPLES = 25, 40, 30
FIELDS = ("productId", "productName", "price", "fileContent", "fileName", "contentType")
CONTROL = [chr(c) for c in range(0x20)] + ["\x7f"]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        print_blob=True,  # a failure prints @reproduce_failure(...) to replay it
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _unique_id() -> str:
    return f"HY{uuid.uuid4().hex[:16]}"


def _valid_body(data: bytes = b"property test") -> dict[str, Any]:
    return {
        "productId": _unique_id(),
        "productName": "Property",
        "price": 12.5,
        "fileName": "p.bin",
        "contentType": "application/octet-stream",
        "fileContent": base64.b64encode(data).decode(),
    }


# --- strategies -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


huge_or_tiny = st.sampled_from(
    [
        "",
        "x" * 100_000,
        "é" * 300,
        "📦" * 257,
        0,
        -0.0,
        5e-324,
        1e-131,
        1e12,
        1e308,
        10**400,
        -1,
        [],
        {},
        _nested(50),
        _nested(600),
    ]
)
unicode_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=60
)
wrong_types: dict[str, Any] = {
    "productId": st.integers() | st.booleans() | st.lists(st.text(max_size=3), max_size=2),
    "productName": st.integers() | st.floats(allow_nan=False) | st.none() | st.booleans(),
    "price": st.text(max_size=8) | st.booleans() | st.none() | st.lists(st.integers(), max_size=2),
    "fileContent": st.integers() | st.none() | st.booleans() | st.lists(st.text(), max_size=2),
    "fileName": st.integers() | st.booleans() | st.dictionaries(st.text(max_size=3), st.none()),
    "contentType": st.integers() | st.booleans() | st.lists(st.none(), max_size=2),
}


@st.composite
def mutations(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A valid body with 1-3 mutations; True when the result is certainly invalid."""
    body = _valid_body(draw(st.binary(min_size=1, max_size=64)))
    invalid: set[str] = set()  # fields whose last mutation certainly broke them
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FIELDS))
        action = draw(
            st.sampled_from(["drop", "wrong type", "arbitrary", "huge/tiny", "unicode", "extra"])
        )
        invalid.discard(name)
        if action == "drop":
            body.pop(name, None)
            if name not in ("fileName", "contentType"):
                invalid.add(name)
        elif action == "wrong type":
            body[name] = draw(wrong_types[name])
            invalid.add(name)
        elif action == "arbitrary":
            body[name] = draw(json_values)
        elif action == "huge/tiny":
            body[name] = draw(huge_or_tiny)
        elif action == "unicode":
            body[name] = draw(unicode_text)
        else:
            extra = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in FIELDS))
            body[extra] = draw(json_values)
            invalid.add(extra)
    return body, bool(invalid)


name_chars = st.characters(
    codec="utf-8", exclude_categories=["Cs"], exclude_characters=[*CONTROL, "/", "\\"]
)


@st.composite
def valid_bodies(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """Bodies the contract accepts (kept within S3's 1,024-byte key, which the contract does not
    state; see the report)."""
    data = draw(st.binary(min_size=1, max_size=3000))
    product_id = _unique_id() + draw(st.from_regex(r"[A-Za-z0-9._:-]{0,40}", fullmatch=True))
    body: dict[str, Any] = {
        "productId": product_id,
        "productName": draw(st.text(alphabet=name_chars, min_size=1, max_size=80)),
        "price": draw(
            st.integers(0, 10**12 - 1)
            | st.floats(min_value=1e-100, max_value=1e12, exclude_max=True)
            | st.just(0.0)
        ),
        "fileContent": base64.b64encode(data).decode(),
    }
    if draw(st.booleans()):
        name = draw(st.text(alphabet=name_chars, min_size=1, max_size=80))
        assume(name not in (".", "..") and name == name.strip(" "))
        assume(len(f"uploads/{product_id}/{name}".encode()) <= 1024)
        body["fileName"] = name
    if draw(st.booleans()):
        body["contentType"] = draw(st.from_regex(r"[a-z]{1,12}/[a-z0-9.+-]{1,20}", fullmatch=True))
    return body, data


# --- the properties ---------------------------------------------------------------------------


class StateLedger:
    """The whole bucket and table before a test, and the 200s its examples reported."""

    def __init__(self, client: Any, emulator: Any) -> None:
        self.client = client
        self.target = Target.from_emulator(emulator)
        self.before = self._snapshot()
        self.reported: set[tuple[str, str]] = set()  # (s3Key, versionId)
        self.items: set[tuple[str, str]] = set()  # (productId, productName)

    def _snapshot(self) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        versions = {(v["Key"], v["VersionId"]) for v in stored_versions(self.target, "")}
        items = {(i["productId"], i["productName"]) for i in stored_items(self.target)}
        return versions, items

    def product_state(self, body: Any) -> tuple[str, list[Any], list[Any]] | None:
        """The versions and items of the body's productId, when it can name a key prefix."""
        product_id = body.get("productId") if isinstance(body, dict) else None
        if not isinstance(product_id, str) or not 0 < len(product_id.encode()) <= 512:
            return None
        if "/" in product_id or not product_id.strip() or any(c in product_id for c in CONTROL):
            return None
        versions = self.client.versions(f"uploads/{product_id}/")
        return product_id, versions, self.client.items(product_id)

    def check(self, body: Any, before: Any, response: Any, data: bytes | None) -> None:
        """One example: contract shape, no 5xx, state by status (against ``before``, the
        product's state just before the request)."""
        problems = contract_problems(response)
        assert problems == [], (problems, response.text[:500])
        assert response.status_code < 500, response.text
        if response.status_code != 200:
            if before is not None:
                assert self.product_state(body) == before, "a rejected request changed state"
            return
        result = response.json()
        assert isinstance(body, dict)
        assert before is not None
        sent = data if data is not None else base64.b64decode(body["fileContent"])
        assert echo_problems(body, sent, result) == [], (body, result)
        _, old_versions, old_items = before
        _, versions, items = self.product_state(body) or (None, [], [])
        old_ids = {v["VersionId"] for v in old_versions}
        new = [(v["Key"], v["VersionId"]) for v in versions if v["VersionId"] not in old_ids]
        assert new == [(result["s3Key"], result["versionId"])]
        stored = self.client.object_bytes(result["s3Key"], result["versionId"])
        assert hashlib.sha256(stored).hexdigest() == result["sha256"]
        assert len(stored) == result["size"] == len(sent)
        changed = [i for i in items if i not in old_items]
        assert len(changed) == 1, changed
        [item] = changed
        assert (item["productName"], item["versionId"]) == (
            result["productName"],
            result["versionId"],
        )
        assert (item["sha256"], item["size"]) == (result["sha256"], result["size"])
        assert item["price"] == exact_price(body["price"])
        assert len(items) - len(old_items) in (0, 1)  # a new item or the one replaced
        self.reported.add((result["s3Key"], result["versionId"]))
        self.items.add((result["productId"], result["productName"]))

    def assert_nothing_else(self) -> None:
        versions, items = self._snapshot()
        assert versions - self.before[0] == self.reported
        assert self.before[0] <= versions
        assert items - self.before[1] <= self.items
        assert self.before[1] <= items


def _post_raw(client: Any, raw: bytes) -> Any:
    return client.post(raw=raw, headers={"Content-Type": "application/json"})


def test_arbitrary_json_and_bytes(client, emulator):
    ledger = StateLedger(client, emulator)
    seen: list[int] = []

    @_settings(ARBITRARY_EXAMPLES)
    @given(
        st.one_of(
            json_values.map(lambda v: (v, json.dumps(v).encode())),
            st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(
                lambda v: (v, json.dumps(v).encode())
            ),
            st.binary(max_size=200).map(lambda b: (None, b)),
            st.sampled_from([b"", b"NaN", b'{"price": Infinity}', b"{" * 5000, b"[1" * 5000]).map(
                lambda b: (None, b)
            ),
        )
    )
    def prop(case: tuple[Any, bytes]) -> None:
        body, raw = case
        before = ledger.product_state(body)
        response = _post_raw(client, raw)
        seen.append(response.status_code)
        assert response.status_code in (200, 400, 413), response.text
        ledger.check(body, before, response, None)

    prop()
    ledger.assert_nothing_else()
    assert len(seen) >= ARBITRARY_EXAMPLES


def test_mutated_valid_bodies(client, emulator):
    ledger = StateLedger(client, emulator)
    seen: list[int] = []

    @_settings(MUTATED_EXAMPLES)
    @given(mutations())
    def prop(case: tuple[dict[str, Any], bool]) -> None:
        body, certainly_invalid = case
        raw = json.dumps(body).encode()
        before = ledger.product_state(body)
        response = _post_raw(client, raw)
        seen.append(response.status_code)
        allowed = {400, 413} if certainly_invalid else {200, 400, 413}
        assert response.status_code in allowed, (body, response.text[:500])
        if response.status_code == 413:
            assert len(raw) > 180_000, "413 for a small request"
        ledger.check(body, before, response, None)

    prop()
    ledger.assert_nothing_else()
    assert len(seen) >= MUTATED_EXAMPLES


def test_valid_bodies_are_stored_exactly_as_reported(client, emulator):
    ledger = StateLedger(client, emulator)
    seen: list[int] = []

    @_settings(VALID_EXAMPLES)
    @given(valid_bodies())
    def prop(case: tuple[dict[str, Any], bytes]) -> None:
        body, data = case
        raw = json.dumps(body).encode()
        before = ledger.product_state(body)
        response = _post_raw(client, raw)
        seen.append(response.status_code)
        if response.status_code != 200:
            why = client.task_warnings(response.json().get("requestId", ""))
            pytest.fail(f"{response.status_code} for {body}: {response.text[:500]} {why}")
        ledger.check(body, before, response, data)
        result = response.json()
        if "fileName" not in body:
            assert result["fileName"].startswith(result["requestId"])
        if "contentType" in body:
            assert result["contentType"] == body["contentType"]

    prop()
    ledger.assert_nothing_else()
    assert len(seen) >= VALID_EXAMPLES


def test_deeply_nested_json_is_a_400(client):
    depth = 100_000
    response = _post_raw(client, b"[" * depth + b"]" * depth)
    assert response.status_code == 400, response.text
    assert contract_problems(response) == []
