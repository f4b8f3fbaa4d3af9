"""Validate task: checks the client's body and describes the upload. For an inline file it makes
no AWS call at all; a session's commit (``uploadId``) reads the session and its parts
(tasks.core.commits).

Event: {"requestId", "idempotencyKey", "caller", "body"} (body: the client's JSON text, which
validate parses with every number an exact decimal); returns UploadMetadata (``$.upload``,
with ``idempotencyId`` and ``fingerprint`` when the request has an Idempotency-Key).
Raises ValidationError / PayloadTooLarge / SessionNotFound / SessionNotOpen (client errors, whose
``str()`` is the JSON the response template reads), InvalidTaskInput for a malformed event, or a
storage error when a commit's reads fail.
No Powertools Tracer here (it would import the X-Ray SDK and botocore's session machinery, about a
quarter of a second of cold start, for a task that calls no AWS service for an inline file);
Lambda's active tracing still records each invocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from tasks.contract import names
from tasks.contract.content_types import policy_from_env
from tasks.contract.errors import RequestRejected
from tasks.core.commits import validate_commit
from tasks.core.entry import lambda_handler, task_input
from tasks.core.models import ValidateEvent
from tasks.core.observability import count_rejection, logger
from tasks.core.validation import check_product_id, parse_body, validate_upload

TASK = names.VALIDATE


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """Validate one request with settings from ``env``: the metric ones and
    ``ALLOWED_CONTENT_TYPES`` (comma-separated; empty or absent allows any type)."""
    with task_input(TASK, ValidateEvent, event, env) as payload:
        body: object = None
        policy = policy_from_env(env.get(names.ALLOWED_CONTENT_TYPES))
        try:
            body = parse_body(payload.body)
            if _is_commit(body):
                upload = validate_commit(
                    payload.requestId,
                    body,
                    payload.idempotencyKey,
                    payload.caller,
                    policy=policy,
                    env=env,
                )
            else:
                upload = validate_upload(
                    payload.requestId, body, payload.idempotencyKey, payload.caller, policy=policy
                )
        except RequestRejected as exc:
            details: dict[str, Any] = {
                "problems": [{"field": d.field, "message": d.message} for d in exc.details]
            }
            product_id = _product_id(body)
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


def _is_commit(body: object) -> TypeGuard[Mapping[str, object]]:
    """A session's commit: ``uploadId`` instead of ``fileContent`` (both: the inline rules
    refuse it)."""
    return isinstance(body, Mapping) and "uploadId" in body and "fileContent" not in body


def _product_id(body: object) -> str | None:
    """The body's ``productId`` if it is a valid-looking one (never anything else of the body)."""
    product = body.get("productId") if isinstance(body, Mapping) else None
    if not isinstance(product, str):
        return None
    try:
        return check_product_id(product)
    except ValueError:
        return None


handler = lambda_handler(run)
