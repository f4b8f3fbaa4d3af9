"""Splitting a file into a session's parts, and reading and hashing each part from disk.

Parts are numbered from 1; each is ``part_size`` bytes but the last, which holds the remainder.
Hashing reads a part in 1 MiB chunks and reading loads one part, so the file is never held in
memory whole: at most one part per upload worker, plus a chunk.

The part size the client asks for (:func:`choose_part_size`) keeps every worker busy without huge
parts: ``max(5 MiB, ceil(size / parallel))`` rounded up to a whole MiB, capped at 64 MiB; when
64 MiB parts would be more than 10,000 (files over 625 GiB), the smallest whole-MiB size that
makes 10,000 parts or fewer instead. A larger part means fewer requests, a smaller one less
memory ((parallel + 1) x part size at most) and less to send again after a failure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from upload_client.errors import FileChanged

MIB: Final = 1 << 20
MIN_PART_SIZE: Final = 5 * MIB
MAX_PART_SIZE: Final = 5 * 1024 * MIB
PREFERRED_MAX_PART_SIZE: Final = 64 * MIB
MAX_PARTS: Final = 10_000
_CHUNK: Final = MIB


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def choose_part_size(size: int, parallel: int) -> int:
    """The part size to ask the service for (the rule is in the module's docstring)."""
    per_worker = _ceil_div(_ceil_div(size, max(1, parallel)), MIB) * MIB
    part_size = min(max(MIN_PART_SIZE, per_worker), PREFERRED_MAX_PART_SIZE)
    if _ceil_div(size, part_size) > MAX_PARTS:
        part_size = _ceil_div(_ceil_div(size, MAX_PARTS), MIB) * MIB
    return min(part_size, MAX_PART_SIZE)


def plan(size: int, part_size: int) -> list[Part]:
    """The parts of a file of ``size`` bytes."""
    return [
        Part(number, offset, min(part_size, size - offset))
        for number, offset in enumerate(range(0, size, part_size), start=1)
    ]


def _short(part: Part) -> FileChanged:
    return FileChanged(
        f"the file ended inside part {part.number}: it changed on disk during the upload",
        code="FileChanged",
    )


def sha256_of(handle: BinaryIO, part: Part) -> str:
    """The part's SHA-256 (lowercase hex), read from ``handle`` a chunk at a time."""
    handle.seek(part.offset)
    digest = hashlib.sha256()
    remaining = part.size
    while remaining:
        chunk = handle.read(min(_CHUNK, remaining))
        if not chunk:
            raise _short(part)
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


def read(path: Path, part: Part) -> bytes:
    """The part's bytes, through a handle of its own (workers read in parallel)."""
    with path.open("rb") as handle:
        handle.seek(part.offset)
        data = handle.read(part.size)
    if len(data) != part.size:
        raise _short(part)
    return data
