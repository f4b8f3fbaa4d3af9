"""Content types: the ``type/subtype`` rule, detection from a file's bytes, the allowlist policy.

Detection uses ``puremagic`` (a pure-Python signature database). Its import loads that database
(a few milliseconds), so it happens inside :func:`recognise`, on first use: the CDK side and the
models import this module for the syntax rule alone and never pay for it.

The declared-type rule (:func:`contradiction`): a declared ``contentType`` contradicts the bytes
only when *all* of these hold:

* the bytes carry a recognised signature of at least three bytes (puremagic confidence >= 0.3):
  a one- or two-byte match is too weak to contradict a client;
* the declared type is none of the types those signatures name (aliases such as ``image/jpg``
  and ``application/x-zip-compressed`` count as their canonical type, and ``application/zip``
  stays valid for any zip-based format);
* the declared type is not ``application/octet-stream`` ("some bytes" contradicts nothing);
* the declared type is not textual while the bytes are text (UTF-8 without control characters):
  text may begin with anything, e.g. ``ID3`` or ``%PDF-``;
* the declared type is one the signature database could have recognised, or is textual: a type
  it knows nothing about (``application/vnd.android.package-archive``) may be a container built
  on the detected one, so it is not contradicted.

Unrecognised bytes contradict nothing (``text/plain`` for unknown bytes is accepted).

The allowlist (:class:`ContentTypePolicy`, env ``ALLOWED_CONTENT_TYPES``): comma-separated MIME
types, case-insensitive, each ``type/subtype`` or a ``type/*`` wildcard; empty or absent allows
any type. Both the declared type (or, without one, the detected type) and, when the bytes are
recognised, one of the types they were recognised as must be allowed.
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
ALLOWED_CONTENT_TYPES_ENV: Final = "ALLOWED_CONTENT_TYPES"

_MIME_NAME: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,127}"
# RFC 9110 token characters; RFC 6838 limits type and subtype to 127 characters each.
CONTENT_TYPE_RE: Final = re.compile(rf"^{_MIME_NAME}/{_MIME_NAME}$")
# An allowlist entry: a content type or ``type/*`` (no other ``*``: not ``*/*``, ``*/png``).
_PLAIN_NAME: Final = _MIME_NAME.replace("*", "")
_ALLOWLIST_ENTRY_RE: Final = re.compile(rf"^{_PLAIN_NAME}/(\*|{_PLAIN_NAME})$")

# A signature of three bytes or more (puremagic's confidence is the match length / 10).
MIN_CONFIDENCE: Final = 0.3

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

_EXTENSIONS: Final[dict[str, str]] = {
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
# When equally strong signatures name several types (a zip matches every zip-based format's
# signature), the common one wins.
_PREFERRED: Final = frozenset(_EXTENSIONS)
# Text: valid UTF-8 without control characters other than tab, line feed, form feed, return.
_BINARY_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Recognition:
    """What the signatures say: the best type (None when no signature of three bytes or more
    matched) and every type a signature that strong names."""

    best: str | None
    candidates: frozenset[str]


_UNRECOGNISED: Final = Recognition(None, frozenset())


def is_valid_content_type(value: str) -> bool:
    return CONTENT_TYPE_RE.fullmatch(value) is not None


def canonical(content_type: str) -> str:
    """Lower case, with well-known aliases replaced by their registered type."""
    lowered = content_type.lower()
    return _ALIASES.get(lowered, lowered)


def recognise(data: bytes) -> Recognition:
    """The types ``data``'s signatures (three bytes or more) name, via puremagic."""
    if not data:
        return _UNRECOGNISED
    import puremagic  # lazy: it loads the signature database (see the module doc)

    try:
        matches = puremagic.magic_string(data)
    except (puremagic.PureError, ValueError):
        return _UNRECOGNISED
    strong = [m for m in matches if m.mime_type and m.confidence >= MIN_CONFIDENCE]
    if not strong:
        return _UNRECOGNISED
    top = max(m.confidence for m in strong)
    # puremagic orders equal confidences by signature length, longest first.
    leaders = [canonical(m.mime_type) for m in strong if m.confidence == top]
    best = next((t for t in leaders if t in _PREFERRED), leaders[0])
    return Recognition(best, frozenset(canonical(m.mime_type) for m in strong))


def detect(data: bytes, recognition: Recognition | None = None) -> str:
    """The type recognised from ``data`` (``recognition``, when already made); else
    ``text/plain`` for text, else ``application/octet-stream``."""
    best = (recognise(data) if recognition is None else recognition).best
    if best is not None:
        return best
    return TEXT_PLAIN if is_text(data) else OCTET_STREAM


def is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _BINARY_CONTROL_RE.search(text) is None


def is_textual(content_type: str) -> bool:
    """A type whose content is text: ``text/*``, JSON, XML, JavaScript and ``+json``/``+xml``."""
    value = canonical(content_type)
    return (
        value.startswith("text/")
        or value in _TEXTUAL_APPLICATION_TYPES
        or value.endswith(("+json", "+xml"))
    )


def contradiction(declared: str, data: bytes, recognition: Recognition | None = None) -> str | None:
    """The type the bytes are when they contradict ``declared`` (rule in the module doc), else
    None."""
    found = recognise(data) if recognition is None else recognition
    if found.best is None:
        return None
    value = canonical(declared)
    if value == OCTET_STREAM or value in found.candidates:
        return None
    if value.endswith("+zip") and ZIP in found.candidates:
        return None
    if is_textual(value):
        return None if is_text(data) else found.best
    return found.best if value in _known_types() else None


@functools.cache
def _known_types() -> frozenset[str]:
    """Every type puremagic has a signature for."""
    import puremagic  # lazy, see the module doc

    rows = [*puremagic.magic_header_array, *puremagic.magic_footer_array]
    rows += [row for options in puremagic.multi_part_dict.values() for row in options]
    return frozenset(canonical(row.mime_type) for row in rows if row.mime_type)


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
    return _EXTENSIONS.get(canonical(content_type), ".bin")
