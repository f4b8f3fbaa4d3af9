"""Session uploads end to end against the fake service: parts hashed, sent in parallel to their
URLs with the given headers, committed by uploadId; resuming, expired URLs, storage's refusals,
retries of a part, and Ctrl-C."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from tests.unit.test_client_fakes import (
    MIB,
    FakeService,
    api_error,
    hermetic_aws,
    running_fake,  # noqa: F401 - provides the fixture "fake"
    s3_error,
    write_file,
)
from upload_client import RetryPolicy, UploadResult, upload_file
from upload_client.errors import (
    ConfigurationError,
    FileChanged,
    ServiceFailed,
    SessionNotOpen,
    StorageRefused,
    UploadInterrupted,
)

SMALL_PARTS = 100_000  # what the fake picks when told to: files just over MAX_FILE_BYTES


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic_aws(monkeypatch, tmp_path, credentials=False)


def _upload(fake: FakeService, path: Path, progress: list[int], **options: object) -> UploadResult:
    arguments: dict[str, object] = {
        "product_id": "P-1",
        "product_name": "Thing",
        "price": "12.3400000000000000000001",
        "api_url": fake.api_url,
        "retry": RetryPolicy(sleep=lambda _seconds: None),
        "progress": progress.append,
        **options,
    }
    return upload_file(path, **arguments)  # type: ignore[arg-type]


def _session_id(fake: FakeService) -> str:
    """The id of the one session the fake holds."""
    (session,) = fake.sessions.values()
    return session.upload_id


def _slices(data: bytes, part_size: int) -> list[bytes]:
    return [data[offset : offset + part_size] for offset in range(0, len(data), part_size)]


def test_a_large_file_goes_in_parallel_parts_then_one_commit(
    fake: FakeService, tmp_path: Path
) -> None:
    path, data = write_file(tmp_path, 11 * MIB + 3)
    fake.part_delays.update({1: 0.3, 2: 0.1, 3: 0.1})  # the first part finishes last
    progress: list[int] = []

    result = _upload(fake, path, progress, parallel=3)

    (create,) = fake.requests_to("POST /uploads")
    assert create.json() == {
        "productId": "P-1",
        "fileName": "big.bin",
        "size": len(data),
        "partSize": 5 * MIB,
    }
    pieces = _slices(data, 5 * MIB)
    (urls,) = fake.requests_to("POST parts")
    assert urls.json()["parts"] == [
        {"partNumber": n, "sha256": hashlib.sha256(piece).hexdigest()}
        for n, piece in enumerate(pieces, start=1)
    ]
    puts = sorted(fake.requests_to("PUT part"), key=lambda r: r.path)
    assert [put.body for put in puts] == pieces
    for put, piece in zip(puts, pieces, strict=True):
        assert put.headers["content-length"] == str(len(piece))
        assert "x-amz-checksum-sha256" in put.headers
        assert "authorization" not in put.headers
    assert fake.completed_parts[-1] == 1
    assert fake.max_concurrent_puts >= 2
    (commit,) = fake.requests_to("POST /upload")
    body = commit.json()
    assert body["uploadId"] == _session_id(fake)
    assert "fileContent" not in body
    assert body["price"] == Decimal("12.3400000000000000000001")
    assert commit.headers["idempotency-key"]
    assert (result.size, result.price) == (len(data), Decimal("12.3400000000000000000001"))
    assert result.checksum is not None
    assert result.checksum.value.endswith("-3")
    assert sum(progress) == len(data)


def test_the_service_part_size_is_used_and_urls_come_100_at_most_per_call(
    fake: FakeService, tmp_path: Path
) -> None:
    fake.part_size_override = 1_900
    path, _ = write_file(tmp_path, 200_000)

    _upload(fake, path, [], parallel=64)

    batches = [len(request.json()["parts"]) for request in fake.requests_to("POST parts")]
    assert batches == [100, 6]
    assert sorted(fake.completed_parts) == list(range(1, 107))
    assert fake.sessions[_session_id(fake)].state == "COMMITTED"


def test_resume_skips_the_parts_stored_with_the_same_bytes(
    fake: FakeService, tmp_path: Path
) -> None:
    path, data = write_file(tmp_path, 250_000)
    session = fake.open_session(data, SMALL_PARTS)
    pieces = _slices(data, SMALL_PARTS)
    session.parts[1] = (len(pieces[0]), hashlib.sha256(pieces[0]).hexdigest())
    session.parts[2] = (len(pieces[1]), hashlib.sha256(b"other bytes").hexdigest())
    progress: list[int] = []

    result = _upload(fake, path, progress, resume=session.upload_id)

    (urls,) = fake.requests_to("POST parts")
    assert [part["partNumber"] for part in urls.json()["parts"]] == [2, 3]
    assert sorted(fake.completed_parts) == [2, 3]
    assert session.parts[2] == (len(pieces[1]), hashlib.sha256(pieces[1]).hexdigest())
    assert fake.requests_to("POST /uploads") == []
    assert result.size == len(data)
    assert sum(progress) == len(data)


def test_resuming_a_session_that_is_not_open_is_refused(fake: FakeService, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, 250_000)
    session = fake.open_session(data, SMALL_PARTS)
    session.state = "COMMITTED"

    with pytest.raises(SessionNotOpen, match="is COMMITTED, not OPEN"):
        _upload(fake, path, [], resume=session.upload_id)

    assert fake.requests_to("PUT part") == []
    assert fake.requests_to("POST /upload") == []


def test_resuming_with_another_file_is_refused(fake: FakeService, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, 250_000)
    session = fake.open_session(data + b"more", SMALL_PARTS)

    with pytest.raises(ConfigurationError, match="not the file of that upload"):
        _upload(fake, path, [], resume=session.upload_id)


def test_an_expired_url_is_asked_for_again(fake: FakeService, tmp_path: Path) -> None:
    fake.part_size_override = SMALL_PARTS
    path, _ = write_file(tmp_path, 250_000)
    fake.script("PUT part", s3_error(403, "AccessDenied", "Request has expired"))

    result = _upload(fake, path, [], parallel=2)

    batches = [[p["partNumber"] for p in r.json()["parts"]] for r in fake.requests_to("POST parts")]
    assert batches[0] == [1, 2, 3]
    assert len(batches) == 2
    assert len(batches[1]) == 1
    assert sorted(fake.completed_parts) == [1, 2, 3]
    assert result.size == 250_000


def test_a_bad_digest_is_not_retried_and_says_the_file_changed(
    fake: FakeService, tmp_path: Path
) -> None:
    fake.part_size_override = SMALL_PARTS
    path, _ = write_file(tmp_path, 250_000)
    fake.script("PUT part", s3_error(400, "BadDigest", "The SHA256 you specified did not match."))

    with pytest.raises(FileChanged, match="changed on disk") as failed:
        _upload(fake, path, [], parallel=1)

    assert failed.value.upload_id == _session_id(fake)
    assert failed.value.code == "BadDigest"
    assert len(fake.requests_to("PUT part")) == 1
    assert fake.requests_to("POST /upload") == []


def test_an_aborted_session_is_a_storage_refusal(fake: FakeService, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, 250_000)
    session = fake.open_session(data, SMALL_PARTS)
    fake.script("PUT part", s3_error(404, "NoSuchUpload", "The specified upload does not exist."))

    with pytest.raises(StorageRefused, match="no longer exists") as failed:
        _upload(fake, path, [], resume=session.upload_id, parallel=1)

    assert failed.value.status == 404
    assert failed.value.upload_id == session.upload_id


def test_a_part_is_retried_on_5xx(fake: FakeService, tmp_path: Path) -> None:
    fake.part_size_override = SMALL_PARTS
    path, _ = write_file(tmp_path, 250_000)
    fake.script("PUT part", s3_error(500, "InternalError", "oops"), s3_error(503, "SlowDown", "x"))

    result = _upload(fake, path, [], parallel=1)

    assert len(fake.requests_to("PUT part")) == 5
    assert result.size == 250_000


def test_a_failed_commit_names_the_open_session(fake: FakeService, tmp_path: Path) -> None:
    fake.part_size_override = SMALL_PARTS
    path, _ = write_file(tmp_path, 250_000)
    fake.script("POST /upload", *[api_error(500, "InternalError", "nothing was stored")] * 6)

    with pytest.raises(ServiceFailed) as failed:
        _upload(fake, path, [])

    assert failed.value.upload_id == _session_id(fake)
    keys = {request.headers["idempotency-key"] for request in fake.requests_to("POST /upload")}
    assert len(keys) == 1


def test_ctrl_c_names_the_session_to_resume(fake: FakeService, tmp_path: Path) -> None:
    fake.part_size_override = SMALL_PARTS
    path, _ = write_file(tmp_path, 250_000)

    def interrupt(_nbytes: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(UploadInterrupted) as stopped:
        upload_file(
            path,
            product_id="P-1",
            product_name="Thing",
            price="1",
            api_url=fake.api_url,
            progress=interrupt,
        )

    assert stopped.value.upload_id == _session_id(fake)
    assert fake.requests_to("POST /upload") == []
