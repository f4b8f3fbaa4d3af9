"""Store task: writes the validated file as a new, KMS-encrypted S3 object version.

Event: {"requestId", "upload": UploadMetadata, "fileContent"}; returns StoreReceipt
(``$.stored``: bucket, s3Key, versionId). Env: UPLOAD_BUCKET_NAME, UPLOAD_KEY_ARN.
Raises TransientStorageError (throttling, 5xx, timeouts), StorageError, InvalidTaskInput.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from tasks.core import aws
from tasks.core.errors import InvalidTaskInput, StorageError
from tasks.core.keys import REQUEST_ID_METADATA, object_key
from tasks.core.models import StoreEvent, StoreReceipt, UploadMetadata, parse_payload
from tasks.core.observability import logger, request_scope
from tasks.core.tracing import tracer

TASK = "store"


def object_metadata(request_id: str, upload: UploadMetadata) -> dict[str, str]:
    """ASCII-only S3 user metadata; names and product names are percent-encoded UTF-8."""
    return {
        REQUEST_ID_METADATA: request_id,
        "product-id": upload.productId,
        "sha256": upload.sha256,
        "product-name": urllib.parse.quote(upload.productName, safe=""),
        "file-name": urllib.parse.quote(upload.fileName, safe=""),
    }


def store(
    request_id: str,
    upload: UploadMetadata,
    file_content: str,
    *,
    s3: Any,
    bucket: str,
    key_arn: str,
) -> StoreReceipt:
    """Put the decoded file under ``upload.s3Key``; the bytes must match what validate saw."""
    try:
        data = base64.b64decode(file_content, validate=True)
    except binascii.Error:
        raise InvalidTaskInput("fileContent is not the base64 validate accepted") from None
    digest = hashlib.sha256(data)
    if len(data) != upload.size or digest.hexdigest() != upload.sha256:
        raise InvalidTaskInput("fileContent does not match the validated size and sha256")
    if upload.s3Key != object_key(upload.productId, upload.fileName):
        raise InvalidTaskInput("upload.s3Key does not follow the key rules")
    with aws.storage_errors("Storing the file"):
        response = s3.put_object(
            Bucket=bucket,
            Key=upload.s3Key,
            Body=data,
            ContentType=upload.contentType,
            # S3 verifies the bytes against this digest and keeps it with the version.
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_arn,
            BucketKeyEnabled=True,
            Metadata=object_metadata(request_id, upload),
        )
    version_id = response.get("VersionId")
    if not isinstance(version_id, str) or not version_id or version_id == "null":
        # Unversioned bucket: the contract's versionId (and safe compensation) are impossible.
        logger.error("The bucket is not versioned", extra={"bucket": bucket, "s3Key": upload.s3Key})
        raise StorageError("Storing the file failed.")
    logger.info(
        "File stored",
        extra={
            "bucket": bucket,
            "s3Key": upload.s3Key,
            "versionId": version_id,
            "size": upload.size,
            "sha256": upload.sha256,
        },
    )
    return StoreReceipt(bucket=bucket, s3Key=upload.s3Key, versionId=version_id)


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Store one file with settings and endpoint taken from ``env``."""
    with request_scope(TASK, event.get("requestId") if isinstance(event, dict) else None):
        payload = parse_payload(StoreEvent, event)
        receipt = store(
            payload.requestId,
            payload.upload,
            payload.fileContent,
            s3=aws.client("s3", env),
            bucket=aws.required_setting(env, "UPLOAD_BUCKET_NAME"),
            key_arn=aws.required_setting(env, "UPLOAD_KEY_ARN"),
        )
        return receipt.model_dump()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(event, env=os.environ)
