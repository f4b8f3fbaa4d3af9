"""Named errors: the contract between the tasks, the state machine and the API.

Tasks raise these classes; the state machine's ``Catch`` clauses match their class names (Lambda
reports ``errorType`` = class name); the API's response template maps the execution's final
``error`` to an HTTP status and client-facing code through :data:`WORKFLOW_ERRORS`, the one table
of that mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tasks.core.limits import STATE_PAYLOAD_LIMIT_BYTES


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class UploadError(Exception):
    """Base of the errors whose name reaches the state machine."""


class ClientError(UploadError):
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


class ValidationError(ClientError):
    """A field is missing, has the wrong type or is out of range; the body is not an object."""


class PayloadTooLarge(ClientError):
    """The decoded file is larger than MAX_FILE_BYTES."""


class IdempotencyConflict(ClientError):
    """The Idempotency-Key was used before with a different body."""


class TransientStorageError(UploadError):
    """S3 or DynamoDB throttled or had a transient fault; the state machine retries it."""


class StorageError(UploadError):
    """Storing the file or recording its metadata failed for good."""


class CompensationFailed(UploadError):
    """Deleting the versions this request stored failed: an orphan remains and is reported."""


class InvalidTaskInput(UploadError):
    """A task's event does not have the shape the state machine promises (a wiring fault, not the
    client's). Deliberately not a client error: the workflow ends it as ``InternalError``."""


@dataclass(frozen=True)
class ClientFacingError:
    status: int
    code: str
    # None: the message comes from the task's error (client errors); else this fixed text.
    message: str | None = None


INTERNAL_ERROR_MESSAGE = "The upload failed and nothing was stored. It is safe to retry."
STATE_TOO_LARGE_MESSAGE = (
    f"The request is larger than the workflow can take ({STATE_PAYLOAD_LIMIT_BYTES} bytes per "
    "state); nothing was stored."
)
ORPHAN_REPORTED_MESSAGE = (
    "The upload failed. Part of it could not be rolled back and has been reported for cleanup."
)

# Final execution error name -> what the client sees. ``InternalError`` is the name of the
# workflow's own Fail state for storage failures (after compensation).
WORKFLOW_ERRORS: dict[str, ClientFacingError] = {
    "ValidationError": ClientFacingError(400, "ValidationError"),
    "PayloadTooLarge": ClientFacingError(413, "PayloadTooLarge"),
    "IdempotencyConflict": ClientFacingError(409, "IdempotencyConflict"),
    "InternalError": ClientFacingError(500, "InternalError", INTERNAL_ERROR_MESSAGE),
    "CompensationFailed": ClientFacingError(500, "InternalError", ORPHAN_REPORTED_MESSAGE),
    # Step Functions' own error for a state over 256 KiB (no Catch can handle it). MAX_FILE_BYTES
    # keeps every valid request's states under the limit; only a padded spelling of the body
    # (long number literals) can get here, before anything is stored.
    "States.DataLimitExceeded": ClientFacingError(413, "PayloadTooLarge", STATE_TOO_LARGE_MESSAGE),
}

# Errors a task raises because of the request: the state machine ends them in a Fail that
# carries the task's own error name and message.
CLIENT_ERROR_NAMES: tuple[str, ...] = (
    ValidationError.__name__,
    PayloadTooLarge.__name__,
    IdempotencyConflict.__name__,
)
