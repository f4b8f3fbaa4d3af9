"""S3 object key rules: the one place that turns a product id and a file name into a key."""

from __future__ import annotations

import re
from typing import Final

from tasks.contract.limits import PRODUCT_ID_PATTERN

UPLOAD_PREFIX: Final = "uploads/"
# Object metadata naming the request that wrote a version (S3 returns names lower-case); store
# sets it, compensate deletes exactly the versions that carry its request id.
REQUEST_ID_METADATA: Final = "request-id"
# S3 rejects keys longer than 1,024 bytes of UTF-8.
S3_KEY_MAX_BYTES: Final = 1_024

PRODUCT_ID_RE: Final = re.compile(PRODUCT_ID_PATTERN)
# Characters a default file name derived from a request id may keep.
_UNSAFE_FOR_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")
_REQUEST_ID_NAME_MAX_CHARS: Final = 200


def object_key(product_id: str, file_name: str) -> str:
    """``uploads/<productId>/<fileName>``; both parts must already be validated."""
    return f"{UPLOAD_PREFIX}{product_id}/{file_name}"


def key_fits(product_id: str, file_name: str) -> bool:
    """True when the key is within S3's key length limit (the bytes of its UTF-8 encoding)."""
    return len(object_key(product_id, file_name).encode("utf-8")) <= S3_KEY_MAX_BYTES


def is_upload_key(key: str) -> bool:
    """True for a key of the form ``uploads/<valid productId>/<non-empty name without '/'>``."""
    if not key.startswith(UPLOAD_PREFIX):
        return False
    parts = key[len(UPLOAD_PREFIX) :].split("/")
    return (
        len(parts) == 2
        and PRODUCT_ID_RE.fullmatch(parts[0]) is not None
        and parts[1] not in ("", ".", "..")
    )


def default_file_name(request_id: str, extension: str) -> str:
    """A file name derived from the request id (``<requestId><extension>``), safe as a key part.

    API Gateway request ids are UUIDs and pass unchanged; anything outside ``[A-Za-z0-9._-]`` is
    replaced by ``_`` so that the name always satisfies the file name rules.
    """
    stem = _UNSAFE_FOR_NAME.sub("_", request_id)[:_REQUEST_ID_NAME_MAX_CHARS].strip(".") or "upload"
    return f"{stem}{extension}"
