"""``upload-file`` through typer's CliRunner against the fake service: the JSON output, the one-line
errors and the exit statuses of the table in ``upload_client.cli``."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.test_client_fakes import (
    FakeService,
    api_error,
    hermetic_aws,
    running_fake,  # noqa: F401 - provides the fixture "fake"
    s3_error,
    write_file,
)
from upload_client import RetryPolicy, UploadInterrupted, cli, upload_file

PRODUCT = ["--product-id", "P-1", "--product-name", "Thing", "--price", "99.990"]


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic_aws(monkeypatch, tmp_path, credentials=False)
    monkeypatch.delenv(cli.API_KEY_ENV, raising=False)
    # Retries without waiting: the bounds are the real ones, the clock is not.
    fast = RetryPolicy(sleep=lambda _seconds: None)
    monkeypatch.setattr(cli, "upload_file", partial(upload_file, retry=fast))


def _run(path: Path, *arguments: str):
    return CliRunner().invoke(cli.app, [str(path), *PRODUCT, *arguments])


def test_json_prints_the_services_answer(fake: FakeService, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, 300, "notes.txt")

    result = _run(path, "--api-url", fake.api_url, "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout, parse_float=Decimal)
    assert answer["price"] == Decimal("99.990")
    assert answer["size"] == len(data)
    assert answer["fileName"] == "notes.txt"
    assert answer["versionId"] == "v-1"
    assert result.stderr == ""


def test_the_api_url_can_come_from_the_stack(
    fake: FakeService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = write_file(tmp_path, 300, "notes.txt")
    asked: list[str] = []

    def outputs(_session: object, stack_name: str) -> dict[str, str]:
        asked.append(stack_name)
        return {"ApiUrl": fake.api_url, "ApiKeyId": "abc"}

    monkeypatch.setattr(cli, "stack_outputs", outputs)

    result = _run(path, "--stack-name", "UploadService", "--quiet")

    assert result.exit_code == 0, result.output
    assert asked == ["UploadService"]
    assert "Uploaded notes.txt (300 bytes)" in result.stdout


def test_a_refused_request_is_one_line_per_problem_and_status_1(
    fake: FakeService, tmp_path: Path
) -> None:
    path, _ = write_file(tmp_path, 300)
    details = [
        {"field": "price", "message": "must be below 1e12"},
        {"field": "fileName", "message": "must not contain '/'"},
    ]
    fake.script("POST /upload", api_error(400, "ValidationError", "The body is invalid.", details))

    result = _run(path, "--api-url", fake.api_url, "--quiet")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: POST /upload: The body is invalid. "
        "(ValidationError, HTTP 400, request req-ValidationError)",
        "  price: must be below 1e12",
        "  fileName: must not contain '/'",
    ]
    assert result.stdout == ""
    assert len(fake.requests_to("POST /upload")) == 1


def test_a_service_that_keeps_failing_is_status_3_with_the_resume_command(
    fake: FakeService, tmp_path: Path
) -> None:
    fake.part_size_override = 100_000
    path, _ = write_file(tmp_path, 250_000)
    fake.script("POST /upload", *[api_error(503, "ServiceUnavailable", "busy")] * 6)

    result = _run(path, "--api-url", fake.api_url, "--quiet", "--parallel", "2")

    (session,) = fake.sessions.values()
    assert result.exit_code == 3
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: POST /upload: busy (ServiceUnavailable, HTTP 503")
    assert line.endswith(
        f"--api-url {fake.api_url} --parallel 2 --quiet --resume {session.upload_id}"
    )


def test_storage_refusing_a_part_is_status_4(fake: FakeService, tmp_path: Path) -> None:
    fake.part_size_override = 100_000
    path, _ = write_file(tmp_path, 250_000)
    fake.script("PUT part", s3_error(400, "BadDigest", "The SHA256 you specified did not match."))

    result = _run(path, "--api-url", fake.api_url, "--json", "--parallel", "1")

    assert result.exit_code == 4
    assert result.stdout == ""
    assert "the file changed on disk (BadDigest, HTTP 400" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "give exactly one of --api-url and --stack-name"),
        (("--api-url", "http://127.0.0.1:9/upload", "--stack-name", "S"), "exactly one of"),
        (("--api-url", "http://127.0.0.1:9/upload", "--price", "cheap"), "not a decimal number"),
        (("--api-url", "ftp://example.com/upload"), "is not an http(s) URL"),
    ],
)
def test_usage_errors_are_status_2(
    tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    path, _ = write_file(tmp_path, 10)

    result = _run(path, *arguments)

    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path / "absent.bin", "--api-url", "http://127.0.0.1:9/upload")

    assert result.exit_code == 2
    assert "absent.bin" in result.stderr


def test_ctrl_c_prints_the_exact_resume_command_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = write_file(tmp_path, 10, "my file.bin")

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise UploadInterrupted("u-123")

    monkeypatch.setattr(cli, "upload_file", interrupted)

    result = _run(path, "--api-url", "http://127.0.0.1:9/upload", "--api-key", "s3cr3t")

    assert result.exit_code == 130
    # Above it, the progress bar as it stood (stderr is no terminal here: drawn once, at the end).
    assert result.stderr.splitlines()[-1:] == [
        f"Interrupted: upload u-123 is still open; to continue: upload-file '{path}' "
        "--product-id P-1 --product-name Thing --price 99.990 "
        '--api-url http://127.0.0.1:9/upload --resume u-123 --api-key "$UPLOAD_API_KEY"'
    ]
    assert "s3cr3t" not in result.output
