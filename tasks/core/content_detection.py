"""What a file's bytes are: detection by signature, and when a declared type contradicts them.

Detection uses ``puremagic`` (a pure-Python signature database). Its import loads that database
(a few milliseconds), so it happens inside :func:`recognise`, on first use. The type rules that
need no bytes (syntax, aliases, the allowlist) are in :mod:`tasks.contract.content_types`.

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

Unrecognised bytes contradict nothing (``text/plain`` for unknown bytes is accepted), except a
declared type of :data:`SIGNED_TYPES`: every file of those types begins with a signature of
three bytes or more, so bytes without it are not such a file (plain text declared as
``image/png`` or ``application/pdf`` is refused).
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass
from typing import Final

from tasks.contract.content_types import (
    EXTENSIONS,
    OCTET_STREAM,
    TEXT_PLAIN,
    ZIP,
    canonical,
    is_textual,
)

# A signature of three bytes or more (puremagic's confidence is the match length / 10).
MIN_CONFIDENCE: Final = 0.3
# When equally strong signatures name several types (a zip matches every zip-based format's
# signature), the common one wins.
_PREFERRED: Final = frozenset(EXTENSIONS)
# Types whose every file begins with a signature of three bytes or more that puremagic knows.
# (Not audio/mpeg: an MP3 without an ID3 tag starts with a two-byte frame sync; not video/mp4,
# whose ftyp box need not come first.)
SIGNED_TYPES: Final = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/tiff",
        "application/pdf",
        ZIP,
        "application/gzip",
    }
)
# Text: valid UTF-8 without control characters other than tab, line feed, form feed, return.
_BINARY_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Recognition:
    """What the signatures say: the best type (None when no signature of three bytes or more
    matched) and every type a signature that strong names."""

    best: str | None
    candidates: frozenset[str]


_UNRECOGNISED: Final = Recognition(None, frozenset())


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


def detect(data: bytes, recognition: Recognition | None = None, *, head: bool = False) -> str:
    """The type recognised from ``data`` (``recognition``, when already made); else
    ``text/plain`` for text, else ``application/octet-stream``."""
    best = (recognise(data) if recognition is None else recognition).best
    if best is not None:
        return best
    return TEXT_PLAIN if is_text(data, head=head) else OCTET_STREAM


def is_text(data: bytes, *, head: bool = False) -> bool:
    """UTF-8 without control characters. ``head``: ``data`` is the first bytes of a longer file,
    so a character cut at its end is not an error."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=not head)
    except UnicodeDecodeError:
        return False
    return _BINARY_CONTROL_RE.search(text) is None


def contradiction(
    declared: str, data: bytes, recognition: Recognition | None = None, *, head: bool = False
) -> str | None:
    """The type the bytes are when they contradict ``declared`` (rule in the module doc), else
    None. ``head``: ``data`` is the file's first bytes (:func:`is_text`)."""
    found = recognise(data) if recognition is None else recognition
    value = canonical(declared)
    if found.best is None:
        return f"not {value} (they lack its signature)" if value in SIGNED_TYPES else None
    if value == OCTET_STREAM or value in found.candidates:
        return None
    if value.endswith("+zip") and ZIP in found.candidates:
        return None
    if is_textual(value):
        return None if is_text(data, head=head) else found.best
    return found.best if value in _known_types() else None


@functools.cache
def _known_types() -> frozenset[str]:
    """Every type puremagic has a signature for."""
    import puremagic  # lazy, see the module doc

    rows = [*puremagic.magic_header_array, *puremagic.magic_footer_array]
    rows += [row for options in puremagic.multi_part_dict.values() for row in options]
    return frozenset(canonical(row.mime_type) for row in rows if row.mime_type)
