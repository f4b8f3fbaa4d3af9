"""A session's commit as validate sees it (tasks.core.commits): the part checks, what the commit
describes, and S3's checksum of the parts, without AWS."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tasks.contract import sessions
from tasks.contract.errors import SessionNotFound, SessionNotOpen, ValidationError
from tasks.core.commits import checksum_of, describe_commit, part_problems
from tasks.core.sessions import Part, Session
from tasks.core.validation import UploadRequest

MIB = sessions.MIB
NOW = 1_800_000_000


def session(size: int = 2 * 5 * MIB + 7, state: str = sessions.OPEN, **fields: object) -> Session:
    part_size, part_count = sessions.part_plan(size, 5 * MIB)
    values: dict[str, object] = {
        "upload_id": "sess-1",
        "caller": "caller-1",
        "product_id": "PROD-1",
        "file_name": "big.bin",
        "s3_key": "uploads/PROD-1/big.bin",
        "size": size,
        "part_size": part_size,
        "part_count": part_count,
        "content_type": None,
        "multipart_id": "mp-1",
        "state": state,
        "created_at": NOW - 60,
        "expires_at": NOW + 3600,
        **fields,
    }
    return Session(**values)  # type: ignore[arg-type]


def part(number: int, size: int, data: bytes = b"x") -> Part:
    return Part(
        number=number, size=size, sha256=hashlib.sha256(data).hexdigest(), etag=f"e{number}"
    )


def request(**fields: object) -> UploadRequest:
    values: dict[str, object] = {
        "productId": "PROD-1",
        "productName": "Big",
        "price": "1.5",
        "uploadId": "sess-1",
        **fields,
    }
    return UploadRequest(**values)  # type: ignore[arg-type]


def complete_parts(of: Session) -> list[Part]:
    return [part(n, of.part_bytes(n), bytes([n])) for n in range(1, of.part_count + 1)]


def test_every_part_present_and_planned_means_no_problem() -> None:
    opened = session()
    assert part_problems(opened, complete_parts(opened)) == []


def test_missing_wrong_sized_unchecked_and_extra_parts_are_each_named() -> None:
    opened = session()
    parts = [
        part(1, 5 * MIB + 1),
        Part(number=3, size=7, sha256=None, etag="e3"),
        part(4, 5),
    ]
    assert [(p.field, p.message) for p in part_problems(opened, parts)] == [
        ("uploadId", "part 4 is beyond the session's 3"),
        ("uploadId", f"part 1 is {5 * MIB + 1} bytes, not {5 * MIB}"),
        ("uploadId", "part 2 is missing"),
        ("uploadId", "part 3 has no SHA-256 checksum"),
    ]


def test_parts_that_are_gone_are_one_problem() -> None:
    assert [p.message for p in part_problems(session(), None)] == [
        "the upload session's parts are gone"
    ]


def test_a_commit_describes_the_session_with_the_bodys_product_name_and_price() -> None:
    opened = session(content_type="application/zip")
    upload = describe_commit(
        "req-1", request(), opened, complete_parts(opened), now=NOW, replayable=False
    )
    assert upload.to_dict() == {
        "productId": "PROD-1",
        "productName": "Big",
        "price": "1.5",
        "fileName": "big.bin",
        "contentType": "application/zip",
        "size": opened.size,
        "sha256": None,  # three parts: the whole file's SHA-256 is not known
        "s3Key": "uploads/PROD-1/big.bin",
        "idempotencyId": None,
        "fingerprint": None,
        "sessionId": "sess-1",
    }


def test_a_one_part_session_knows_the_files_sha256() -> None:
    opened = session(size=10)
    [only] = complete_parts(opened)
    upload = describe_commit("req-1", request(), opened, [only], now=NOW, replayable=False)
    assert upload.sha256 == only.sha256


def test_mismatched_fields_are_named_and_the_parts_checked_too() -> None:
    opened = session(content_type="image/png")
    body = request(productId="PROD-2", fileName="other.bin", contentType="image/gif")
    with pytest.raises(ValidationError) as refused:
        describe_commit("req-1", body, opened, [], now=NOW, replayable=False)
    assert [p.field for p in refused.value.details] == [
        "productId",
        "fileName",
        "contentType",
        "uploadId",
        "uploadId",
        "uploadId",
    ]


@pytest.mark.parametrize(
    ("state", "expires_at", "message"),
    [
        (sessions.ABORTED, NOW + 3600, "ABORTED"),
        (sessions.OPEN, NOW, "EXPIRED"),
        (sessions.COMMITTED, NOW + 3600, "COMMITTED"),
        (sessions.COMMITTING, NOW + 3600, "COMMITTING"),
    ],
)
def test_a_session_not_open_is_refused_without_a_key(
    state: str, expires_at: int, message: str
) -> None:
    closed = session(state=state, expires_at=expires_at)
    with pytest.raises(SessionNotOpen, match=message):
        describe_commit("req-1", request(), closed, None, now=NOW, replayable=False)


def test_a_committed_session_goes_on_with_a_key_for_store_to_replay() -> None:
    committed = session(state=sessions.COMMITTED)
    upload = describe_commit("req-1", request(), committed, None, now=NOW, replayable=True)
    assert upload.sessionId == "sess-1"


def test_no_session_is_not_found() -> None:
    with pytest.raises(SessionNotFound):
        describe_commit("req-1", request(), None, None, now=NOW, replayable=True)


def test_the_checksum_is_s3s_composite_whatever_the_number_of_parts() -> None:
    datas = [b"first", b"second", b"third"]
    parts = [part(n, len(d), d) for n, d in enumerate(datas, start=1)]
    joined = b"".join(hashlib.sha256(d).digest() for d in datas)
    value = base64.b64encode(hashlib.sha256(joined).digest()).decode()
    assert checksum_of(parts).to_dict() == {
        "algorithm": "SHA256",
        "type": "COMPOSITE",
        "value": f"{value}-3",
    }
    single = base64.b64encode(hashlib.sha256(hashlib.sha256(b"one").digest()).digest()).decode()
    assert checksum_of([part(1, 3, b"one")]).value == f"{single}-1"
