"""The JSON bodies the client sends and reads, as typed msgspec structs, and their codec.

Field names are the API's camelCase; the structs use snake_case and ``rename="camel"``. Decoding
checks every answer against its documented shape (an answer that does not fit is the service's
failure, not a crash somewhere later) and ignores fields it does not know, so the service can
add some. Prices are ``Decimal`` both ways and travel as JSON numbers digit for digit: the
service stores them exactly, so a float would change them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, TypeVar

import msgspec

from upload_client.errors import FieldDetail

T = TypeVar("T")

_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


class _Body(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """Base of the bodies: an optional field left as None is not sent at all."""


class CreateSession(_Body, frozen=True):
    product_id: str
    file_name: str
    size: int
    content_type: str | None = None
    part_size: int | None = None


class PartDigest(_Body, frozen=True):
    part_number: int
    sha256: str


class PartsRequest(_Body, frozen=True):
    parts: list[PartDigest]


class UploadRequest(_Body, frozen=True):
    """``POST /upload``: ``file_content`` for an inline upload, ``upload_id`` to commit a
    session, never both."""

    product_id: str
    product_name: str
    price: Decimal
    file_name: str | None = None
    content_type: str | None = None
    file_content: str | None = None
    upload_id: str | None = None


class SessionCreated(_Body, frozen=True):
    upload_id: str
    s3_key: str
    part_size: int
    part_count: int
    expires_at: str
    request_id: str


class PartUrl(_Body, frozen=True):
    part_number: int
    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:  # the URL is presigned: it carries credentials
        return f"PartUrl(part_number={self.part_number})"


class PartUrls(_Body, frozen=True):
    parts: list[PartUrl]
    expires_at: str
    request_id: str


class StoredPart(_Body, frozen=True):
    part_number: int
    size: int
    sha256: str


class SessionStatus(_Body, frozen=True):
    upload_id: str
    state: str
    s3_key: str
    size: int
    part_size: int
    parts: list[StoredPart]
    expires_at: str
    request_id: str


class Checksum(_Body, frozen=True):
    algorithm: str
    type: str
    value: str


class UploadResult(_Body, frozen=True):
    """The service's success body: the file is stored as ``version_id`` under ``s3_key``."""

    message: str
    request_id: str
    product_id: str
    product_name: str
    price: Decimal
    file_name: str
    content_type: str
    size: int
    s3_key: str
    version_id: str
    timestamp: str
    sha256: str | None = None
    checksum: Checksum | None = None  # sessions: S3's checksum of the assembled object


class ErrorInfo(_Body, frozen=True):
    code: str
    message: str
    details: tuple[FieldDetail, ...] = ()


class ErrorBody(_Body, frozen=True):
    error: ErrorInfo
    request_id: str | None = None


def encode(value: msgspec.Struct) -> bytes:
    return _ENCODER.encode(value)


def decode(data: bytes, kind: type[T]) -> T:
    """``data`` as ``kind``; raises ``msgspec.DecodeError`` (``ValidationError`` included)."""
    return msgspec.json.decode(data, type=kind)
