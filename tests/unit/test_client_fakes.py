"""A fake upload service for the client's tests, and the tests that keep the fake honest.

One ``ThreadingHTTPServer`` on loopback plays both the API (under ``/prod``: ``POST /upload``,
the session routes) and storage (``PUT /storage/<uploadId>/<partNumber>``, the "presigned" part
URLs it hands out). It records every request as received, answers scripted answers first (per
route, in order), and otherwise behaves as the API's spec says: storage refuses bytes whose
SHA-256 is not the one the URL was issued for (``BadDigest``), and a commit needs every part.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
import requests

MIB = 1 << 20
DEFAULT_PART_SIZE = 8 * MIB
ENCODER = msgspec.json.Encoder(decimal_format="number")
_ROUTES = (
    ("POST", re.compile(r"^/prod/upload$"), "POST /upload"),
    ("POST", re.compile(r"^/prod/uploads$"), "POST /uploads"),
    ("POST", re.compile(r"^/prod/uploads/(?P<id>[^/]+)/parts$"), "POST parts"),
    ("GET", re.compile(r"^/prod/uploads/(?P<id>[^/]+)$"), "GET session"),
    ("PUT", re.compile(r"^/storage/(?P<id>[^/]+)/(?P<part>\d+)$"), "PUT part"),
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Settings through which the credential chain could find credentials the test did not give it.
_OTHER_AWS_SETTINGS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def hermetic_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, credentials: bool) -> None:
    """An AWS environment of the test's own: fixed credentials or none, no profile files, no
    instance metadata (which would make the credential chain wait for a timeout)."""
    for name in _OTHER_AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    if credentials:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    else:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # as sent, query included
    headers: dict[str, str]  # names in lower case
    body: bytes
    route: str

    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # a JSON document, or bytes as they are
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else ENCODER.encode(self.body)


def api_error(
    status: int, code: str, message: str, details: list[dict[str, str]] | None = None
) -> Answer:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return Answer(status, {"error": error, "requestId": f"req-{code}"})


def s3_error(status: int, code: str, message: str) -> Answer:
    text = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>S3R</RequestId>"
    return Answer(status, f"{text}</Error>".encode(), {"Content-Type": "application/xml"})


@dataclass
class FakeSession:
    upload_id: str
    product_id: str
    file_name: str
    size: int
    part_size: int
    state: str = "OPEN"
    parts: dict[int, tuple[int, str]] = field(default_factory=dict)  # number -> (size, sha256)

    @property
    def part_count(self) -> int:
        return -(-self.size // self.part_size)

    def size_of(self, number: int) -> int:
        return min(self.part_size, self.size - (number - 1) * self.part_size)


class FakeService:
    def __init__(self) -> None:
        self.recorded: list[Recorded] = []
        self.sessions: dict[str, FakeSession] = {}
        self.part_delays: dict[int, float] = {}  # part number -> seconds before storage answers
        self.completed_parts: list[int] = []  # in the order storage stored them
        self.max_concurrent_puts = 0
        self.part_size_override: int | None = None  # the service picks its own part size
        self._concurrent = 0
        self._scripts: dict[str, deque[Answer]] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        # A short poll: shutdown() waits for the serving loop to notice it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What the stack's ``ApiUrl`` output would be."""
        return f"{self.base}/prod/upload"

    def __enter__(self) -> FakeService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, route: str, *answers: Answer) -> None:
        """Answer the next requests of ``route`` with ``answers``, in order."""
        self._scripts.setdefault(route, deque()).extend(answers)

    def requests_to(self, route: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.recorded if r.route == route]

    def open_session(self, data: bytes, part_size: int, file_name: str = "big.bin") -> FakeSession:
        """A session as if created earlier for ``data``."""
        session = FakeSession(uuid.uuid4().hex, "P-1", file_name, len(data), part_size)
        self.sessions[session.upload_id] = session
        return session

    # -- serving --------------------------------------------------------------------------------
    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        route, match = _route(method, path.partition("?")[0])
        with self._lock:
            self.recorded.append(Recorded(method, path, headers, body, route))
            queue = self._scripts.get(route)
            scripted = queue.popleft() if queue else None
        if route == "PUT part":
            return self._put_part(match, headers, body, scripted)
        if scripted is not None:
            return scripted
        handlers: dict[str, Callable[[dict[str, str], Any], Answer]] = {
            "POST /upload": self._commit,
            "POST /uploads": self._create,
            "POST parts": self._part_urls,
            "GET session": self._status,
        }
        if route not in handlers:
            return api_error(404, "NotFound", f"no route {method} {path}")
        return handlers[route](match, json.loads(body, parse_float=Decimal) if body else None)

    def _create(self, _match: dict[str, str], body: Any) -> Answer:
        part_size = self.part_size_override or body.get("partSize") or DEFAULT_PART_SIZE
        session = FakeSession(
            uuid.uuid4().hex, body["productId"], body["fileName"], body["size"], part_size
        )
        self.sessions[session.upload_id] = session
        return Answer(
            201,
            {
                "uploadId": session.upload_id,
                "s3Key": f"uploads/{session.product_id}/{session.file_name}",
                "partSize": part_size,
                "partCount": session.part_count,
                "expiresAt": "2030-01-01T00:00:00Z",
                "requestId": "req-create",
            },
        )

    def _part_urls(self, match: dict[str, str], body: Any) -> Answer:
        session = self.sessions[match["id"]]
        urls = [
            {
                "partNumber": part["partNumber"],
                "url": f"{self.base}/storage/{session.upload_id}/{part['partNumber']}"
                "?X-Amz-Signature=presigned",
                "headers": {
                    "x-amz-checksum-sha256": b64(bytes.fromhex(part["sha256"])),
                    "content-length": str(session.size_of(part["partNumber"])),
                },
            }
            for part in body["parts"]
        ]
        return Answer(200, {"parts": urls, "expiresAt": "2030-01-01T00:00:00Z", "requestId": "r"})

    def _status(self, match: dict[str, str], _body: Any) -> Answer:
        session = self.sessions[match["id"]]
        listed = [
            {"partNumber": number, "size": size, "sha256": sha256}
            for number, (size, sha256) in sorted(session.parts.items())
        ]
        return Answer(
            200,
            {
                "uploadId": session.upload_id,
                "state": session.state,
                "s3Key": f"uploads/{session.product_id}/{session.file_name}",
                "size": session.size,
                "partSize": session.part_size,
                "parts": listed,
                "expiresAt": "2030-01-01T00:00:00Z",
                "requestId": "req-status",
            },
        )

    def _put_part(
        self, match: dict[str, str], headers: dict[str, str], body: bytes, scripted: Answer | None
    ) -> Answer:
        number = int(match["part"])
        with self._lock:
            self._concurrent += 1
            self.max_concurrent_puts = max(self.max_concurrent_puts, self._concurrent)
        try:
            time.sleep(self.part_delays.get(number, 0.0))
            if scripted is not None:
                return scripted
            session = self.sessions.get(match["id"])
            if session is None or session.state == "ABORTED":
                return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
            if b64(hashlib.sha256(body).digest()) != headers.get("x-amz-checksum-sha256"):
                return s3_error(400, "BadDigest", "The SHA256 you specified did not match.")
            with self._lock:
                session.parts[number] = (len(body), hashlib.sha256(body).hexdigest())
                self.completed_parts.append(number)
            return Answer(200, b"", {"ETag": f'"{number}"'})
        finally:
            with self._lock:
                self._concurrent -= 1

    def _commit(self, _match: dict[str, str], body: Any) -> Answer:
        if "uploadId" in body:
            session = self.sessions[body["uploadId"]]
            if sorted(session.parts) != list(range(1, session.part_count + 1)):
                return api_error(400, "ValidationError", "parts are missing")
            session.state = "COMMITTED"
            digests = b"".join(bytes.fromhex(sha) for _, (_, sha) in sorted(session.parts.items()))
            extra: dict[str, Any] = {
                "size": session.size,
                "checksum": {
                    "algorithm": "SHA256",
                    "type": "COMPOSITE",
                    "value": f"{b64(hashlib.sha256(digests).digest())}-{len(session.parts)}",
                },
            }
        else:
            data = base64.b64decode(body["fileContent"], validate=True)
            extra = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        file_name = body.get("fileName") or "generated-name"
        return Answer(
            200,
            {
                "message": "File uploaded successfully",
                "requestId": "req-commit",
                "productId": body["productId"],
                "productName": body["productName"],
                "price": body["price"],
                "fileName": file_name,
                "contentType": body.get("contentType") or "application/octet-stream",
                "s3Key": f"uploads/{body['productId']}/{file_name}",
                "versionId": "v-1",
                "timestamp": "2030-01-01T00:00:00.000Z",
                **extra,
            },
        )


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    for route_method, pattern, name in _ROUTES:
        match = pattern.match(path)
        if match and method == route_method:
            return name, match.groupdict()
    return f"{method} {path}", {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 64 workers connect at once: the default backlog of 5 drops some


def _handler_for(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall between

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = service.answer(self.command, self.path, headers, body)
            payload = answer.payload()
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read ``recorded`` instead."""

    return Handler


@pytest.fixture(name="fake")
def running_fake() -> Iterator[FakeService]:
    """The fake service, running for one test (other modules import it to have ``fake``)."""
    with FakeService() as service:
        yield service


def write_file(directory: Path, size: int, name: str = "big.bin") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = directory / name
    path.write_bytes(data)
    return path, data


# -- the fake itself ------------------------------------------------------------------------------
def test_storage_refuses_bytes_that_do_not_match_the_checksum(fake: FakeService) -> None:
    session = fake.open_session(b"x" * 10, part_size=10)
    url = f"{fake.base}/storage/{session.upload_id}/1"
    good = {"x-amz-checksum-sha256": b64(hashlib.sha256(b"x" * 10).digest())}

    refused = requests.put(url, data=b"y" * 10, headers=good, timeout=5)
    stored = requests.put(url, data=b"x" * 10, headers=good, timeout=5)

    assert refused.status_code == 400
    assert b"<Code>BadDigest</Code>" in refused.content
    assert stored.status_code == 200
    assert session.parts == {1: (10, hashlib.sha256(b"x" * 10).hexdigest())}


def test_a_commit_needs_every_part_and_scripted_answers_come_first(fake: FakeService) -> None:
    session = fake.open_session(b"x" * 10, part_size=4)
    fake.script("POST /upload", api_error(503, "ServiceUnavailable", "busy"))
    body: dict[str, Any] = {"productId": "P-1", "productName": "n", "price": 1}
    body["uploadId"] = session.upload_id

    first = requests.post(f"{fake.base}/prod/upload", json=body, timeout=5)
    second = requests.post(f"{fake.base}/prod/upload", json=body, timeout=5)

    assert first.status_code == 503
    assert second.status_code == 400
    assert session.state == "OPEN"
    assert [r.route for r in fake.recorded] == ["POST /upload", "POST /upload"]
