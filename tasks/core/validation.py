"""The validate task's plain function: the client's request -> :class:`UploadMetadata`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

import pydantic

from tasks.core.content_types import detect, extension_for
from tasks.core.errors import FieldProblem, PayloadTooLarge, ValidationError
from tasks.core.keys import S3_KEY_MAX_BYTES, default_file_name, key_fits, object_key
from tasks.core.limits import MAX_FILE_BYTES
from tasks.core.models import (
    UploadMetadata,
    UploadRequest,
    check_idempotency_key,
    decoded_size_bound,
)

INVALID_BODY_MESSAGE: Final = "The request body is invalid."
NOT_AN_OBJECT_MESSAGE: Final = "The request body must be a JSON object."
TOO_LARGE_MESSAGE: Final = f"The file is larger than the limit of {MAX_FILE_BYTES} bytes."
IDEMPOTENCY_KEY_FIELD: Final = "Idempotency-Key"
# A body with thousands of unknown fields must not produce an error larger than the body.
MAX_REPORTED_PROBLEMS: Final = 32
_MAX_FIELD_NAME_CHARS: Final = 128


def validate_upload(
    request_id: str, body: object, idempotency_key: object = None
) -> UploadMetadata:
    """Check the body against CONTRACT.md and describe the upload.

    Raises :class:`PayloadTooLarge` when ``fileContent`` decodes to more than ``MAX_FILE_BYTES``
    bytes (known from its length, before any decoding and before the other rules), else
    :class:`ValidationError` listing every field's problem.
    """
    if not isinstance(body, Mapping):
        raise ValidationError(
            NOT_AN_OBJECT_MESSAGE, [FieldProblem("body", "must be a JSON object")]
        )
    content = body.get("fileContent")
    if isinstance(content, str) and decoded_size_bound(content) > MAX_FILE_BYTES:
        raise PayloadTooLarge(
            TOO_LARGE_MESSAGE,
            [FieldProblem("fileContent", f"decodes to more than {MAX_FILE_BYTES} bytes")],
        )

    problems: list[FieldProblem] = []
    try:
        check_idempotency_key(idempotency_key)
    except ValueError as exc:
        problems.append(FieldProblem(IDEMPOTENCY_KEY_FIELD, str(exc)))
    request: UploadRequest | None = None
    try:
        request = UploadRequest.model_validate(dict(body))
    except pydantic.ValidationError as exc:
        problems.extend(_field_problems(exc))
    if (
        request is not None
        and request.fileName is not None
        and not key_fits(request.productId, request.fileName)
    ):
        problems.append(
            FieldProblem(
                "fileName",
                f"is too long: the object key 'uploads/<productId>/<fileName>' must fit "
                f"in {S3_KEY_MAX_BYTES} bytes of UTF-8",
            )
        )
    if problems or request is None:
        raise ValidationError(INVALID_BODY_MESSAGE, problems[:MAX_REPORTED_PROBLEMS])
    return describe(request_id, request)


def describe(request_id: str, request: UploadRequest) -> UploadMetadata:
    """The metadata of a valid request: size, hash, content type, clean file name, key."""
    data = request.fileContent
    content_type = request.contentType or detect(data)
    file_name = request.fileName or default_file_name(request_id, extension_for(content_type))
    return UploadMetadata(
        productId=request.productId,
        productName=request.productName,
        price=request.price,
        fileName=file_name,
        contentType=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        s3Key=object_key(request.productId, file_name),
    )


def _field_problems(exc: pydantic.ValidationError) -> list[FieldProblem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        location = error["loc"]
        field = str(location[0]) if location else "body"
        if len(field) > _MAX_FIELD_NAME_CHARS:
            field = field[:_MAX_FIELD_NAME_CHARS] + "..."
        kind = error["type"]
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not an allowed field"
        elif kind == "value_error":
            message = str(error.get("ctx", {}).get("error", error["msg"]))
        else:  # pragma: no cover - every rule raises ValueError
            message = error["msg"]
        problems.append(FieldProblem(field, message))
    return problems
