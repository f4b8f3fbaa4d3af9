"""Upload sessions: how a large file reaches S3 as a multipart upload, straight from the client.

A session (``POST /uploads``) is an S3 multipart upload to the file's final key, created with
SHA-256 part checksums and SSE-KMS, plus an item in the sessions table (partition key
``uploadId``: the session's id, which is the id of the request that opened it). The client asks
for presigned part URLs (``POST /uploads/{uploadId}/parts``: each part's SHA-256 and length
signed in, so S3 refuses other bytes), PUTs the parts, and can read back what S3 holds
(``GET /uploads/{uploadId}``) or abort (``DELETE``). Nothing is visible in the bucket meanwhile:
an unfinished multipart upload is not an object version, and the bucket's lifecycle rule removes
an abandoned one's parts.

The client commits with ``POST /upload`` and ``uploadId`` instead of ``fileContent``: the same
workflow as an inline upload (tasks.core.commits), whose Store completes the multipart upload,
the commit point, one call whatever the file's size.

A session moves OPEN -> COMMITTING (Store, in the ledger transaction that takes the item's
lease) -> COMMITTED (Record, in its commit transaction); DELETE makes an OPEN one ABORTED. A commit
that fails before the multipart upload completed puts the session back to OPEN (the client may
fix it and commit again); one that fails after leaves it ABORTED, its version deleted like any
failed upload's. An OPEN session past SESSION_SECONDS is expired: it takes no more parts and
cannot be committed.
"""

from __future__ import annotations

from typing import Any, Final

MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB

# S3's multipart rules: every part but the last is 5 MiB .. 5 GiB; at most 10,000 parts.
MIN_PART_BYTES: Final = 5 * MIB
MAX_PART_BYTES: Final = 5 * GIB
MAX_PARTS: Final = 10_000
# S3's largest object.
MAX_OBJECT_BYTES: Final = 5 * 1024 * GIB
# The part size the service picks when the client names none (raised so parts stay <= MAX_PARTS).
DEFAULT_PART_BYTES: Final = 64 * MIB
DEFAULT_MAX_UPLOAD_BYTES: Final = 5 * GIB  # the maxUploadBytes context flag's default
DEFAULT_MAX_OPEN_SESSIONS: Final = 100  # per caller; the maxOpenSessions context flag's default
MAX_PARTS_PER_CALL: Final = 100  # part URLs one POST /uploads/{uploadId}/parts may ask for

SESSION_SECONDS: Final = 24 * 60 * 60  # a session expires a day after it opened
# A presigned part URL lives this long (never past the session's expiry): a client asks again.
PART_URL_SECONDS: Final = 60 * 60
# A closed session's item is kept this long after its expiry (then DynamoDB's TTL removes it).
KEEP_CLOSED_SECONDS: Final = 7 * 24 * 60 * 60
# The bucket's lifecycle rule aborts multipart uploads this many days after they began (the
# session expired by then; its parts are billed until aborted).
ABORT_INCOMPLETE_DAYS: Final = 1

# A session's id: an API Gateway request id (a UUID), or any id of this shape.
SESSION_ID_PATTERN: Final = r"[A-Za-z0-9._-]{1,128}"

# -- the sessions table ------------------------------------------------------------------------
PARTITION_KEY: Final = "uploadId"
# Sparse index of the OPEN sessions by caller (``openCaller``, set only while OPEN), sorted by
# expiry: how many sessions a caller holds open.
OPEN_INDEX: Final = "OpenSessionsByCaller"
OPEN_CALLER: Final = "openCaller"
EXPIRES_AT: Final = "expiresAt"  # epoch seconds the session expires
DELETE_AT: Final = "deleteAt"  # epoch seconds; the table's TTL attribute

STATE: Final = "state"
OPEN: Final = "OPEN"
COMMITTING: Final = "COMMITTING"  # a commit (POST /upload with uploadId) is running
COMMITTED: Final = "COMMITTED"
ABORTED: Final = "ABORTED"
HOLDER: Final = "holder"  # the commit request, while COMMITTING and once COMMITTED
EXPIRED: Final = "EXPIRED"  # what GET answers for an OPEN session past its expiry


def table_schema() -> dict[str, Any]:
    """The table's key and its index as DynamoDB's ``CreateTable`` takes them: what
    infra/storage.py declares (tests/infrastructure/test_storage.py holds the two together), for
    the tables tests create on moto."""
    return {
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": OPEN_CALLER, "AttributeType": "S"},
            {"AttributeName": EXPIRES_AT, "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": OPEN_INDEX,
                "KeySchema": [
                    {"AttributeName": OPEN_CALLER, "KeyType": "HASH"},
                    {"AttributeName": EXPIRES_AT, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    }


def part_plan(size: int, part_size: int | None) -> tuple[int, int]:
    """(part size, part count) for a file of ``size`` bytes: ``part_size`` when given (already
    within MIN_PART_BYTES .. MAX_PART_BYTES), else DEFAULT_PART_BYTES raised to a whole MiB so
    that the parts are at most MAX_PARTS. Raises ValueError when ``part_size`` makes more."""
    if part_size is None:
        needed = -(-size // MAX_PARTS)
        part_size = max(DEFAULT_PART_BYTES, -(-needed // MIB) * MIB)
    count = max(1, -(-size // part_size))
    if count > MAX_PARTS:
        raise ValueError(f"makes {count} parts; at most {MAX_PARTS} are allowed")
    return part_size, count


def part_bytes(size: int, part_size: int, part_number: int) -> int:
    """The size of part ``part_number`` (1-based): ``part_size``, the last one the remainder."""
    count = max(1, -(-size // part_size))
    if part_number < count:
        return part_size
    return size - part_size * (count - 1)
