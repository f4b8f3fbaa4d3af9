"""Finding the S3 object versions one request created (compensate, and a retried store).

A Store attempt can succeed in S3 and still fail as a task, so a request may have written versions
the state never learned about. Every version carries its request id in object metadata
(:data:`REQUEST_ID_METADATA`); this lookup lists the versions of exactly one key, skips those
older than the execution's start (minus clock skew) and keeps the ones whose metadata names the
request. Callers delete what it finds by VersionId (a plain DeleteObject would only add a delete
marker and hide the previous version).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, NamedTuple

import botocore.exceptions

from tasks.contract.keys import REQUEST_ID_METADATA
from tasks.core import aws

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CLOCK_SKEW: Final = timedelta(seconds=60)
_TIMESTAMP_RE: Final = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
_GONE_CODES: Final = frozenset({"404", "NoSuchKey", "NoSuchVersion"})


def parse_started_at(value: str | None) -> datetime | None:
    """Step Functions' ``$$.Execution.StartTime`` (e.g. 2026-11-25T22:48:54.123Z); None if absent
    or unreadable (then every version of the key is examined: the request-id match still
    decides, the cut-off only saves HEAD requests)."""
    match = _TIMESTAMP_RE.match(value or "")
    if match is None:
        return None
    date, time, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{time}.{micro}{offset}").astimezone(UTC)
    except ValueError:
        return None


def cutoff(started_at: str | None) -> datetime | None:
    """The oldest LastModified a version of this execution can have: its start minus skew."""
    since = parse_started_at(started_at)
    return since - CLOCK_SKEW if since is not None else None


class Version(NamedTuple):
    version_id: str
    last_modified: datetime


def candidate_versions(
    s3: S3Client, *, bucket: str, key: str, since: datetime | None
) -> list[Version]:
    """The versions of exactly ``key`` modified since ``since`` (all of them when None), newest
    first: the versions a request that started then may have created. Needs
    s3:ListBucketVersions (prefix ``key``). SDK errors propagate."""
    found: list[Version] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for version in page.get("Versions", []):
            if version["Key"] != key:
                continue
            if since is not None and version["LastModified"] < since:
                continue
            found.append(Version(version["VersionId"], version["LastModified"]))
    return found


def created_by(s3: S3Client, *, bucket: str, key: str, version_id: str, request_id: str) -> bool:
    """True when the version's metadata names ``request_id``; False for another request's version
    or one deleted meanwhile. Needs s3:GetObjectVersion. Other SDK errors propagate."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    except botocore.exceptions.ClientError as exc:
        if aws.error_code(exc) in _GONE_CODES:
            return False  # deleted meanwhile
        raise
    return bool(head.get("Metadata", {}).get(REQUEST_ID_METADATA) == request_id)


def versions_of_request(
    s3: S3Client, *, bucket: str, key: str, request_id: str, since: datetime | None
) -> list[str]:
    """Version ids of ``key`` (exactly) created by ``request_id``, newest first (see
    :func:`dated_versions_of_request`)."""
    return [
        version.version_id
        for version in dated_versions_of_request(
            s3, bucket=bucket, key=key, request_id=request_id, since=since
        )
    ]


def dated_versions_of_request(
    s3: S3Client, *, bucket: str, key: str, request_id: str, since: datetime | None
) -> list[Version]:
    """The versions of ``key`` (exactly) created by ``request_id``, newest first.

    Needs s3:ListBucketVersions (prefix ``key``) and s3:GetObjectVersion on the key. SDK errors
    propagate; a version deleted meanwhile is skipped.
    """
    return [
        version
        for version in candidate_versions(s3, bucket=bucket, key=key, since=since)
        if created_by(
            s3, bucket=bucket, key=key, version_id=version.version_id, request_id=request_id
        )
    ]
