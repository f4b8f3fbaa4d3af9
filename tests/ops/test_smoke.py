"""``upload-ops smoke``: its contract checks on hand-made answers, its discovery and signing, and
whole runs against a real local-mode run (``local.emulator.Emulator`` in-process, free ports),
passing and failing, each leaving the bucket and the metadata table as they were."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner, Result

from local.emulator import Emulator, free_port
from ops import logs, smoke
from ops.cli import app
from tasks.contract import names

DATA = b"upload-ops smoke test\n"
SENT = smoke.SmokeFile("smoke-0123abcd", DATA)
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/6f6bf3e0-042b-4751-a574-025b094b7b31"
CHECK_NAMES = ["upload", "object", "metadata", "rejection", "cleanup"]


def _answer(**changes: Any) -> dict[str, Any]:
    """The 200 body the service gives for SENT, as parsed from JSON (numbers with a fraction as
    Decimal), with ``changes`` applied (None: the field left out)."""
    body: dict[str, Any] = {
        "message": "File uploaded successfully",
        "requestId": "c0ffee00-1111-2222-3333-444455556666",
        "productId": "smoke-0123abcd",
        "productName": "upload-ops smoke",
        "price": Decimal("12.34"),
        "fileName": "smoke.txt",
        "contentType": "text/plain",
        "size": len(DATA),
        "sha256": hashlib.sha256(DATA).hexdigest(),
        "s3Key": "uploads/smoke-0123abcd/smoke.txt",
        "versionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        "timestamp": "2026-11-25T22:48:54.123Z",
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not None}


def _refusal(**changes: Any) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": "ValidationError",
        "message": "The request body is invalid.",
        "details": [{"field": "productName", "message": "is required"}],
    }
    error.update(changes)
    return {"error": error, "requestId": "beef0000-aaaa-bbbb-cccc-ddddeeeeffff"}


# -- the contract checks, on hand-made answers -------------------------------------------------
def test_the_documented_200_body_passes() -> None:
    assert smoke.success_problems(_answer(), SENT) == []


@pytest.mark.parametrize("field", list(smoke.SUCCESS_FIELDS))
def test_a_200_body_missing_a_field_fails_naming_it(field: str) -> None:
    assert smoke.success_problems(_answer(**{field: None}), SENT) == [f"the 200 body lacks {field}"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"size": "22"}, "the 200 body's size is str, not int"),
        ({"price": True}, "the 200 body's price is bool, not int"),
        ({"versionId": 7}, "the 200 body's versionId is int, not str"),
        ({"price": Decimal("12.3")}, "price is Decimal('12.3'), expected Decimal('12.34')"),
        ({"sha256": hashlib.sha256(b"other").hexdigest()}, "sha256 is '"),
        ({"s3Key": "uploads/smoke-0123abcd/other.txt"}, "s3Key is 'uploads/smoke-0123abcd/other"),
        ({"message": "OK"}, "message is 'OK', expected 'File uploaded successfully'"),
        ({"versionId": ""}, "versionId is empty"),
        ({"timestamp": "2026-11-25 22:48:54"}, "timestamp '2026-11-25 22:48:54' is not like"),
        ({"uploadId": "u-1"}, "the 200 body has an undocumented field uploadId"),
    ],
)
def test_a_200_body_that_breaks_the_contract_fails_saying_how(
    changes: dict[str, Any], problem: str
) -> None:
    problems = smoke.success_problems(_answer(**changes), SENT)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_a_200_body_that_is_not_an_object_fails() -> None:
    assert smoke.success_problems([_answer()], SENT) == ["the 200 body is not a JSON object"]


def test_the_documented_refusal_passes() -> None:
    assert smoke.rejection_problems(400, _refusal()) == []


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (500, _refusal(), "status 500, not 400"),
        (400, {"error": _refusal()["error"]}, "the error body lacks requestId"),
        (400, {**_refusal(), "requestId": ""}, "requestId is empty"),
        (400, _refusal(code="InternalError"), "error.code is 'InternalError', not ValidationError"),
        (400, _refusal(message=""), "error.message is empty"),
        (400, _refusal(message=None), "error's message is NoneType, not str"),
        (
            400,
            _refusal(details=[{"field": "price", "message": "must be a JSON number"}]),
            "error.details has no {field, message} for productName",
        ),
        (400, {"message": "Forbidden"}, "the error body lacks error"),
    ],
)
def test_a_refusal_that_breaks_the_contract_fails_saying_how(
    status: int, body: dict[str, Any], problem: str
) -> None:
    assert problem in smoke.rejection_problems(status, body)


def _stored(**changes: Any) -> dict[str, Any]:
    """A GetObject answer for SENT's bytes, encrypted with KEY_ARN."""
    answer = {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": KEY_ARN,
        "ChecksumSHA256": base64.b64encode(hashlib.sha256(DATA).digest()).decode(),  # S3's
        "ContentType": "text/plain",
    }
    return {**answer, **changes}


def test_the_stored_object_passes() -> None:
    assert smoke.object_problems(_stored(), DATA, SENT, KEY_ARN) == []
    assert smoke.object_problems(_stored(), DATA, SENT, KEY_ARN.rsplit("/", 1)[1]) == []


@pytest.mark.parametrize(
    ("stored", "data", "bucket_key", "problem"),
    [
        (_stored(), b"other", KEY_ARN, "the stored 5 bytes differ from the 22 sent"),
        (_stored(ServerSideEncryption="AES256"), DATA, KEY_ARN, "encryption is 'AES256'"),
        (_stored(), DATA, KEY_ARN.replace("6f6b", "0000"), "encrypted with key 'arn:aws:kms"),
        (_stored(), DATA, None, "the bucket has no default KMS key"),
        (_stored(ChecksumSHA256=None), DATA, KEY_ARN, "S3's SHA-256 checksum is None"),
        (_stored(ContentType="binary/octet-stream"), DATA, KEY_ARN, "Content-Type is 'binary"),
    ],
)
def test_a_stored_object_unlike_the_upload_fails_saying_how(
    stored: dict[str, Any], data: bytes, bucket_key: str | None, problem: str
) -> None:
    problems = smoke.object_problems(stored, data, SENT, bucket_key)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def _item(**changes: Any) -> dict[str, Any]:
    item = {
        **{k: v for k, v in _answer().items() if k not in ("message", "timestamp")},
        "size": Decimal(len(DATA)),  # DynamoDB numbers come back as Decimal
        "bucket": "the-bucket",
        "uploadedAt": "2026-11-25T22:48:54.123Z",
    }
    return {**item, **changes}


def test_the_metadata_item_passes() -> None:
    assert smoke.item_problems(_item(), SENT, _answer(), "the-bucket") == []


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (None, "no item (smoke-0123abcd, upload-ops smoke)"),
        (_item(price=Decimal("12.35")), "the item's price is Decimal('12.35'), expected"),
        (_item(versionId="older"), "the item's versionId is 'older', expected '3HL4"),
        (_item(requestId=None), "the item's requestId is None, expected 'c0ffee00"),
        (_item(bucket="other"), "the item's bucket is 'other', expected 'the-bucket'"),
    ],
)
def test_a_metadata_item_unlike_the_upload_fails_saying_how(
    item: dict[str, Any] | None, problem: str
) -> None:
    problems = smoke.item_problems(item, SENT, _answer(), "the-bucket")
    assert len(problems) == 1
    assert problems[0].startswith(problem)


# -- where, and how requests are signed --------------------------------------------------------
OUTPUTS = {
    "ApiUrl": "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod/upload",
    "BucketName": "the-bucket",
    "TableName": "the-table",
}


def test_the_stack_outputs_name_the_api_bucket_table_and_auth_mode() -> None:
    iam = smoke.target_from_outputs(OUTPUTS)
    keyed = smoke.target_from_outputs({**OUTPUTS, "ApiKeyId": "k1"})
    assert (iam.api_url, iam.bucket, iam.table, iam.auth) == (
        OUTPUTS["ApiUrl"],
        "the-bucket",
        "the-table",
        "iam",
    )
    assert (keyed.auth, keyed.api_key_id) == ("apiKey", "k1")
    with pytest.raises(logs.DiscoveryError, match="the stack has no output BucketName, TableName"):
        smoke.target_from_outputs({"ApiUrl": OUTPUTS["ApiUrl"]})


class _Session:
    """Stands in for a boto3 session: its only client is ``client``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, **_: Any) -> Any:
        assert service == "apigateway"
        return self._client


@pytest.fixture
def apigateway() -> Iterator[Stubber]:
    client = botocore.session.get_session().create_client(
        "apigateway", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_an_api_key_stack_is_called_with_its_own_key(apigateway: Stubber) -> None:
    apigateway.add_response(
        "get_api_key", {"id": "k1", "value": "the-key"}, {"apiKey": "k1", "includeValue": True}
    )
    target = smoke.target_from_outputs({**OUTPUTS, "ApiKeyId": "k1"})
    signer = smoke.signer_for(_Session(apigateway.client), target, None)
    assert signer.headers("POST", target.api_url, {}, b"{}") == {"x-api-key": "the-key"}


def test_a_given_api_key_is_sent_as_is(apigateway: Stubber) -> None:
    target = smoke.target_from_outputs({**OUTPUTS, "ApiKeyId": "k1"})
    signer = smoke.signer_for(_Session(apigateway.client), target, "given")
    assert signer.headers("POST", target.api_url, {}, b"{}") == {"x-api-key": "given"}


def test_an_iam_stack_is_called_with_sigv4_for_execute_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    target = smoke.target_from_outputs(OUTPUTS)
    signer = smoke.signer_for(_Session(None), target, None)
    headers = signer.headers("POST", target.api_url, {}, b"{}")
    assert re.match(
        r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-1/execute-api/aws4_request",
        headers["Authorization"],
    )


# -- the command, against local mode -----------------------------------------------------------
def _contents(emulator: Emulator) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Every object version (and delete marker) of the bucket and every metadata item's key."""
    pages = emulator.client("s3").get_paginator("list_object_versions")
    versions = {
        (str(v["Key"]), str(v["VersionId"]))
        for page in pages.paginate(Bucket=emulator.bucket_name)
        for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
    }
    scans = emulator.client("dynamodb").get_paginator("scan")
    items = {
        (item["productId"]["S"], item["productName"]["S"])
        for page in scans.paginate(TableName=emulator.table_name)
        for item in page["Items"]
    }
    return versions, items


@pytest.fixture
def unchanged(emulator: Emulator) -> Iterator[None]:
    """The test's runs leave the bucket and the metadata table exactly as they found them."""
    emulator.faults.clear()
    before = _contents(emulator)
    yield
    emulator.faults.clear()
    assert _contents(emulator) == before


def _smoke(emulator: Emulator, *args: str, api_url: str | None = None) -> Result:
    arguments = ["smoke", "--api-url", api_url or emulator.api_url]
    arguments += ["--endpoint-url", emulator.aws_endpoint, *args]
    # Output to a pipe (one report line per check), whatever width the session inherited.
    return CliRunner().invoke(app, arguments, env={"COLUMNS": None})


def _outcomes(output: str) -> dict[str, str]:
    """Check name -> outcome, from the report's lines (``  PASS  upload   123 ms  ...``)."""
    lines = re.findall(r"^  (PASS|FAIL|SKIP)  (\w+) +\d+ ms  ", output, re.MULTILINE)
    return {name: outcome for outcome, name in lines}


def _one_line_error(result: Result, *, starts: str) -> str:
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(starts), line
    return line


@pytest.mark.usefixtures("unchanged")
def test_a_passing_run_reports_each_check_and_leaves_nothing(emulator: Emulator) -> None:
    result = _smoke(emulator)
    assert result.exit_code == 0, result.output
    assert _outcomes(result.stdout) == dict.fromkeys(CHECK_NAMES, "PASS")
    assert f"Smoke test of {emulator.api_url}" in result.stdout
    assert "5 of 5 checks passed" in result.stdout
    assert result.stderr == ""


@pytest.mark.usefixtures("unchanged")
def test_the_json_report_names_what_it_stored_and_deleted(emulator: Emulator) -> None:
    result = _smoke(emulator, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    checks = document["checks"]
    assert [(c["check"], c["outcome"]) for c in checks] == [(n, "PASS") for n in CHECK_NAMES]
    assert all(isinstance(c["ms"], int) and c["ms"] >= 0 for c in checks)
    assert (document["passed"], document["bucket"], document["table"]) == (
        True,
        emulator.bucket_name,
        emulator.table_name,
    )
    assert document["s3Key"] == f"uploads/{document['productId']}/smoke.txt"
    version = re.search(r"version (\S+)$", checks[0]["detail"])
    assert version is not None
    assert checks[-1]["detail"] == f"deleted version {version.group(1)}; deleted the item"


@pytest.mark.usefixtures("unchanged")
def test_an_unreachable_api_fails_in_one_line(emulator: Emulator) -> None:
    """As an operator runs it: the installed command, its own process."""
    api_url = f"http://127.0.0.1:{free_port()}/upload"
    command = Path(sys.executable).with_name("upload-ops")
    result = subprocess.run(
        [str(command), "smoke", "--api-url", api_url, "--endpoint-url", emulator.aws_endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"Error: smoke test of {api_url} failed: upload: no answer: ConnectionError"
    ), line
    assert _outcomes(result.stdout) == {
        "upload": "FAIL",
        "object": "SKIP",
        "metadata": "SKIP",
        "rejection": "FAIL",
        "cleanup": "PASS",
    }


@pytest.mark.usefixtures("unchanged")
def test_a_failed_upload_fails_in_one_line(emulator: Emulator) -> None:
    """The metadata write fails: the service compensates and answers 500."""
    emulator.faults.add("dynamodb", "TransactWriteItems", task=names.RECORD)
    result = _smoke(emulator)
    assert result.exit_code == 1
    _one_line_error(
        result,
        starts=f"Error: smoke test of {emulator.api_url} failed: upload: HTTP 500, not 200: "
        "InternalError: The upload failed and nothing was stored.",
    )
    assert _outcomes(result.stdout) == {
        "upload": "FAIL",
        "object": "SKIP",
        "metadata": "SKIP",
        "rejection": "PASS",
        "cleanup": "PASS",
    }
    assert re.search(r"cleanup +\d+ ms  nothing was stored$", result.stdout, re.MULTILINE)


@pytest.mark.usefixtures("unchanged")
def test_a_failed_check_after_the_upload_still_deletes_what_it_stored(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smoke, "item_problems", lambda *_: ["the item's price is wrong"])
    result = _smoke(emulator)
    assert result.exit_code == 1
    _one_line_error(
        result,
        starts=f"Error: smoke test of {emulator.api_url} failed: metadata: the item's price is "
        "wrong",
    )
    assert _outcomes(result.stdout) == {**dict.fromkeys(CHECK_NAMES, "PASS"), "metadata": "FAIL"}
    assert re.search(r"deleted version \S+; deleted the item$", result.stdout, re.MULTILINE)


def test_local_mode_needs_both_urls() -> None:
    result = CliRunner().invoke(app, ["smoke", "--api-url", "http://127.0.0.1:3000/upload"])
    assert result.exit_code == 2
    _one_line_error(result, starts="Error: give --api-url with --endpoint-url (local mode)")


def test_no_region_fails_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    result = CliRunner().invoke(app, ["smoke"])
    assert result.exit_code == 2
    _one_line_error(
        result,
        starts="Error: cannot read the outputs of stack UploadService: You must specify a region.",
    )


def test_an_endpoint_without_local_mode_fails_in_one_line() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app, ["smoke", "--api-url", "http://127.0.0.1:3000/upload", "--endpoint-url", endpoint]
    )
    assert result.exit_code == 2
    _one_line_error(result, starts="Error: cannot list the emulated functions: Could not connect")
