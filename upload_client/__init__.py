"""A client of the upload service: ``upload_file`` in Python, ``upload-file`` on the command line.

Small files go inline in one request; large ones through an upload session, in parts sent in
parallel straight to storage and committed as one file (see :mod:`upload_client.session`).
"""

from upload_client.api import upload_file
from upload_client.auth import ApiKey, Signer, SigV4, Unsigned
from upload_client.errors import (
    ConfigurationError,
    FieldDetail,
    FileChanged,
    RequestRefused,
    ServiceFailed,
    SessionNotOpen,
    StorageRefused,
    UploadClientError,
    UploadInterrupted,
)
from upload_client.models import Checksum, UploadResult
from upload_client.retry import RetryPolicy

__all__ = [
    "ApiKey",
    "Checksum",
    "ConfigurationError",
    "FieldDetail",
    "FileChanged",
    "RequestRefused",
    "RetryPolicy",
    "ServiceFailed",
    "SessionNotOpen",
    "SigV4",
    "Signer",
    "StorageRefused",
    "Unsigned",
    "UploadClientError",
    "UploadInterrupted",
    "UploadResult",
    "upload_file",
]
