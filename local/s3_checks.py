"""The emulated S3 refuses part uploads where S3 does, in front of moto's server.

Clients PUT large-file parts to presigned ``upload_part`` URLs. moto 5.2.1 accepts or breaks on
several of the requests S3 refuses:

* a body whose SHA-256 is not the ``x-amz-checksum-sha256`` header: moto stores it, S3 answers
  400 ``BadDigest``;
* a presigned URL whose signature does not match, or that has expired: moto checks neither, S3
  answers 403 ``SignatureDoesNotMatch`` or ``AccessDenied`` ("Request has expired");
* a part for an upload that was aborted, completed or never existed: moto answers 500, S3 answers
  404 ``NoSuchUpload``.

And it lists the parts of a multipart upload created with ``ChecksumAlgorithm=SHA256`` without
their ``ChecksumSHA256``, which S3 lists.

:class:`S3Checks` answers those requests as S3 does, adds the checksums to moto's ListParts
answer, and hands every other request to moto as it came, without reading its body;
:class:`CheckedMotoServer` is moto's threaded server with the checks in front. Requests are
path-style (``/<bucket>/<key>``), as the emulator's clients send.

A part's SHA-256 is computed once, when its body is checked on upload, and kept in
:class:`PartDigests` until its upload completes or is aborted: ListParts answers from there (as
can the completion, :func:`local.moto_patches.lean_multipart_completion`), so listing costs
about the same whatever the parts' size, as on S3.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import FakeMultipart, s3_backends
from moto.server import ThreadedMotoServer
from werkzeug.datastructures import EnvironHeaders
from werkzeug.serving import make_server
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream

from local.template import ACCOUNT_ID, PARTITION

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The emulator's only credentials (local.provisioning.client, local.lambda_runtime): access key
# id -> secret access key.
CREDENTIALS: Mapping[str, str] = {"local": "local"}

ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_DISCARD_CHUNK = 64 * 1024

# S3's messages for the errors answered here.
_QUERY_PARAMETERS = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)
_UNKNOWN_KEY = "The AWS Access Key Id you provided does not exist in our records."
_EXPIRED = "Request has expired"
_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)
_NO_SUCH_UPLOAD = (
    "The specified upload does not exist. The upload ID may be invalid, "
    "or the upload may have been aborted or completed."
)
_BAD_DIGEST = "The SHA256 you specified did not match the calculated checksum."

# moto's ListParts answer: one <Part> element per part, with its number and ETag.
_PART_RE = re.compile(rb"<Part>(.*?)</Part>", re.DOTALL)
_PART_NUMBER_RE = re.compile(rb"<PartNumber>(\d+)</PartNumber>")
_ETAG_RE = re.compile(rb"<ETag>(.*?)</ETag>", re.DOTALL)

# The WSGI environ key under which a part PUT's checked SHA-256 digest travels to its answer.
_CHECKED_DIGEST = "local.s3_checks.sha256"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _QueryAuth:
    """A presigned request's SigV4 query parameters."""

    access_key: str
    region: str
    service: str
    timestamp: str  # X-Amz-Date, as signed
    expires_at: datetime
    signed_headers: list[str]
    signature: str

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> _QueryAuth:
        """KeyError or ValueError when a parameter is missing or malformed."""
        access_key, _, region, service, _ = params["X-Amz-Credential"].split("/")
        timestamp = params["X-Amz-Date"]
        signed_at = datetime.strptime(timestamp, _AMZ_DATE).replace(tzinfo=UTC)
        return cls(
            access_key=access_key,
            region=region,
            service=service,
            timestamp=timestamp,
            expires_at=signed_at + timedelta(seconds=int(params["X-Amz-Expires"])),
            signed_headers=params["X-Amz-SignedHeaders"].split(";"),
            signature=params["X-Amz-Signature"],
        )


class PartDigests:
    """The SHA-256 digest of each part whose body was checked on upload, by upload id and part
    number, with the ETag moto answered for it (the MD5 of its bytes). A digest serves only while
    the part's ETag is the same: a part uploaded again under its number has another ETag, unless
    its bytes are the same. Upload ids are unique across buckets. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uploads: dict[str, dict[int, tuple[str, bytes]]] = {}

    def remember(self, upload_id: str, part_number: int, etag: str, digest: bytes) -> None:
        with self._lock:
            self._uploads.setdefault(upload_id, {})[part_number] = (_unquoted(etag), digest)

    def get(self, upload_id: str, part_number: int, etag: str) -> bytes | None:
        """The part's digest, or None when it is unknown or was taken for other bytes."""
        with self._lock:
            known = self._uploads.get(upload_id, {}).get(part_number)
        if known is None or known[0] != _unquoted(etag):
            return None
        return known[1]

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._uploads.pop(upload_id, None)

    def __contains__(self, upload_id: object) -> bool:
        with self._lock:
            return upload_id in self._uploads


class S3Checks:
    """WSGI middleware: S3's answers to the requests moto gets wrong (see the module docstring),
    everything else passed to ``app``."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        credentials: Mapping[str, str] = CREDENTIALS,
        clock: Callable[[], datetime] = _now,
        account_id: str = ACCOUNT_ID,
        part_digests: PartDigests | None = None,
    ) -> None:
        self._app = app
        self._credentials = credentials
        self._clock = clock
        self._account_id = account_id
        self.part_digests = PartDigests() if part_digests is None else part_digests

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = dict(query)
        refusal = self._refusal(environ, query, params)
        if refusal is not None:
            # werkzeug's server closes the connection after the response without reading what
            # is left of the body, which the client may then see as a reset instead of the answer.
            _discard_body(environ)
            return refusal(environ, start_response)
        upload = self._sha256_upload_listed(environ, params)
        if upload is not None:
            return _with_part_checksums(
                self._app, environ, start_response, upload, self.part_digests
            )
        return self._app(environ, self._noting_parts(environ, params, start_response))

    def _noting_parts(
        self, environ: WSGIEnvironment, params: Mapping[str, str], start_response: StartResponse
    ) -> StartResponse:
        """``start_response``, telling :attr:`part_digests` what moto's answer says: a checked
        part's ETag once it is stored, or that its upload completed or was aborted."""
        upload_id = params.get("uploadId")
        if upload_id is None:
            return start_response
        method = environ["REQUEST_METHOD"]
        digest: bytes | None = environ.get(_CHECKED_DIGEST)
        number = params.get("partNumber")
        if method == "PUT" and digest is not None and number is not None and number.isdigit():
            note = functools.partial(self._part_stored, upload_id, int(number), digest)
        elif method == "DELETE" or (method == "POST" and number is None):
            note = functools.partial(self._upload_ended, upload_id)
        else:
            return start_response

        def noting(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
        ) -> Callable[[bytes], object]:
            note(status, headers)
            return start_response(status, headers, exc_info)

        return noting

    def _part_stored(
        self,
        upload_id: str,
        part_number: int,
        digest: bytes,
        status: str,
        headers: list[tuple[str, str]],
    ) -> None:
        etag = next((value for name, value in headers if name.lower() == "etag"), None)
        if status.startswith("200 ") and etag is not None:
            self.part_digests.remember(upload_id, part_number, etag, digest)

    def _upload_ended(self, upload_id: str, status: str, headers: list[tuple[str, str]]) -> None:
        if status.startswith("2"):  # CompleteMultipartUpload 200, AbortMultipartUpload 204
            self.part_digests.forget(upload_id)

    def _refusal(
        self, environ: WSGIEnvironment, query: list[tuple[str, str]], params: dict[str, str]
    ) -> Response | None:
        """S3's error for this request (authentication, then the upload, then the body), or None."""
        if params.get("X-Amz-Algorithm") == ALGORITHM:
            refusal = self._check_presigned(environ, query, params)
            if refusal is not None:
                return refusal
        if environ["REQUEST_METHOD"] != "PUT":
            return None
        if "partNumber" in params and "uploadId" in params:
            refusal = self._check_upload(environ, params["uploadId"])
            if refusal is not None:
                return refusal
        if "HTTP_X_AMZ_CHECKSUM_SHA256" in environ and not _aws_chunked(environ):
            return _check_digest(environ)
        return None

    def _check_presigned(
        self, environ: WSGIEnvironment, query: list[tuple[str, str]], params: dict[str, str]
    ) -> Response | None:
        if not params.get("X-Amz-Credential", "").endswith("/s3/aws4_request"):
            return None  # another service's presigned request: not S3's to answer
        try:
            auth = _QueryAuth.parse(params)
        except (KeyError, ValueError):
            return _error(400, "AuthorizationQueryParametersError", _QUERY_PARAMETERS)
        secret_key = self._credentials.get(auth.access_key)
        if secret_key is None:
            return _error(403, "InvalidAccessKeyId", _UNKNOWN_KEY)
        if self._clock() > auth.expires_at:
            return _error(403, "AccessDenied", _EXPIRED)
        expected = _query_signature(environ, query, auth, secret_key)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            return _error(403, "SignatureDoesNotMatch", _SIGNATURE)
        return None

    def _check_upload(self, environ: WSGIEnvironment, upload_id: str) -> Response | None:
        bucket_name, _, key = unquote(_raw_path(environ)).lstrip("/").partition("/")
        bucket = s3_backends[self._account_id][PARTITION].buckets.get(bucket_name)
        if bucket is None:
            return None  # moto answers NoSuchBucket, as S3 does
        upload = bucket.multiparts.get(upload_id)
        if upload is not None and upload.key_name == key:
            return None
        return _error(404, "NoSuchUpload", _NO_SUCH_UPLOAD)

    def _sha256_upload_listed(
        self, environ: WSGIEnvironment, params: Mapping[str, str]
    ) -> FakeMultipart | None:
        """The multipart upload whose parts this request lists (ListParts), when it was created
        with SHA-256 checksums; None for any other request."""
        if environ["REQUEST_METHOD"] != "GET" or "uploadId" not in params or "partNumber" in params:
            return None
        bucket_name = unquote(_raw_path(environ)).lstrip("/").partition("/")[0]
        bucket = s3_backends[self._account_id][PARTITION].buckets.get(bucket_name)
        upload = None if bucket is None else bucket.multiparts.get(params["uploadId"])
        if upload is None:
            return None  # moto answers NoSuchBucket or NoSuchUpload
        algorithm = upload.metadata.get("x-amz-checksum-algorithm") or ""
        return upload if algorithm.upper() == "SHA256" else None


def _query_signature(
    environ: WSGIEnvironment,
    query: list[tuple[str, str]],
    auth: _QueryAuth,
    secret_key: str,
) -> str:
    """The signature botocore's presigner gives this request: its method, path as sent, query
    parameters but the signature, and the headers the URL names as signed."""
    headers = EnvironHeaders(environ)
    request = AWSRequest(
        method=environ["REQUEST_METHOD"],
        url=f"http://{headers.get('Host', '')}{_raw_path(environ)}",
        headers={name: headers.get(name, "") for name in auth.signed_headers},
        params=[(name, value) for name, value in query if name != "X-Amz-Signature"],
    )
    request.context["timestamp"] = auth.timestamp
    signer = S3SigV4QueryAuth(Credentials(auth.access_key, secret_key), auth.service, auth.region)
    canonical_request = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical_request), request))


def _raw_path(environ: WSGIEnvironment) -> str:
    """The path as the client sent it (werkzeug's server keeps it in RAW_URI): SigV4 signs it
    percent-encoded, and PATH_INFO is decoded."""
    return urlsplit(environ["RAW_URI"]).path


def _aws_chunked(environ: WSGIEnvironment) -> bool:
    """aws-chunked bodies carry chunk framing and trailers, which moto decodes itself."""
    return "aws-chunked" in environ.get("HTTP_CONTENT_ENCODING", "") or environ.get(
        "HTTP_X_AMZ_CONTENT_SHA256", ""
    ).startswith("STREAMING-")


def _check_digest(environ: WSGIEnvironment) -> Response | None:
    body = get_input_stream(environ).read()
    # The body is read now; moto reads it again from here.
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    digest = hashlib.sha256(body).digest()
    if environ["HTTP_X_AMZ_CHECKSUM_SHA256"].strip() == base64.b64encode(digest).decode():
        environ[_CHECKED_DIGEST] = digest
        return None
    return _error(400, "BadDigest", _BAD_DIGEST)


def _with_part_checksums(
    app: WSGIApplication,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    upload: FakeMultipart,
    digests: PartDigests,
) -> Iterable[bytes]:
    """moto's answer to a ListParts request, each listed part's ``ChecksumSHA256`` added."""
    answer: list[tuple[str, list[tuple[str, str]]]] = []
    chunks: list[bytes] = []

    def capture(
        status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        answer[:] = [(status, headers)]  # the answer is held until its body is rewritten
        return chunks.append

    iterable = app(environ, capture)
    try:
        chunks.extend(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    status, headers = answer[0]
    body = b"".join(chunks)
    if status.startswith("200 "):
        body = _PART_RE.sub(lambda part: _part_with_checksum(part, upload, digests), body)
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
    start_response(status, headers)
    return [body]


def _part_with_checksum(
    part: re.Match[bytes], upload: FakeMultipart, digests: PartDigests
) -> bytes:
    """One listed ``<Part>`` with its ``<ChecksumSHA256>``: the base64 SHA-256 of the part's
    bytes, which equals the checksum it was uploaded with (a part whose bytes do not match its
    checksum is refused with BadDigest before moto stores it). Taken from ``digests`` when they
    know the listed ETag, else hashed from the stored part."""
    element = part.group(0)
    number = _PART_NUMBER_RE.search(element)
    etag = _ETAG_RE.search(element)
    if number is None or etag is None:
        return element
    part_number, listed_etag = int(number.group(1)), etag.group(1).decode()
    digest = digests.get(upload.id, part_number, listed_etag) or _stored_digest(
        upload, part_number, listed_etag
    )
    if digest is None:
        return element
    checksum = base64.b64encode(digest)
    return b"%s<ChecksumSHA256>%s</ChecksumSHA256></Part>" % (element[: -len(b"</Part>")], checksum)


def _stored_digest(upload: FakeMultipart, part_number: int, etag: str) -> bytes | None:
    """The SHA-256 of the part moto holds under ``part_number``, or None when it no longer has
    the listed ETag (replaced or gone since moto listed it: the listing stays as moto made it)."""
    stored = upload.parts.get(part_number)
    if stored is None or _unquoted(etag) != _unquoted(stored.etag):
        return None
    try:
        data = stored.value
    except ValueError:  # its buffer was closed: the upload was aborted meanwhile
        return None
    return hashlib.sha256(data).digest()


def _unquoted(etag: str | bytes) -> str:
    text = etag.decode() if isinstance(etag, bytes) else etag
    return text.replace("&quot;", "").replace("&#34;", "").strip('"')


def _discard_body(environ: WSGIEnvironment) -> None:
    stream = get_input_stream(environ)
    while stream.read(_DISCARD_CHUNK):
        pass


def _error(status: int, code: str, message: str) -> Response:
    """S3's XML error body."""
    request_id = secrets.token_hex(8).upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return Response(
        body,
        status=status,
        content_type="application/xml",
        headers={"x-amz-request-id": request_id},
    )


class CheckedMotoServer(ThreadedMotoServer):
    """moto's threaded server (``moto.server.ThreadedMotoServer``) with :class:`S3Checks` in
    front of its app; ``clock`` is the checks' time (presigned URLs' expiry), ``part_digests``
    the parts' digests the checks keep."""

    def __init__(
        self,
        ip_address: str = "127.0.0.1",
        port: int = 5000,
        verbose: bool = True,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=verbose)
        self._clock = clock
        self.part_digests = PartDigests()

    def _server_entry(self) -> None:
        # ThreadedMotoServer._server_entry, with the checks around moto's app.
        app = S3Checks(
            DomainDispatcherApplication(create_backend_app),
            clock=self._clock,
            part_digests=self.part_digests,
        )
        self._server = make_server(self._ip_address, self._port, app, threaded=True)
        self._server_ready_event.set()
        self._server.serve_forever()
