"""Splitting a file into parts, hashing and reading them, and the part size the client asks for."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.unit.test_client_fakes import MIB, write_file
from upload_client import parts
from upload_client.errors import FileChanged


def test_a_file_of_11_mib_and_3_bytes_makes_two_full_parts_and_the_remainder(
    tmp_path: Path,
) -> None:
    path, data = write_file(tmp_path, 11 * MIB + 3)

    plan = parts.plan(len(data), 5 * MIB)
    with path.open("rb") as handle:
        digests = [parts.sha256_of(handle, part) for part in plan]

    assert [(p.number, p.offset, p.size) for p in plan] == [
        (1, 0, 5 * MIB),
        (2, 5 * MIB, 5 * MIB),
        (3, 10 * MIB, MIB + 3),
    ]
    slices = [data[: 5 * MIB], data[5 * MIB : 10 * MIB], data[10 * MIB :]]
    assert digests == [hashlib.sha256(piece).hexdigest() for piece in slices]
    assert [parts.read(path, part) for part in plan] == slices


def test_a_file_that_shrank_is_reported_as_changed(tmp_path: Path) -> None:
    path, _ = write_file(tmp_path, 100)
    plan = parts.plan(100, 60)
    path.write_bytes(b"short")

    with pytest.raises(FileChanged, match="part 2"), path.open("rb") as handle:
        parts.sha256_of(handle, plan[1])
    with pytest.raises(FileChanged, match="part 1"):
        parts.read(path, plan[0])


@pytest.mark.parametrize(
    ("size", "parallel", "expected"),
    [
        (11 * MIB + 3, 8, 5 * MIB),  # never below storage's 5 MiB minimum
        (100 * MIB, 8, 13 * MIB),  # ceil(12.5 MiB) to a whole MiB: 8 parts, one per worker
        (100 * MIB, 1, 64 * MIB),  # capped at 64 MiB
        (10 * 1024 * MIB, 8, 64 * MIB),
        (1024 * 1024 * MIB, 8, 105 * MIB),  # 1 TiB: 64 MiB parts would be over 10,000
    ],
)
def test_the_part_size_keeps_every_worker_busy_within_the_bounds(
    size: int, parallel: int, expected: int
) -> None:
    chosen = parts.choose_part_size(size, parallel)

    assert chosen == expected
    assert len(parts.plan(size, chosen)) <= parts.MAX_PARTS
