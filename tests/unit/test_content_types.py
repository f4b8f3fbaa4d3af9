"""Content-type detection (puremagic), the declared-type rule and the allowlist policy, on real
small files built here."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from typing import Any

import pytest

from tasks import validate
from tasks.contract import content_types
from tasks.contract.content_types import ContentTypePolicy, parse_allowlist, policy_from_env
from tasks.contract.errors import ValidationError
from tasks.contract.names import ALLOWED_CONTENT_TYPES as ALLOWED_CONTENT_TYPES_ENV
from tasks.core.content_detection import contradiction, detect, recognise
from tasks.core.validation import validate_upload

REQUEST_ID = "req-1"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png() -> bytes:
    """A 1x1 RGB PNG."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """SOI, a JFIF APP0 segment, EOI."""
    app0 = b"JFIF\x00" + bytes([1, 1, 0]) + struct.pack(">HH", 1, 1) + b"\x00\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def pdf() -> bytes:
    """A PDF with the customary binary comment line after the header."""
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def gif() -> bytes:
    """A 1x1 GIF89a."""
    return (
        b"GIF89a"
        + struct.pack("<HH", 1, 1)
        + b"\x80\x00\x00"
        + b"\x00\x00\x00\xff\xff\xff"
        + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00"
        + b"\x02\x02D\x01\x00;"
    )


def zip_archive() -> bytes:
    """A small zip, the same bytes whenever it is built: the test ids hold them, and both test
    workers must collect the same ids (a member's time would otherwise be now's)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("notes.txt", date_time=(2026, 1, 1, 0, 0, 0)), "hello")
    return buffer.getvalue()


TEXT = "Plain text, café\n\twith tabs\r\n".encode()
UNKNOWN = bytes(range(0x80, 0x100))  # no signature, not UTF-8

SAMPLES: dict[str, tuple[bytes, str]] = {
    "png": (png(), "image/png"),
    "jpeg": (jpeg(), "image/jpeg"),
    "pdf": (pdf(), "application/pdf"),
    "gif": (gif(), "image/gif"),
    "zip": (zip_archive(), "application/zip"),
    "text": (TEXT, "text/plain"),
    "unknown": (UNKNOWN, "application/octet-stream"),
}


def body(data: bytes, content_type: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": 1,
        "fileContent": base64.b64encode(data).decode("ascii"),
        "fileName": "file",
    }
    if content_type is not None:
        document["contentType"] = content_type
    return document


def rejection(document: dict[str, Any], policy: ContentTypePolicy) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        validate_upload(REQUEST_ID, document, policy=policy)
    return [(d.field, d.message) for d in caught.value.details]


# --- detection ---


@pytest.mark.parametrize("name", SAMPLES)
def test_detect_from_real_signatures(name: str) -> None:
    data, expected = SAMPLES[name]
    assert detect(data) == expected


def test_a_zip_is_a_zip_although_every_zip_based_format_matches_its_signature() -> None:
    found = recognise(zip_archive())
    assert found.best == "application/zip"
    assert "application/vnd.openxmlformats-officedocument.wordprocessingml.document" in (
        found.candidates
    )


def test_weak_signatures_are_not_recognised() -> None:
    # '{' is a one-byte JSON "signature": far too weak to name a type.
    assert recognise(b'{"a": 1}').best is None
    assert detect(b'{"a": 1}') == "text/plain"
    assert recognise(b"").best is None


def test_puremagic_is_imported_only_when_detecting() -> None:
    probe = (
        "import sys, tasks.core.content_detection as c; assert 'puremagic' not in sys.modules; "
        "c.detect(b'GIF89a'); assert 'puremagic' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


# --- the declared type against the bytes ---


@pytest.mark.parametrize(
    ("declared", "data", "found"),
    [
        ("image/png", pdf(), "application/pdf"),
        ("application/pdf", png(), "image/png"),
        ("image/gif", jpeg(), "image/jpeg"),
        ("image/jpeg", zip_archive(), "application/zip"),
        ("text/plain", png(), "image/png"),  # binary bytes are no text
    ],
)
def test_contradictions(declared: str, data: bytes, found: str) -> None:
    assert contradiction(declared, data) == found
    assert rejection(body(data, declared), ContentTypePolicy()) == [
        ("contentType", f"is {declared!r} but the file's bytes are {found}")
    ]


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("image/png", png()),
        ("IMAGE/PNG", png()),  # MIME types are case-insensitive
        ("image/jpg", jpeg()),  # a common alias
        ("application/octet-stream", pdf()),  # "some bytes" contradicts nothing
        ("text/plain", UNKNOWN),  # unrecognised bytes contradict nothing...
        ("video/mp4", UNKNOWN),  # ...but a type whose every file has a signature (below)
        ("audio/mpeg", UNKNOWN),
        ("text/plain", TEXT),
        ("text/csv", b"a,b\n1,2\n"),
        ("text/plain", b"ID3 tags describe MP3 files\n"),  # text may look like a signature
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            zip_archive(),
        ),
        ("application/epub+zip", zip_archive()),  # a +zip type is a zip
        ("application/vnd.android.package-archive", zip_archive()),  # unknown to the database
    ],
)
def test_no_contradiction(declared: str, data: bytes) -> None:
    assert contradiction(declared, data) is None
    upload = validate_upload(REQUEST_ID, body(data, declared))
    assert upload.contentType == declared


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("image/png", TEXT),
        ("application/pdf", TEXT),
        ("image/png", UNKNOWN),
        ("IMAGE/PNG", b"plain words\n"),
        ("image/jpg", TEXT),  # an alias of a signed type
        ("image/gif", TEXT),
        ("application/zip", TEXT),
        ("application/gzip", UNKNOWN),
    ],
)
def test_a_signed_type_for_bytes_without_its_signature_is_refused(
    declared: str, data: bytes
) -> None:
    """Every PNG, JPEG, GIF, PDF, zip, gzip, ... begins with its signature: bytes that do not
    are not such a file, whatever is declared."""
    value = content_types.canonical(declared)
    found = f"not {value} (they lack its signature)"
    assert contradiction(declared, data) == found
    assert rejection(body(data, declared), ContentTypePolicy()) == [
        ("contentType", f"is {declared!r} but the file's bytes are {found}")
    ]


@pytest.mark.parametrize(("declared", "data"), [("image/png", png()), ("application/pdf", pdf())])
def test_a_signed_type_with_its_signature_is_accepted(declared: str, data: bytes) -> None:
    assert validate_upload(REQUEST_ID, body(data, declared)).contentType == declared


@pytest.mark.parametrize("declared", ["*/*", "image/*", "*/png", "image/p*g"])
def test_a_media_range_is_not_a_declared_type(declared: str) -> None:
    assert not content_types.is_valid_content_type(declared)
    [(field, message)] = rejection(body(png(), declared), ContentTypePolicy())
    assert field == "contentType"
    assert message.startswith("must be a MIME type 'type/subtype'")


# --- the allowlist ---

IMAGES = ContentTypePolicy(("image/*", "application/pdf"))


@pytest.mark.parametrize(
    ("data", "declared"),
    [(png(), None), (gif(), "image/gif"), (jpeg(), "image/jpeg"), (pdf(), "Application/PDF")],
)
def test_allowed_types_pass(data: bytes, declared: str | None) -> None:
    upload = validate_upload(REQUEST_ID, body(data, declared), policy=IMAGES)
    assert upload.contentType == (declared or detect(data))


def test_a_declared_type_outside_the_allowlist_is_rejected() -> None:
    assert rejection(body(zip_archive(), "application/zip"), IMAGES) == [
        (
            "contentType",
            "'application/zip' is not an allowed content type (allowed: image/*, application/pdf)",
        )
    ]


def test_a_detected_type_outside_the_allowlist_is_rejected() -> None:
    assert rejection(body(TEXT), IMAGES) == [
        (
            "contentType",
            "'text/plain' (detected from the file's bytes) is not an allowed content type "
            "(allowed: image/*, application/pdf)",
        )
    ]


def test_bytes_outside_the_allowlist_are_rejected_whatever_is_declared() -> None:
    policy = ContentTypePolicy(("image/png", "application/octet-stream"))
    assert rejection(body(pdf(), "application/octet-stream"), policy) == [
        (
            "contentType",
            "the file's bytes are application/pdf, which is not an allowed content type "
            "(allowed: image/png, application/octet-stream)",
        )
    ]


def test_content_type_problems_come_with_the_object_key_problem() -> None:
    # The bytes are checked once every field parsed; the key's length is checked then too.
    document = {**body(pdf(), "image/png"), "productId": "P" * 128, "fileName": "\U0001d49c" * 255}
    fields = [field for field, _ in rejection(document, ContentTypePolicy())]
    assert fields == ["fileName", "contentType"]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["image/png", " IMAGE/*", "image/png", ""], ("image/png", "image/*")),
        (["image/jpg"], ("image/jpeg",)),
        ([], None),
        ([" ", ""], None),
    ],
)
def test_parse_allowlist(entries: list[str], expected: tuple[str, ...] | None) -> None:
    assert parse_allowlist(entries) == expected


@pytest.mark.parametrize("entry", ["*/*", "image", "image/png; q=1", "*/png", "image/**"])
def test_parse_allowlist_refuses(entry: str) -> None:
    with pytest.raises(ValueError, match="not a MIME type"):
        parse_allowlist([entry])


def test_policy_from_env() -> None:
    assert policy_from_env(None).allowed is None
    assert policy_from_env("").allowed is None
    assert policy_from_env("image/png,application/pdf").allowed == ("image/png", "application/pdf")
    assert policy_from_env("image/*").permits("image/webp")
    assert not policy_from_env("image/*").permits("application/pdf")


# --- the task reads the policy from the env mapping it is given ---


def event(document: dict[str, Any]) -> dict[str, Any]:
    return {"requestId": REQUEST_ID, "idempotencyKey": None, "body": json.dumps(document)}


def test_validate_task_applies_allowed_content_types_from_its_env() -> None:
    env = {ALLOWED_CONTENT_TYPES_ENV: "image/png"}
    assert validate.run(event(body(png())), env=env)["contentType"] == "image/png"
    with pytest.raises(ValidationError) as caught:
        validate.run(event(body(gif())), env=env)
    [problem] = caught.value.details
    assert problem.field == "contentType"
    assert "allowed: image/png" in problem.message


def test_validate_task_allows_any_type_without_the_variable() -> None:
    assert validate.run(event(body(gif())), env={})["contentType"] == "image/gif"
    upload = validate.run(event(body(UNKNOWN)), env={ALLOWED_CONTENT_TYPES_ENV: ""})
    assert upload["contentType"] == "application/octet-stream"


def test_extension_for_uses_canonical_types() -> None:
    assert content_types.extension_for("image/jpg") == ".jpg"
    assert content_types.extension_for("APPLICATION/X-GZIP") == ".gz"
