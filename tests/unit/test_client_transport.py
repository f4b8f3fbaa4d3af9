"""The client's transport against the fake service: retries and their bounds, the Idempotency-Key,
the API URL, and authentication (SigV4 verified by recomputing it, the API key, unsigned)."""

from __future__ import annotations

import re
import socket
import uuid
from dataclasses import replace
from pathlib import Path

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.unit.test_client_fakes import (
    Answer,
    FakeService,
    Recorded,
    api_error,
    b64,
    hermetic_aws,
    running_fake,  # noqa: F401 - provides the fixture "fake"
    write_file,
)
from upload_client import RetryPolicy, upload_file
from upload_client.auth import ApiKey, SigV4, Unsigned, region_of, resolve
from upload_client.errors import ConfigurationError, RequestRefused, ServiceFailed
from upload_client.http import base_url

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<sig>[0-9a-f]+)$"
)


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic_aws(monkeypatch, tmp_path, credentials=True)


def _policy(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append, random=lambda: 1.0)


def _upload(fake: FakeService, path: Path, **options: object):
    arguments: dict[str, object] = {
        "product_id": "P-1",
        "product_name": "Thing",
        "price": "9.99",
        "api_url": fake.api_url,
        "retry": _policy([]),
        **options,
    }
    return upload_file(path, **arguments)  # type: ignore[arg-type]


def test_the_delay_is_full_jitter_under_a_doubling_cap_and_honours_retry_after() -> None:
    top = RetryPolicy(random=lambda: 1.0)
    quarter = RetryPolicy(random=lambda: 0.25)

    assert [top.delay(retry, None) for retry in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert quarter.delay(3, None) == 0.5
    assert quarter.delay(1, 3.0) == 3.0  # the server's wait is the least
    assert quarter.delay(1, 60.0) == 10.0  # but never beyond the cap


def test_429_and_503_are_retried_with_the_same_idempotency_key(
    fake: FakeService, tmp_path: Path
) -> None:
    path, data = write_file(tmp_path, 1000, "small.txt")
    fake.script(
        "POST /upload",
        api_error(503, "ServiceUnavailable", "busy"),
        Answer(429, {"message": "Too Many Requests"}, {"Retry-After": "2"}),
    )
    sleeps: list[float] = []

    result = _upload(fake, path, retry=_policy(sleeps))

    sent = fake.requests_to("POST /upload")
    keys = {request.headers.get("idempotency-key") for request in sent}
    assert len(sent) == 3
    assert len(keys) == 1
    assert uuid.UUID(str(keys.pop())).version == 4
    assert {request.body for request in sent} == {sent[0].body}
    assert sleeps == [0.5, 2.0]  # the second wait is the Retry-After
    assert result.size == len(data)
    assert result.request_id == "req-commit"


def test_retries_stop_after_the_bound(fake: FakeService, tmp_path: Path) -> None:
    path, _ = write_file(tmp_path, 10, "small.txt")
    fake.script("POST /upload", *[api_error(503, "ServiceUnavailable", "busy")] * 10)
    sleeps: list[float] = []

    with pytest.raises(ServiceFailed) as failed:
        _upload(fake, path, retry=_policy(sleeps))

    assert len(fake.requests_to("POST /upload")) == 6
    assert len(sleeps) == 5
    assert (failed.value.status, failed.value.code) == (503, "ServiceUnavailable")
    assert failed.value.request_id == "req-ServiceUnavailable"


def test_a_400_is_not_retried_and_carries_its_details(fake: FakeService, tmp_path: Path) -> None:
    path, _ = write_file(tmp_path, 10, "small.txt")
    details = [{"field": "price", "message": "must be a JSON number"}]
    fake.script("POST /upload", api_error(400, "ValidationError", "The body is invalid.", details))
    sleeps: list[float] = []

    with pytest.raises(RequestRefused) as refused:
        _upload(fake, path, retry=_policy(sleeps))

    assert len(fake.requests_to("POST /upload")) == 1
    assert sleeps == []
    error = refused.value
    assert (error.status, error.code, error.message) == (
        400,
        "ValidationError",
        "The body is invalid.",
    )
    assert [(d.field, d.message) for d in error.details] == [("price", "must be a JSON number")]
    assert error.request_id == "req-ValidationError"


def test_a_409_still_running_after_a_lost_answer_is_waited_for(
    fake: FakeService, tmp_path: Path
) -> None:
    path, _ = write_file(tmp_path, 10, "small.txt")
    fake.script(
        "POST /upload",
        api_error(504, "Timeout", "late"),
        api_error(409, "IdempotencyConflict", "the first request is still running"),
    )

    result = _upload(fake, path)

    assert len(fake.requests_to("POST /upload")) == 3
    assert result.size == 10


def test_an_unreachable_service_is_retried_then_reported(tmp_path: Path) -> None:
    path, _ = write_file(tmp_path, 10, "small.txt")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []

    with pytest.raises(ServiceFailed, match="no answer after 6 attempts") as failed:
        upload_file(
            path,
            product_id="P-1",
            product_name="Thing",
            price="1",
            api_url=f"http://127.0.0.1:{port}/prod/upload",
            retry=_policy(sleeps),
        )

    assert failed.value.code == "Unreachable"
    assert len(sleeps) == 5


def _verify_sigv4(request: Recorded, base: str) -> dict[str, str]:
    """Recompute the request's signature with botocore from what the server received."""
    match = _AUTHORIZATION.match(request.headers["authorization"])
    assert match is not None, request.headers["authorization"]
    signed = match["signed"].split(";")
    aws_request = AWSRequest(
        method=request.method,
        url=base + request.path,
        data=request.body,
        headers={name: request.headers[name] for name in signed},
    )
    aws_request.context["timestamp"] = request.headers["x-amz-date"]
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    signer = SigV4Auth(credentials, match["service"], match["region"])
    string_to_sign = signer.string_to_sign(aws_request, signer.canonical_request(aws_request))
    return {**match.groupdict(), "expected": signer.signature(string_to_sign, aws_request)}


def test_requests_are_signed_with_sigv4_for_execute_api(fake: FakeService, tmp_path: Path) -> None:
    path, _ = write_file(tmp_path, 10, "small.txt")

    _upload(fake, path)

    (request,) = fake.requests_to("POST /upload")
    found = _verify_sigv4(request, fake.base)
    assert (found["key"], found["region"], found["service"]) == (
        "AKIDEXAMPLE",
        "eu-west-3",
        "execute-api",
    )
    assert "host" in found["signed"]
    assert "idempotency-key" in found["signed"]
    assert found["sig"] == found["expected"]
    assert "x-api-key" not in request.headers
    tampered = _verify_sigv4(replace(request, body=request.body + b" "), fake.base)
    assert tampered["expected"] != found["sig"]


def test_an_api_key_is_sent_instead_of_a_signature(fake: FakeService, tmp_path: Path) -> None:
    path, _ = write_file(tmp_path, 10, "small.txt")

    _upload(fake, path, api_key="key-123")

    (request,) = fake.requests_to("POST /upload")
    assert request.headers["x-api-key"] == "key-123"
    assert "authorization" not in request.headers
    assert "x-amz-date" not in request.headers
    assert "key-123" not in repr(ApiKey("key-123"))


def test_the_region_comes_from_an_execute_api_host_before_the_environment() -> None:
    session = botocore.session.Session()
    host = "https://a1b2c3.execute-api.ap-south-1.amazonaws.com/prod/upload"

    signer = resolve(host, None, session)

    assert region_of("a1b2c3.execute-api.eu-central-1.amazonaws.com") == "eu-central-1"
    assert region_of("api.example.com") is None
    assert isinstance(signer, SigV4)
    assert signer.region == "ap-south-1"
    assert isinstance(resolve("http://127.0.0.1:3000", None, session), SigV4)  # AWS_REGION


def test_without_credentials_local_hosts_are_unsigned_and_aws_hosts_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hermetic_aws(monkeypatch, tmp_path, credentials=False)
    session = botocore.session.Session()

    assert isinstance(resolve("http://127.0.0.1:3000/upload", None, session), Unsigned)
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        resolve("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod", None, session)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://a.execute-api.eu-west-1.amazonaws.com/prod/upload", "/prod"),
        ("https://a.execute-api.eu-west-1.amazonaws.com/prod/", "/prod"),
        ("http://127.0.0.1:3000/upload", ""),
        ("http://127.0.0.1:3000", ""),
    ],
)
def test_the_api_url_may_be_the_upload_route_or_the_stage(given: str, expected: str) -> None:
    assert base_url(given) == given.split("/prod")[0].removesuffix("/upload") + expected


def test_an_api_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        base_url("ftp://example.com/prod")


def test_the_inline_body_is_the_file_in_base64_with_the_exact_price(
    fake: FakeService, tmp_path: Path
) -> None:
    path, data = write_file(tmp_path, 5000, "small.txt")
    price = "12.3400000000000000000000000000000001"

    result = _upload(fake, path, price=price, content_type="text/plain")

    (request,) = fake.requests_to("POST /upload")
    body = request.json()
    assert body["fileContent"] == b64(data)
    assert "uploadId" not in body
    assert body["fileName"] == "small.txt"
    assert body["contentType"] == "text/plain"
    assert f'"price":{price}'.encode() in request.body
    assert str(result.price) == price
    assert fake.requests_to("POST /uploads") == []
