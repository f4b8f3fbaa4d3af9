"""The errors the client raises, one class per kind of outcome a caller handles differently.

Every error carries what the service (or storage) said: its ``code``, ``message``, the field
problems in ``details``, the HTTP ``status`` and the ``request_id`` an operator needs to trace it
(``upload-ops history <requestId>``). ``operation`` names the call that failed (``POST /uploads``,
``PUT part 3``) and ``upload_id`` the open session a failure left behind, so that the upload can
be resumed. The CLI maps each class to an exit status
(:mod:`upload_client.cli`).
"""

from __future__ import annotations

import msgspec


class FieldDetail(msgspec.Struct, frozen=True):
    """One problem with one field of a refused request."""

    field: str
    message: str


class UploadClientError(Exception):
    """Base of every failure the client reports."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        request_id: str | None = None,
        details: tuple[FieldDetail, ...] = (),
        operation: str | None = None,
        upload_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details = details
        self.operation = operation
        self.upload_id = upload_id

    def __str__(self) -> str:
        return self.message if self.operation is None else f"{self.operation}: {self.message}"


class ConfigurationError(UploadClientError):
    """The call cannot be made as given: no API URL, no credentials, a file that does not match
    the session it should resume. Nothing was sent, or nothing that matters."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="ConfigurationError")


class RequestRefused(UploadClientError):
    """The service answered 4xx: the request is at fault and retrying it unchanged cannot help."""


class SessionNotOpen(RequestRefused):
    """The session to resume is committed, aborted or expired: there is nothing to continue."""


class ServiceFailed(UploadClientError):
    """The service (or storage) answered 5xx or 429, or could not be reached, after every retry;
    or it answered something that is not the documented shape."""


class StorageRefused(UploadClientError):
    """Storage refused a part: an altered presigned URL, an aborted session."""


class FileChanged(StorageRefused):
    """The file's bytes differ from those hashed a moment ago (storage's ``BadDigest``, or a part
    shorter than planned): the file changed on disk while it was being uploaded."""


class UploadInterrupted(KeyboardInterrupt):
    """Ctrl-C during a session upload. A ``KeyboardInterrupt``, so that code catching
    ``Exception`` still lets it through; it names the session, which stays open to be resumed."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(upload_id)
        self.upload_id = upload_id
