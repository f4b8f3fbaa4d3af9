"""Validate task: checks the client's body and describes the upload (no AWS access at all).

Event: {"requestId", "idempotencyKey", "caller", "body"}; returns UploadMetadata (``$.upload``,
with ``idempotencyId`` and ``fingerprint`` when the request has an Idempotency-Key).
Raises ValidationError / PayloadTooLarge (client errors, whose ``str()`` is the JSON the response
template reads) or InvalidTaskInput for a malformed event.
No Powertools Tracer here (it would import the X-Ray SDK and botocore's session machinery, about a
quarter of a second of cold start, for a task that calls no AWS service); Lambda's active tracing
still records each invocation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tasks.core.content_types import ALLOWED_CONTENT_TYPES_ENV, policy_from_env
from tasks.core.errors import ClientError
from tasks.core.models import (
    ValidateEvent,
    check_product_id,
    parse_payload,
)
from tasks.core.observability import count_rejection, logger, request_scope
from tasks.core.validation import validate_upload

TASK = "validate"


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Validate one request with settings from ``env``: the metric ones and
    ``ALLOWED_CONTENT_TYPES`` (comma-separated; empty or absent allows any type)."""
    with request_scope(TASK, event.get("requestId") if isinstance(event, dict) else None):
        payload = parse_payload(ValidateEvent, event)
        try:
            upload = validate_upload(
                payload.requestId,
                payload.body,
                payload.idempotencyKey,
                payload.caller,
                policy=policy_from_env(env.get(ALLOWED_CONTENT_TYPES_ENV)),
            )
        except ClientError as exc:
            details: dict[str, Any] = {
                "problems": [{"field": d.field, "message": d.message} for d in exc.details]
            }
            product_id = _product_id(payload.body)
            if product_id is not None:  # lets operators find a product's rejected requests
                details["productId"] = product_id
            count_rejection(type(exc).__name__, env=env, **details)
            raise
        logger.info(
            "Request valid",
            extra={
                "productId": upload.productId,
                "s3Key": upload.s3Key,
                "size": upload.size,
                "sha256": upload.sha256,
                "contentType": upload.contentType,
            },
        )
        return upload.to_dict()


def _product_id(body: object) -> str | None:
    """The body's ``productId`` if it is a valid-looking one (never anything else of the body)."""
    product = body.get("productId") if isinstance(body, Mapping) else None
    if not isinstance(product, str):
        return None
    try:
        return check_product_id(product)
    except ValueError:
        return None


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(event, env=os.environ)
