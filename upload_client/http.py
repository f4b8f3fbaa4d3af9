"""The API's transport: the stage's base URL, one pooled HTTP session, and authenticated JSON calls
with bounded retries, whose answer becomes a typed value or an :mod:`upload_client.errors` error.

Every attempt is signed afresh (a SigV4 signature carries its time), and sends the same bytes and
the same ``Idempotency-Key``: a retried write is the same logical request to the service.
"""

from __future__ import annotations

from typing import Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec
import requests
from requests.adapters import HTTPAdapter

from upload_client.auth import Signer
from upload_client.errors import (
    ConfigurationError,
    RequestRefused,
    ServiceFailed,
    UploadClientError,
)
from upload_client.models import ErrorBody, decode, encode
from upload_client.retry import RETRYABLE_STATUSES, RetryPolicy, send_with_retries

T = TypeVar("T")

# (connect, read) seconds: API Gateway answers within its 29 s integration timeout.
API_TIMEOUT: Final = (10.0, 60.0)
UPLOAD_ROUTE: Final = "/upload"
# The first request with an Idempotency-Key is still running (docs/api.md, 409).
STILL_RUNNING: Final = "IdempotencyConflict"


def base_url(api_url: str) -> str:
    """The stage's base URL, from the stack's ``ApiUrl`` (``.../prod/upload``) or the base."""
    parts = urlsplit(api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{api_url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{api_url!r}: the API URL takes no query or fragment")
    path = parts.path.rstrip("/")
    path = path.removesuffix(UPLOAD_ROUTE)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _as_prepared(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def new_session(parallel: int) -> requests.Session:
    """One session for the API and storage, with a connection per worker kept alive."""
    session = requests.Session()
    # An auth of its own keeps requests from adding ~/.netrc credentials, which would replace a
    # SigV4 Authorization header or be sent to storage with a presigned URL.
    session.auth = _as_prepared
    adapter = HTTPAdapter(pool_maxsize=max(10, parallel + 2))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def error_code(response: requests.Response) -> str | None:
    try:
        return decode(response.content, ErrorBody).error.code
    except msgspec.DecodeError:
        return None


def api_error(response: requests.Response, what: str) -> UploadClientError:
    """The error an API answer other than 2xx stands for."""
    status = response.status_code
    request_id = response.headers.get("x-amzn-RequestId")
    try:
        body = decode(response.content, ErrorBody)
        code, message, details = body.error.code, body.error.message, body.error.details
        request_id = body.request_id or request_id
    except msgspec.DecodeError:
        # API Gateway's own answers (a missing route, a bad signature) are {"message": ...}.
        code, message, details = f"HTTP{status}", _plain_message(response), ()
    refused = 400 <= status < 500 and status not in RETRYABLE_STATUSES
    kind = RequestRefused if refused else ServiceFailed
    return kind(
        message,
        code=code,
        status=status,
        request_id=request_id,
        details=details,
        operation=what,
    )


def _plain_message(response: requests.Response) -> str:
    try:
        document = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        document = None
    if isinstance(document, dict):
        for key in ("message", "Message"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return f"HTTP {response.status_code} {response.reason or ''}".rstrip()


class ApiClient:
    """Calls the API's routes under ``base`` (see :func:`base_url`)."""

    def __init__(
        self, base: str, signer: Signer, policy: RetryPolicy, http: requests.Session
    ) -> None:
        self.base = base
        self.policy = policy
        self.http = http
        self._signer = signer

    def call(
        self,
        method: str,
        route: str,
        kind: type[T],
        body: msgspec.Struct | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> T:
        url = self.base + route
        data = b"" if body is None else encode(body)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key

        def send() -> requests.Response:
            signed = self._signer.headers(method, url, headers, data)
            return self.http.request(
                method, url, data=data or None, headers=signed, timeout=API_TIMEOUT
            )

        def should_retry(response: requests.Response, attempt: int) -> bool:
            if response.status_code in RETRYABLE_STATUSES:
                return True
            # After an attempt that got no usable answer, a 409 "still running" is that very
            # attempt still at work: waiting for it gets its result, under the same key.
            return (
                idempotency_key is not None
                and attempt > 1
                and response.status_code == 409
                and error_code(response) == STILL_RUNNING
            )

        what = f"{method} {route}"
        response = send_with_retries(self.policy, send, should_retry, what)
        if not 200 <= response.status_code < 300:
            raise api_error(response, what)
        try:
            return decode(response.content, kind)
        except msgspec.DecodeError:
            raise ServiceFailed(
                f"the answer ({response.status_code}) is not the documented body",
                code="UnexpectedResponse",
                status=response.status_code,
                request_id=response.headers.get("x-amzn-RequestId"),
                operation=what,
            ) from None
