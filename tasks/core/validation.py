"""The validate task's plain function: the client's request -> :class:`UploadMetadata`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

import msgspec

from tasks.core import idempotency
from tasks.core.content_types import (
    ANY_CONTENT_TYPE,
    ContentTypePolicy,
    contradiction,
    detect,
    extension_for,
    is_text,
    is_textual,
    recognise,
)
from tasks.core.errors import FieldProblem, PayloadTooLarge, ValidationError
from tasks.core.keys import S3_KEY_MAX_BYTES, default_file_name, key_fits, object_key
from tasks.core.limits import MAX_FILE_BYTES
from tasks.core.models import (
    UploadMetadata,
    UploadRequest,
    check_idempotency_key,
    decoded_size_bound,
    parse_request,
)

INVALID_BODY_MESSAGE: Final = "The request body is invalid."
NOT_AN_OBJECT_MESSAGE: Final = "The request body must be a JSON object."
TOO_LARGE_MESSAGE: Final = f"The file is larger than the limit of {MAX_FILE_BYTES} bytes."
IDEMPOTENCY_KEY_FIELD: Final = "Idempotency-Key"
CONTENT_TYPE_FIELD: Final = "contentType"
# A body with thousands of unknown fields must not produce an error larger than the body.
MAX_REPORTED_PROBLEMS: Final = 32


def validate_upload(
    request_id: str,
    body: object,
    idempotency_key: object = None,
    caller: str | None = None,
    *,
    policy: ContentTypePolicy = ANY_CONTENT_TYPE,
) -> UploadMetadata:
    """Check the body against CONTRACT.md and describe the upload.

    With an Idempotency-Key, the metadata also carries the key scoped to ``caller`` and hashed
    (``idempotencyId``) and the body's ``fingerprint`` (tasks.core.idempotency).

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
    request, request_problems = parse_request(body)
    problems.extend(request_problems)
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
    content_type = ""
    if request is not None:
        content_type, content_type_problem = content_type_of(request, policy)
        if content_type_problem is not None:
            problems.append(FieldProblem(CONTENT_TYPE_FIELD, content_type_problem))
    if problems or request is None:
        raise ValidationError(INVALID_BODY_MESSAGE, problems[:MAX_REPORTED_PROBLEMS])
    upload = describe(request_id, request, content_type)
    if isinstance(idempotency_key, str):  # checked above: 1..128 visible ASCII characters
        upload = msgspec.structs.replace(
            upload,
            idempotencyId=idempotency.idempotency_id(caller or "", idempotency_key),
            fingerprint=idempotency.fingerprint(body),
        )
    return upload


def content_type_of(request: UploadRequest, policy: ContentTypePolicy) -> tuple[str, str | None]:
    """The upload's content type (declared, else detected) and the problem with it, if any: the
    declared type contradicts the bytes, or it or the bytes' type is outside ``policy``
    (rules: tasks.core.content_types)."""
    data = request.fileContent
    recognition = recognise(data)
    declared = request.contentType
    content_type = declared or detect(data, recognition)
    if declared is not None:
        found = contradiction(declared, data, recognition)
        if found is not None:
            return content_type, f"is {declared!r} but the file's bytes are {found}"
    allowed = f"allowed: {policy.describe()}"
    if not policy.permits(content_type):
        origin = "" if declared is not None else " (detected from the file's bytes)"
        return content_type, f"{content_type!r}{origin} is not an allowed content type ({allowed})"
    # Text may begin like a signature ("ID3 ..."): a textual type for text bytes stands.
    text_exempt = is_textual(content_type) and is_text(data)
    if (
        recognition.candidates
        and not text_exempt
        and not any(policy.permits(c) for c in recognition.candidates)
    ):
        return content_type, (
            f"the file's bytes are {recognition.best}, which is not an allowed content type "
            f"({allowed})"
        )
    return content_type, None


def describe(request_id: str, request: UploadRequest, content_type: str = "") -> UploadMetadata:
    """The metadata of a valid request: size, hash, content type, clean file name, key."""
    data = request.fileContent
    content_type = content_type or content_type_of(request, ANY_CONTENT_TYPE)[0]
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
