"""Content types: the ``type/subtype`` rule, detection from a file's leading bytes, extensions.

A minimal signature table instead of a magic-number library keeps the validate task's import
cost near zero; anything it does not recognise is ``application/octet-stream``.
"""

from __future__ import annotations

import re
from typing import Final

OCTET_STREAM: Final = "application/octet-stream"

# RFC 9110 token characters; RFC 6838 limits type and subtype to 127 characters each.
CONTENT_TYPE_RE: Final = re.compile(
    r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,127}/[!#$%&'*+.^_`|~0-9A-Za-z-]{1,127}$"
)

_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"ID3", "audio/mpeg"),
)
_MP4_BRANDS: Final = frozenset({b"isom", b"iso2", b"mp41", b"mp42", b"avc1"})
# Text: valid UTF-8 without control characters other than tab, line feed, form feed, return.
_BINARY_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")

_EXTENSIONS: Final[dict[str, str]] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/tiff": ".tiff",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "application/json": ".json",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "text/html": ".html",
}


def is_valid_content_type(value: str) -> bool:
    return CONTENT_TYPE_RE.fullmatch(value) is not None


def detect(data: bytes) -> str:
    """The type recognised from ``data``'s leading bytes, else ``application/octet-stream``."""
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _MP4_BRANDS:
        return "video/mp4"
    if _is_text(data):
        return "text/plain"
    return OCTET_STREAM


def extension_for(content_type: str) -> str:
    """The usual file extension (with its dot) for a content type; ``.bin`` when unknown."""
    return _EXTENSIONS.get(content_type.lower(), ".bin")


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _BINARY_CONTROL_RE.search(text) is None
