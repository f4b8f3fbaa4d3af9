"""S3 key rules and content type detection."""

from __future__ import annotations

import pytest

from tasks.contract import content_types, keys
from tasks.core import content_detection


def test_object_key_layout() -> None:
    assert keys.object_key("PROD-001", "résumé.pdf") == "uploads/PROD-001/résumé.pdf"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("uploads/PROD-001/a.txt", True),
        ("uploads/PROD-001/...", True),
        ("uploads/PROD-001/..", False),
        ("uploads/PROD-001/", False),
        ("uploads/-bad/a", False),
        ("uploads/P/a/b", False),
        ("elsewhere/P/a", False),
    ],
)
def test_is_upload_key(key: str, expected: bool) -> None:
    assert keys.is_upload_key(key) is expected


def test_key_length_is_counted_in_utf8_bytes() -> None:
    product = "p" * 128
    fits = "a" * (1024 - len("uploads/") - 128 - 1)
    assert keys.key_fits(product, fits)
    assert not keys.key_fits(product, fits + "a")
    assert not keys.key_fits(product, fits[:-1] + "é")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"GIF89a..", "image/gif"),
        (b"%PDF-1.4", "application/pdf"),
        (b"PK\x03\x04rest", "application/zip"),
        (b"\x1f\x8b\x08", "application/gzip"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"ID3\x04", "audio/mpeg"),
        (b"caf\xc3\xa9\n\ttext\r\n", "text/plain"),
        (b"text with \x00 nul", "application/octet-stream"),
        (b"\xc3\x28", "application/octet-stream"),
    ],
)
def test_detect(data: bytes, expected: str) -> None:
    assert content_detection.detect(data) == expected


def test_extension_for() -> None:
    assert content_types.extension_for("IMAGE/PNG") == ".png"
    assert content_types.extension_for("application/x-unknown") == ".bin"
