"""AWS SDK access for the store, record and compensate tasks (never imported by validate).

Clients are created lazily and cached per (service, endpoint, region, access key id), so a Lambda
sandbox reuses them across invocations and local mode can point each call at its own endpoint
through the ``env`` mapping (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...).

The tasks use botocore, the runtime's low-level SDK that boto3 wraps: clients are the same, and
not importing boto3 (with s3transfer and the resource layer, which the tasks do not use) saves
about 20 ms of every cold start (``python -m bench``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, cast

import botocore.exceptions
import botocore.session
from botocore.config import Config

from tasks.contract.errors import (
    InvalidTaskInput,
    StorageError,
    TransientStorageError,
    WriteOutcomeUnknown,
)
from tasks.contract.timing import DYNAMODB_SDK, S3_SDK, SdkBudget
from tasks.core import deadline
from tasks.core.observability import logger

if TYPE_CHECKING:  # type stubs only (mypy-boto3-*): no import at run time
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


def client_config(budget: SdkBudget, scale: float = 1.0) -> Config:
    """The botocore configuration of a client with ``budget``'s timeouts (times ``scale``) and
    attempts."""
    return Config(
        connect_timeout=budget.connect_timeout * scale,
        read_timeout=budget.read_timeout * scale,
        retries={"mode": "standard", "total_max_attempts": budget.total_max_attempts},
    )


# Each service's client budget (tasks.contract.timing says why).
SDK_BUDGETS: Final[dict[str, SdkBudget]] = {"dynamodb": DYNAMODB_SDK, "s3": S3_SDK}


class OutOfTime(Exception):
    """An attempt of an AWS call was not started: it could have ended after the deadline."""

    def __init__(self, operation: str, needed: float, left: float) -> None:
        super().__init__(
            f"No time left for an attempt of {operation} ({needed:.2f} s needed, {left:.2f} s left)"
        )


# Error codes that mean "try again later" (throttling and transient service faults).
TRANSIENT_ERROR_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        "KMSInternalException",
        "KMSThrottlingException",
    }
)

# A cancelled TransactWriteItems is transient when every item's reason is one of these (a
# concurrent write to the same item, throttling); "None" marks the items that were not at fault.
TRANSIENT_CANCELLATION_REASONS: Final = frozenset(
    {
        "None",
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)

_clients: dict[tuple[str, str | None, str | None, str | None, float, SdkBudget, bool], Any] = {}
_clients_lock = threading.Lock()


@functools.cache
def _session() -> botocore.session.Session:
    """One session for every client: a task needing two clients (compensate; store with an
    Idempotency-Key) loads botocore's shared data (endpoints, partitions, retry rules) once, about
    50 ms of its first invocation (``python -m bench``)."""
    return botocore.session.get_session()


def client(
    service: str, env: Mapping[str, str], budget: SdkBudget | None = None, *, presign: bool = False
) -> Any:
    """A cached botocore client for ``service`` configured from ``env`` and ``budget`` (by default
    the service's); every attempt of its calls is held to the invocation's deadline. ``presign``:
    an S3 client whose presigned URLs clients can use (:func:`presign_config`)."""
    budget = budget or SDK_BUDGETS[service]
    endpoint = env.get("AWS_ENDPOINT_URL") or None
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    access_key = env.get("AWS_ACCESS_KEY_ID") or None
    scale = deadline.time_scale(env)
    config = client_config(budget, scale)
    if presign:
        config = config.merge(presign_config(path_style=endpoint is not None))
    cache_key = (service, endpoint, region, access_key, scale, budget, presign)
    with _clients_lock:
        cached = _clients.get(cache_key)
        if cached is None:
            cached = _session().create_client(
                service,
                region_name=region,
                endpoint_url=endpoint,
                aws_access_key_id=access_key,
                aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") if access_key else None,
                aws_session_token=env.get("AWS_SESSION_TOKEN") if access_key else None,
                config=config,
            )
            refuse = functools.partial(_refuse_late_attempt, budget.attempt_seconds * scale)
            cached.meta.events.register("before-send", refuse)
            _clients[cache_key] = cached
        return cached


def _refuse_late_attempt(attempt_seconds: float, request: Any, **kwargs: Any) -> None:
    """botocore's last hook before it sends an attempt: an attempt that could still be running
    when the deadline passes is not sent (its request could land after the task ended)."""
    left = deadline.seconds_left()
    if left is not None and left < attempt_seconds:
        operation = kwargs.get("event_name", "before-send").rsplit(".", 1)[-1]
        raise OutOfTime(operation, attempt_seconds, max(left, 0.0))


def s3_client(
    env: Mapping[str, str], budget: SdkBudget | None = None, *, presign: bool = False
) -> S3Client:
    """The cached S3 client for ``env`` (:func:`client`)."""
    return cast("S3Client", client("s3", env, budget, presign=presign))


def presign_config(*, path_style: bool) -> Config:
    """Presigned URLs signed with SigV4 (botocore would presign with SigV2) for the regional
    endpoint (the global one answers a new bucket with a 307 redirect, which breaks browsers);
    path-style addressing for an emulator's endpoint."""
    return Config(
        signature_version="s3v4",
        s3={
            "us_east_1_regional_endpoint": "regional",
            "addressing_style": "path" if path_style else "virtual",
        },
    )


def dynamodb_client(env: Mapping[str, str], budget: SdkBudget | None = None) -> DynamoDBClient:
    """The cached DynamoDB client for ``env`` (:func:`client`)."""
    return cast("DynamoDBClient", client("dynamodb", env, budget))


def clear_clients() -> None:
    """Forget every cached client (tests; a new endpoint or credentials)."""
    with _clients_lock:
        _clients.clear()


def required_setting(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise InvalidTaskInput(f"The task is not configured: {name} is not set")
    return value


# What an SDK call can raise: botocore's errors and a refused late attempt.
SDK_ERRORS: Final = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OutOfTime)
CONDITION_FAILED: Final = "ConditionalCheckFailedException"
TRANSACTION_CANCELED: Final = "TransactionCanceledException"


def conditional_write(write: Callable[[], object]) -> bool:
    """Make a conditional DynamoDB write: True when it was made, False when its condition did not
    hold. Every other error propagates."""
    try:
        write()
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == CONDITION_FAILED:
            return False
        raise
    return True


def string_attribute(item: Mapping[str, Any], name: str) -> str | None:
    """A DynamoDB item's string attribute (``{"S": ...}``), or None if absent or not a string."""
    value = item.get(name)
    return value.get("S") if isinstance(value, dict) else None


def number_attribute(item: Mapping[str, Any], name: str) -> str | None:
    """A DynamoDB item's number attribute (``{"N": ...}``, as text), or None."""
    value = item.get(name)
    return value.get("N") if isinstance(value, dict) else None


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx answers, timeouts and connection failures."""
    if isinstance(exc, botocore.exceptions.ClientError):
        if error_code(exc) == TRANSACTION_CANCELED:
            reasons = {str(r.get("Code")) for r in exc.response.get("CancellationReasons") or []}
            return bool(reasons - {"None"}) and reasons <= TRANSIENT_CANCELLATION_REASONS
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in TRANSIENT_ERROR_CODES or (
            isinstance(status, int) and (status >= 500 or status == 429)
        )
    return isinstance(
        exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError | OutOfTime
    )


def outcome_unknown(exc: BaseException) -> bool:
    """The request was sent and no answer came: what it asked for may still happen."""
    return isinstance(
        exc, botocore.exceptions.ReadTimeoutError | botocore.exceptions.ConnectionClosedError
    )


@contextmanager
def storage_errors(action: str, *, write: bool = False) -> Iterator[None]:
    """Turn SDK failures into the workflow's named errors.

    The SDK's text goes to the log only; the raised error's message is a fixed sentence built
    from ``action`` (e.g. "Storing the file"), so no SDK text can reach a client. ``write``: the
    block writes something that must not land unnoticed, so a request sent without an answer is
    a :class:`WriteOutcomeUnknown`.
    """
    try:
        yield
    except SDK_ERRORS as exc:
        transient = is_transient(exc)
        unknown = write and outcome_unknown(exc)
        logger.error(
            f"{action} failed",
            extra={
                "errorCode": error_code(exc),
                "transient": transient,
                "outcomeUnknown": unknown,
                "sdkError": str(exc),
            },
        )
        if unknown:
            raise WriteOutcomeUnknown(f"{action} failed temporarily.") from exc
        if transient:
            raise TransientStorageError(f"{action} failed temporarily.") from exc
        raise StorageError(f"{action} failed.") from exc
