"""Sending one part to storage: a PUT of exactly the part's bytes to the presigned URL the service
handed out, with the headers it listed (its SHA-256 and length among them).

The URL carries its own authorization, so the request is never signed again, and neither the URL
nor anything from it reaches an error message. Storage answers errors in XML: a ``BadDigest``
(the bytes do not hash to the SHA-256 the URL was issued for) means the file changed on disk and
is not retried; an expired URL is :class:`UrlExpired`, for the caller to ask for a new one;
5xx and lost connections are retried like API calls.
"""

from __future__ import annotations

import re
from typing import Final

import requests

from upload_client.errors import FileChanged, ServiceFailed, StorageRefused, UploadClientError
from upload_client.models import PartUrl
from upload_client.retry import RETRYABLE_STATUSES, RetryPolicy, send_with_retries

# (connect, read) seconds; the read timeout runs once the whole part has been sent.
PART_TIMEOUT: Final = (10.0, 120.0)
EXPIRED_MESSAGE: Final = "Request has expired"
_XML_FIELD: Final = {
    name: re.compile(rf"<{name}>([^<]*)</{name}>") for name in ("Code", "Message", "RequestId")
}


class UrlExpired(StorageRefused):
    """The presigned URL expired before the part was sent: ask the service for another."""


def put_part(http: requests.Session, policy: RetryPolicy, part_url: PartUrl, data: bytes) -> None:
    what = f"PUT part {part_url.part_number}"
    response = send_with_retries(
        policy,
        lambda: http.put(part_url.url, data=data, headers=part_url.headers, timeout=PART_TIMEOUT),
        lambda answer, _attempt: answer.status_code in RETRYABLE_STATUSES,
        what,
    )
    if not 200 <= response.status_code < 300:
        raise storage_error(response, what)


def _xml_field(text: str, name: str) -> str | None:
    match = _XML_FIELD[name].search(text)
    return match.group(1) if match else None


def storage_error(response: requests.Response, what: str) -> UploadClientError:
    """The error a storage answer other than 2xx stands for."""
    status = response.status_code
    text = response.text
    code = _xml_field(text, "Code") or f"HTTP{status}"
    message = _xml_field(text, "Message") or f"storage answered HTTP {status}"
    request_id = _xml_field(text, "RequestId") or response.headers.get("x-amz-request-id")
    kind: type[UploadClientError] = StorageRefused
    if status in RETRYABLE_STATUSES:
        kind = ServiceFailed
    elif code == "BadDigest":
        kind = FileChanged
        message = "the part's bytes no longer match their SHA-256: the file changed on disk"
    elif status == 403 and EXPIRED_MESSAGE in message:
        kind = UrlExpired
    elif code == "NoSuchUpload":
        message = "the upload session no longer exists (aborted or expired)"
    return kind(message, code=code, status=status, request_id=request_id, operation=what)
