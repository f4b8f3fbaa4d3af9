"""Content types: the ``type/subtype`` rule, aliases, textual types and the allowlist policy.

Detection from a file's bytes (and the rule for when a declared type contradicts them) is the
validate task's: :mod:`tasks.core.content_detection`.

The allowlist (:class:`ContentTypePolicy`, env ``ALLOWED_CONTENT_TYPES``, context flag
``allowedContentTypes``): comma-separated MIME types, case-insensitive, each ``type/subtype`` or a
``type/*`` wildcard; empty or absent allows any type. Both the declared type (or, without one,
the detected type) and, when the bytes are recognised, one of the types they were recognised as
must be allowed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

OCTET_STREAM: Final = "application/octet-stream"
TEXT_PLAIN: Final = "text/plain"
ZIP: Final = "application/zip"

_MIME_NAME: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,127}"
# RFC 9110 token characters; RFC 6838 limits type and subtype to 127 characters each.
CONTENT_TYPE_RE: Final = re.compile(rf"^{_MIME_NAME}/{_MIME_NAME}$")
# An allowlist entry: a content type or ``type/*`` (no other ``*``: not ``*/*``, ``*/png``).
_PLAIN_NAME: Final = _MIME_NAME.replace("*", "")
_ALLOWLIST_ENTRY_RE: Final = re.compile(rf"^{_PLAIN_NAME}/(\*|{_PLAIN_NAME})$")

_ALIASES: Final[dict[str, str]] = {
    "application/x-gzip": "application/gzip",
    "application/x-zip-compressed": ZIP,
    "application/x-zip": ZIP,
    "application/x-pdf": "application/pdf",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "audio/mp3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
}
_TEXTUAL_APPLICATION_TYPES: Final = frozenset(
    {"application/json", "application/xml", "application/javascript", "application/x-ndjson"}
)

# The usual file extension of the common types (a default file name's extension).
EXTENSIONS: Final[dict[str, str]] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/tiff": ".tiff",
    "application/pdf": ".pdf",
    ZIP: ".zip",
    "application/gzip": ".gz",
    "application/json": ".json",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
    TEXT_PLAIN: ".txt",
    "text/csv": ".csv",
    "text/html": ".html",
}


def is_valid_content_type(value: str) -> bool:
    """``type/subtype``; a media range (``*/*``, ``image/*``) is not a type."""
    return CONTENT_TYPE_RE.fullmatch(value) is not None and "*" not in value


def canonical(content_type: str) -> str:
    """Lower case, with well-known aliases replaced by their registered type."""
    lowered = content_type.lower()
    return _ALIASES.get(lowered, lowered)


def is_textual(content_type: str) -> bool:
    """A type whose content is text: ``text/*``, JSON, XML, JavaScript and ``+json``/``+xml``."""
    value = canonical(content_type)
    return (
        value.startswith("text/")
        or value in _TEXTUAL_APPLICATION_TYPES
        or value.endswith(("+json", "+xml"))
    )


@dataclass(frozen=True)
class ContentTypePolicy:
    """Which content types may be uploaded. ``allowed`` None: any."""

    allowed: tuple[str, ...] | None = None

    def permits(self, content_type: str) -> bool:
        if self.allowed is None:
            return True
        value = canonical(content_type)
        major = value.split("/", 1)[0]
        return any(entry in (value, f"{major}/*") for entry in self.allowed)

    def describe(self) -> str:
        return "any" if self.allowed is None else ", ".join(self.allowed)


ANY_CONTENT_TYPE: Final = ContentTypePolicy()


def parse_allowlist(entries: Iterable[str]) -> tuple[str, ...] | None:
    """Clean allowlist entries (stripped, canonical, unique, in order); None for none.

    Raises ValueError naming the first entry that is neither ``type/subtype`` nor ``type/*``.
    """
    cleaned: list[str] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if _ALLOWLIST_ENTRY_RE.fullmatch(entry) is None:
            raise ValueError(
                f"{entry!r} is not a MIME type 'type/subtype' or a wildcard 'type/*' "
                "(omit the setting to allow any type)"
            )
        cleaned.append(canonical(entry))
    return tuple(dict.fromkeys(cleaned)) or None


@functools.lru_cache(maxsize=8)
def policy_from_env(value: str | None) -> ContentTypePolicy:
    """The policy of an ``ALLOWED_CONTENT_TYPES`` value (comma-separated; empty or None: any)."""
    if not value:
        return ANY_CONTENT_TYPE
    return ContentTypePolicy(parse_allowlist(value.split(",")))


def extension_for(content_type: str) -> str:
    """The usual file extension (with its dot) for a content type; ``.bin`` when unknown."""
    return EXTENSIONS.get(canonical(content_type), ".bin")
