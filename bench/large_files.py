"""Large files through upload sessions, against local mode: the client's throughput beside a plain
boto3 ``upload_part`` loop, the commit's latency by file size, and the client's peak memory.

Files of random bytes are written to a temporary directory. Every upload runs in a process of its
own (:mod:`bench.large_client`), so that the sender neither competes with the in-process emulator
for the GIL nor shares its memory (moto holds the parts too); each object version made is deleted
afterwards, so that moto does not keep a gigabyte of them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from local.emulator import Emulator
from upload_client.parts import choose_part_size

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
MIB: Final = 1 << 20
MB: Final = 1_000_000
THROUGHPUT_BYTES: Final = 256 * MIB
COMMIT_SIZES: Final = (1 * MIB, 64 * MIB, 256 * MIB)
PARALLEL: Final = 8
_WRITE_CHUNK: Final = 8 * MIB


@dataclass(frozen=True)
class LargeFiles:
    """One run's figures, in seconds and bytes."""

    size: int
    part_size: int
    client_seconds: float | None  # None: the upload failed (client_failures says why)
    client_parts_seconds: float | None  # from the start until every part was stored
    client_retries: int  # attempts the client repeated (API calls and part PUTs)
    client_failures: list[str]
    client_peak_rss: int
    boto3_seconds: float
    boto3_parts_seconds: float  # create_multipart_upload and the upload_part loop
    boto3_list_parts_seconds: float  # the emulator's ListParts of the file's parts, apart
    boto3_complete_seconds: float  # moto's CompleteMultipartUpload of the file's parts
    commits: dict[int, list[float]]  # file size -> latency of each commit that succeeded
    commit_failures: dict[int, list[str]]

    @staticmethod
    def mib_per_second(size: int, seconds: float) -> float:
        return size / MIB / seconds

    @property
    def throughput_ratio(self) -> float | None:
        """Client MiB/s over boto3 MiB/s."""
        return None if self.client_seconds is None else self.boto3_seconds / self.client_seconds

    @property
    def parts_ratio(self) -> float | None:
        """The same for the parts alone, without the completion (moto's, in both)."""
        parts = self.client_parts_seconds
        return None if parts is None else self.boto3_parts_seconds / parts

    def commit_median(self, size: int) -> float | None:
        found = self.commits.get(size)
        return statistics.median(found) if found else None

    @property
    def commit_ratio(self) -> float | None:
        largest, smallest = self.commit_median(max(COMMIT_SIZES)), self.commit_median(MIB)
        return None if largest is None or smallest is None else largest / smallest

    @property
    def memory_target(self) -> int:
        """(parallel + 1) x part size + 100 MB: the parts in flight, one more, the interpreter."""
        return (PARALLEL + 1) * self.part_size + 100 * MB


def write_file(directory: Path, size: int) -> Path:
    """A file of ``size`` random bytes (incompressible, unlike zeros)."""
    path = directory / f"large-{size // MIB}-mib.bin"
    with path.open("wb") as handle:
        for offset in range(0, size, _WRITE_CHUNK):
            handle.write(os.urandom(min(_WRITE_CHUNK, size - offset)))
    return path


def _helper(*args: str | int | Path) -> dict[str, Any]:
    """Run one :mod:`bench.large_client` mode; its JSON line."""
    command = [sys.executable, "-m", "bench.large_client", *map(str, args)]
    result = subprocess.run(  # noqa: S603 - this interpreter, our module
        command, capture_output=True, text=True, cwd=PROJECT_ROOT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.large_client {args[0]} failed:\n{result.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def _delete(emulator: Emulator, found: dict[str, Any]) -> None:
    s3 = emulator.client("s3")
    for key, version in found["versions"]:
        s3.delete_object(Bucket=emulator.bucket_name, Key=key, VersionId=version)


def measure(emulator: Emulator, repetitions: int) -> LargeFiles:
    """One client upload (time, retries, peak RSS), one boto3 loop, then ``repetitions`` timed
    commits of each of COMMIT_SIZES."""
    base = emulator.base_url
    part_size = choose_part_size(THROUGHPUT_BYTES, PARALLEL)
    with tempfile.TemporaryDirectory(prefix="bench-large-") as workdir:
        files = {size: write_file(Path(workdir), size) for size in COMMIT_SIZES}
        largest = files[THROUGHPUT_BYTES]
        # One small session first: the sessions' cold Lambda set-up is not part of the figures.
        _delete(emulator, _helper("commit", base, files[MIB], PARALLEL, 1))
        client = _helper("client", base, largest, PARALLEL)
        _delete(emulator, client)
        key = f"bench/boto3-{os.getpid()}/{largest.name}"  # beside the service's uploads/
        bucket = emulator.bucket_name
        loop = _helper("boto3", emulator.aws_endpoint, bucket, key, largest, part_size)
        _delete(emulator, loop)
        commits: dict[int, dict[str, Any]] = {}
        for size, path in files.items():
            commits[size] = _helper("commit", base, path, PARALLEL, repetitions)
            _delete(emulator, commits[size])
    return LargeFiles(
        size=THROUGHPUT_BYTES,
        part_size=part_size,
        client_seconds=client["seconds"][0] if client["seconds"] else None,
        client_parts_seconds=client["parts_seconds"],
        client_retries=client["retries"],
        client_failures=client["failures"],
        client_peak_rss=client["peak_rss"],
        boto3_seconds=loop["seconds"][0],
        boto3_parts_seconds=loop["parts_seconds"],
        boto3_list_parts_seconds=loop["list_parts_seconds"],
        boto3_complete_seconds=loop["complete_seconds"],
        commits={size: list(found["seconds"]) for size, found in commits.items()},
        commit_failures={size: list(found["failures"]) for size, found in commits.items()},
    )
