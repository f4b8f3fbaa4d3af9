"""Named errors, and the one table of what a client sees for every outcome.

Tasks raise the error classes below; the state machine's ``Catch`` clauses match their class
names (Lambda reports ``errorType`` = class name). :data:`OUTCOMES` says, for every way a request
can end other than 200, which HTTP status, code and message the client gets:

- the execution's final error (a task's error name, or one of the workflow's Fail states), and
  ``States.Timeout`` for an execution that timed out -- read by the response template
  (infra/templates/response.vtl, which gets this table rendered into it) and by ``upload-ops``;
- ``Edge.*``: Step Functions refused to start the execution (the response template again);
- ``Gateway.<TYPE>``: API Gateway answered by itself (its gateway response of that type,
  infra/api.py).

``docs/api.md`` lists the same statuses and codes for clients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from tasks.contract.limits import (
    API_GATEWAY_PAYLOAD_LIMIT_BYTES,
    MAX_FILE_BYTES,
    STATE_PAYLOAD_LIMIT_BYTES,
)


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class UploadError(Exception):
    """Base of the errors whose name reaches the state machine."""


class RequestRejected(UploadError):
    """The request itself is at fault. ``str()`` is a JSON document the response template reads,
    so the message and details reach the client without the Lambda stack trace."""

    def __init__(self, message: str, details: list[FieldProblem] | None = None) -> None:
        self.message = message
        self.details = details or []
        super().__init__(message)

    def __str__(self) -> str:
        document: dict[str, object] = {"message": self.message}
        if self.details:
            document["details"] = [{"field": d.field, "message": d.message} for d in self.details]
        return json.dumps(document, ensure_ascii=True)


class ValidationError(RequestRejected):
    """A field is missing, has the wrong type or is out of range; the body is not an object."""


class PayloadTooLarge(RequestRejected):
    """The decoded file is larger than MAX_FILE_BYTES."""


class IdempotencyConflict(RequestRejected):
    """The Idempotency-Key was used before with a different body."""


class UploadInProgress(RequestRejected):
    """Another upload of the same metadata item (productId, productName) holds its lease: uploads
    of one item run one at a time (tasks.contract.ledger). Nothing was stored; retry shortly."""


class SessionNotFound(RequestRejected):
    """No upload session of this caller has this uploadId (another caller's session is not
    found either)."""


class SessionNotOpen(RequestRejected):
    """The upload session is committed, being committed, aborted or expired: it takes no more
    parts, and it cannot be aborted once committed."""


class ContentMismatch(RequestRejected):
    """A committed session's first bytes contradict its declared content type, or are of a type
    the service does not allow. Raised by Store after the file landed: the workflow compensates
    (nothing remains), then answers 400 like any invalid request."""


class TooManySessions(RequestRejected):
    """The caller already holds the most open upload sessions allowed (maxOpenSessions)."""


class TransientStorageError(UploadError):
    """S3 or DynamoDB throttled or had a transient fault; the state machine retries it."""


class WriteOutcomeUnknown(TransientStorageError):
    """A write's request was sent and its answer never came (a read timeout, a dropped
    connection): it may still land. Not retried: the upload is compensated, the item's lease kept
    until it expires, and the request left to the sweep, which finds the write if it lands."""


class StorageError(UploadError):
    """Storing the file or recording its metadata failed for good."""


class CompensationFailed(UploadError):
    """Deleting the versions this request stored failed: an orphan remains and is reported."""


class InvalidTaskInput(UploadError):
    """A task's event does not have the shape the state machine promises (a wiring fault, not the
    client's). Deliberately not a rejected request: the workflow ends it as ``InternalError``."""


# Errors a task raises because of the request: the state machine ends them in a Fail that
# carries the task's own error name and message.
CLIENT_ERROR_NAMES: Final[tuple[str, ...]] = (
    ValidationError.__name__,
    PayloadTooLarge.__name__,
    IdempotencyConflict.__name__,
    UploadInProgress.__name__,
    SessionNotFound.__name__,
    SessionNotOpen.__name__,
    TooManySessions.__name__,
)
# Every error that ends an execution because of the request (the client errors, and a content
# mismatch found after the file landed, compensated first): what the tasks count as Rejections.
REJECTED_ERROR_NAMES: Final[tuple[str, ...]] = (*CLIENT_ERROR_NAMES, ContentMismatch.__name__)
# Errors Store raises only when no write of its own can still be in flight (its S3 call answered,
# or none was made): after them the compensation may release the item's lease at once.
SETTLED_STORE_ERRORS: Final[tuple[str, ...]] = (
    ContentMismatch.__name__,
    TransientStorageError.__name__,
    StorageError.__name__,
    InvalidTaskInput.__name__,
)
# The Error of the workflow's UploadFailed state: storing or recording failed, compensated.
INTERNAL_ERROR: Final = "InternalError"
# The error Step Functions reports for an execution (or a state) that ran out of time.
TIMEOUT_ERROR: Final = "States.Timeout"


@dataclass(frozen=True)
class Outcome:
    """What the client gets: status, code and message. ``from_task``: the message and details are
    the task's own (a rejected request), ``message`` only stands in when they cannot be read."""

    status: int
    code: str
    message: str
    from_task: bool = False


INTERNAL_ERROR_MESSAGE: Final = "The upload failed and nothing was stored. It is safe to retry."
STATE_TOO_LARGE_MESSAGE: Final = (
    f"The request is larger than the workflow can take ({STATE_PAYLOAD_LIMIT_BYTES} bytes per "
    "state); nothing was stored."
)
ORPHAN_REPORTED_MESSAGE: Final = (
    "The upload failed. Part of it could not be rolled back and has been reported for cleanup."
)
PAYLOAD_TOO_LARGE_MESSAGE: Final = (
    f"The request is too large. The file may be at most {MAX_FILE_BYTES} bytes"
    " (after base64 decoding)."
)
INVALID_JSON_MESSAGE: Final = "The request body is not valid JSON."
UPLOAD_IN_PROGRESS_MESSAGE: Final = (
    "Another upload of this product (productId and productName) is in progress; nothing was "
    "stored. Retry in a few seconds."
)
SESSION_NOT_FOUND_MESSAGE: Final = "There is no upload session with this uploadId."
UNAVAILABLE_MESSAGE: Final = "The service is busy. Retry the request later."
TIMEOUT_MESSAGE: Final = "The upload did not finish in time."

OUTCOMES: Final[dict[str, Outcome]] = {
    # -- the execution's final error ------------------------------------------------------------
    "ValidationError": Outcome(400, "ValidationError", "The request is not valid.", True),
    "PayloadTooLarge": Outcome(413, "PayloadTooLarge", PAYLOAD_TOO_LARGE_MESSAGE, True),
    "IdempotencyConflict": Outcome(
        409,
        "IdempotencyConflict",
        "The Idempotency-Key was used before with a different request body.",
        True,
    ),
    "UploadInProgress": Outcome(409, "UploadInProgress", UPLOAD_IN_PROGRESS_MESSAGE, True),
    "ContentMismatch": Outcome(400, "ValidationError", "The request is not valid.", True),
    "SessionNotFound": Outcome(404, "NotFound", SESSION_NOT_FOUND_MESSAGE, True),
    "SessionNotOpen": Outcome(409, "SessionNotOpen", "The upload session is not open.", True),
    "TooManySessions": Outcome(
        429, "TooManySessions", "Too many upload sessions are open; finish or abort one.", True
    ),
    INTERNAL_ERROR: Outcome(500, "InternalError", INTERNAL_ERROR_MESSAGE),
    "CompensationFailed": Outcome(500, "InternalError", ORPHAN_REPORTED_MESSAGE),
    # Step Functions' own error for a state over 256 KiB, terminal (a States.ALL catcher does not
    # catch it). MAX_FILE_BYTES keeps every valid request's states under the limit; only a padded
    # spelling of the body (long number literals) can get here, before anything is stored.
    "States.DataLimitExceeded": Outcome(413, "PayloadTooLarge", STATE_TOO_LARGE_MESSAGE),
    TIMEOUT_ERROR: Outcome(504, "Timeout", TIMEOUT_MESSAGE),
    # -- Step Functions refused to start the execution ------------------------------------------
    # Too large for Step Functions: a ValidationException (the input over 256 KiB, the only
    # constraint our request can break), an error type naming a too-large request, or an HTTP 413
    # whatever its body (the request over 1 MB).
    "Edge.InputTooLarge": Outcome(413, "PayloadTooLarge", PAYLOAD_TOO_LARGE_MESSAGE),
    # InvalidExecutionInput: the body the request template embedded was not JSON.
    "Edge.InputNotJson": Outcome(400, "ValidationError", INVALID_JSON_MESSAGE),
    # ThrottlingException, ExecutionLimitExceeded, ServiceUnavailable.
    "Edge.StartThrottled": Outcome(503, "ServiceUnavailable", UNAVAILABLE_MESSAGE),
    # -- API Gateway's own answers (gateway responses) -------------------------------------------
    # Not $context.error.validationErrorString: gateway responses substitute it unescaped, and
    # its quotes would break the JSON. The validate task reports per-field details.
    "Gateway.BAD_REQUEST_BODY": Outcome(
        400, "ValidationError", "The request body must be a JSON object."
    ),
    "Gateway.BAD_REQUEST_PARAMETERS": Outcome(
        400, "ValidationError", "A request header or parameter is invalid."
    ),
    "Gateway.ACCESS_DENIED": Outcome(403, "Forbidden", "Access denied."),
    "Gateway.MISSING_AUTHENTICATION_TOKEN": Outcome(
        403, "Forbidden", "Missing authentication token (or no such resource)."
    ),
    "Gateway.INVALID_SIGNATURE": Outcome(403, "Forbidden", "Invalid signature."),
    "Gateway.EXPIRED_TOKEN": Outcome(403, "Forbidden", "Expired credentials."),
    "Gateway.INVALID_API_KEY": Outcome(403, "Forbidden", "Missing or invalid API key."),
    "Gateway.WAF_FILTERED": Outcome(403, "Forbidden", "The request was blocked by the firewall."),
    "Gateway.RESOURCE_NOT_FOUND": Outcome(404, "NotFound", "There is no such resource."),
    "Gateway.THROTTLED": Outcome(429, "TooManyRequests", "Too many requests."),
    "Gateway.QUOTA_EXCEEDED": Outcome(
        429, "TooManyRequests", "The daily request quota is exhausted."
    ),
    "Gateway.UNSUPPORTED_MEDIA_TYPE": Outcome(
        415, "UnsupportedMediaType", "Content-Type must be application/json."
    ),
    "Gateway.REQUEST_TOO_LARGE": Outcome(
        413,
        "PayloadTooLarge",
        f"The request exceeds {API_GATEWAY_PAYLOAD_LIMIT_BYTES} bytes; the decoded file "
        f"may be at most {MAX_FILE_BYTES} bytes.",
    ),
    "Gateway.INTEGRATION_TIMEOUT": Outcome(504, "Timeout", TIMEOUT_MESSAGE),
    # API Gateway could not reach Step Functions at all: nothing started, nothing stored.
    "Gateway.INTEGRATION_FAILURE": Outcome(
        503,
        "ServiceUnavailable",
        "The upload could not be started. Nothing was stored; retry later.",
    ),
    # The catch-alls, for the types above and any API Gateway adds later. Every 4xx type it has
    # today is listed but UNAUTHORIZED, which only an authorizer raises (this API has none).
    "Gateway.DEFAULT_4XX": Outcome(403, "Forbidden", "The request was refused."),
    "Gateway.DEFAULT_5XX": Outcome(
        500, "InternalError", "The request could not be processed. Nothing was stored."
    ),
}

EDGE_PREFIX: Final = "Edge."
GATEWAY_PREFIX: Final = "Gateway."

# The execution's final error name -> outcome (the entries without a prefix).
WORKFLOW_ERRORS: Final[dict[str, Outcome]] = {
    name: outcome
    for name, outcome in OUTCOMES.items()
    if not name.startswith((EDGE_PREFIX, GATEWAY_PREFIX)) and name != TIMEOUT_ERROR
}


def codes_by_status() -> dict[int, frozenset[str]]:
    """Every error status a client can get -> the codes it comes with."""
    codes: dict[int, set[str]] = {}
    for outcome in OUTCOMES.values():
        codes.setdefault(outcome.status, set()).add(outcome.code)
    return {status: frozenset(codes[status]) for status in sorted(codes)}


def outcome_of_execution(status: str, error: str | None) -> Outcome | None:
    """What the client got for an execution that ended with ``status`` (SUCCEEDED: None, the
    success body) and final ``error``; an unknown error is an internal one."""
    if status == "SUCCEEDED":
        return None
    if status == "TIMED_OUT":
        return OUTCOMES[TIMEOUT_ERROR]
    if status == "FAILED":
        return WORKFLOW_ERRORS.get(error or "", OUTCOMES[INTERNAL_ERROR])
    return OUTCOMES[INTERNAL_ERROR]  # aborted
