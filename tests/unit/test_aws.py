"""Client cache, SDK budgets, the SDK deadline and error classification shared by the tasks
that call AWS."""

from __future__ import annotations

import botocore.exceptions
import pytest

from tasks.contract import names
from tasks.contract.errors import (
    StorageError,
    TransientStorageError,
    UploadError,
    WriteOutcomeUnknown,
)
from tasks.contract.timing import DYNAMODB_SDK, S3_SDK, SWEEP_SDK, TIMINGS, SdkBudget
from tasks.core import aws, deadline, entry
from tasks.core.models import ValidateEvent

from .support import BUCKET, TABLE, Cloud


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def test_clients_are_cached_per_service_endpoint_and_region() -> None:
    env = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
    local = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:5999"}
    s3 = aws.client("s3", env)
    assert aws.client("s3", dict(env)) is s3
    assert aws.client("dynamodb", env) is not s3
    assert aws.client("s3", {**env, "AWS_REGION": "eu-west-1"}).meta.region_name == "eu-west-1"
    local_s3 = aws.client("s3", local)
    assert local_s3 is not s3
    assert local_s3.meta.endpoint_url == "http://127.0.0.1:5999"
    assert aws.client("s3", {**env, "AWS_ACCESS_KEY_ID": "b"}) is not s3


def test_each_service_gets_its_own_budget() -> None:
    env = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
    s3 = aws.client("s3", env).meta.config
    # S3: one attempt (a second one would hide a PUT whose outcome is unknown).
    assert (s3.connect_timeout, s3.read_timeout) == (0.25, 0.75)
    assert s3.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (S3_SDK.connect_timeout, S3_SDK.read_timeout, S3_SDK.total_max_attempts) == (
        0.25,
        0.75,
        1,
    )
    dynamodb = aws.client("dynamodb", env).meta.config
    assert (dynamodb.connect_timeout, dynamodb.read_timeout) == (0.15, 0.35)
    assert dynamodb.retries == {"mode": "standard", "total_max_attempts": 2}
    assert SdkBudget(connect_timeout=0.15, read_timeout=0.35, total_max_attempts=2) == DYNAMODB_SDK


def test_the_sweep_gets_a_patient_budget_and_clients_of_its_own() -> None:
    env = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
    for service in ("s3", "dynamodb"):
        patient = aws.client(service, env, SWEEP_SDK)
        assert patient is not aws.client(service, env)
        assert aws.client(service, env, SWEEP_SDK) is patient
        assert (patient.meta.config.connect_timeout, patient.meta.config.read_timeout) == (1, 5)
        assert patient.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    # Every attempt, with its back-off, still fits the sweep's own timeout many times over.
    assert SWEEP_SDK.worst_case_seconds() < TIMINGS[names.SWEEP].sdk_deadline_seconds / 2


def test_local_modes_time_scale_stretches_the_timeouts_of_a_client_of_its_own() -> None:
    env = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
    plain = aws.client("s3", env)
    slow = aws.client("s3", {**env, names.SDK_TIMEOUT_SCALE: "2"})
    assert slow is not plain
    assert (slow.meta.config.connect_timeout, slow.meta.config.read_timeout) == (0.5, 1.5)
    assert slow.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert aws.client("s3", {**env, names.SDK_TIMEOUT_SCALE: "1.8"}) is slow  # also 2


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("ThrottlingException", 400), True),
        (client_error("ProvisionedThroughputExceededException", 400), True),
        (client_error("Whatever", 500), True),
        (client_error("Whatever", 429), True),
        (client_error("AccessDenied", 403), False),
        (client_error("ValidationException", 400), False),
        (client_error("ConditionalCheckFailedException", 400), False),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="u"), True),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="u"), True),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="u"), True),
        (botocore.exceptions.ParamValidationError(report="bad"), False),
        (botocore.exceptions.NoCredentialsError(), False),
    ],
)
def test_transient_classification(error: Exception, transient: bool) -> None:
    assert aws.is_transient(error) is transient
    expected = TransientStorageError if transient else StorageError
    with pytest.raises(expected) as caught, aws.storage_errors("Doing it"):
        raise error
    assert type(caught.value) is expected
    assert str(caught.value) == (
        "Doing it failed temporarily." if transient else "Doing it failed."
    )


# --- the SDK deadline (tasks.core.deadline) and its before-send hook ---


def test_an_attempt_that_could_outlive_the_deadline_is_not_sent(cloud: Cloud) -> None:
    env = {k: v for k, v in cloud.env.items() if k != names.SDK_TIMEOUT_SCALE}
    s3 = aws.s3_client(env)
    sent: list[str] = []
    s3.meta.events.register("before-send", lambda **_: sent.append("sent"))
    # An S3 attempt may take S3_SDK.attempt_seconds (1.25 s): with 1 s left it is refused...
    with deadline.deadline_after(S3_SDK.attempt_seconds - 0.25):
        with pytest.raises(aws.OutOfTime, match="ListObjectVersions"):
            s3.list_object_versions(Bucket=BUCKET)
        with pytest.raises(TransientStorageError) as caught, aws.storage_errors("Listing"):
            s3.list_object_versions(Bucket=BUCKET)
    assert type(caught.value) is TransientStorageError
    assert isinstance(caught.value.__cause__, aws.OutOfTime)
    assert sent == []  # the refused attempts never left
    # ...with room to spare it goes, and so does any call outside an invocation.
    with deadline.deadline_after(S3_SDK.attempt_seconds + 5):
        s3.list_object_versions(Bucket=BUCKET)
    s3.list_object_versions(Bucket=BUCKET)
    assert deadline.seconds_left() is None
    assert len(sent) == 2


def test_each_service_is_held_to_its_own_attempt_time(cloud: Cloud) -> None:
    env = {k: v for k, v in cloud.env.items() if k != names.SDK_TIMEOUT_SCALE}
    dynamodb = aws.dynamodb_client(env)
    with deadline.deadline_after(DYNAMODB_SDK.attempt_seconds + 0.3):  # 0.9 s: enough
        dynamodb.describe_table(TableName=TABLE)
    with deadline.deadline_after(DYNAMODB_SDK.attempt_seconds - 0.1), pytest.raises(aws.OutOfTime):
        dynamodb.describe_table(TableName=TABLE)


def test_the_task_opens_its_deadline_and_local_mode_scales_it(cloud: Cloud) -> None:
    seen: list[float | None] = []
    event = {"requestId": "req-1", "body": "{}"}
    with entry.task_input(names.VALIDATE, ValidateEvent, event, {}):
        seen.append(deadline.seconds_left())
    with entry.task_input(names.VALIDATE, ValidateEvent, event, {names.SDK_TIMEOUT_SCALE: "4"}):
        seen.append(deadline.seconds_left())
    budget = TIMINGS[names.VALIDATE].sdk_deadline_seconds
    assert seen[0] is not None
    assert seen[1] is not None
    assert budget - 0.2 < seen[0] <= budget
    assert 4 * budget - 0.2 < seen[1] <= 4 * budget
    assert deadline.seconds_left() is None  # closed again


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (botocore.exceptions.ReadTimeoutError(endpoint_url="u"), WriteOutcomeUnknown),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="u"), WriteOutcomeUnknown),
        # Never sent: nothing can land.
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="u"), TransientStorageError),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="u"), TransientStorageError),
        (aws.OutOfTime("PutObject", 1.25, 0.5), TransientStorageError),
        (client_error("SlowDown", 503), TransientStorageError),
        (client_error("AccessDenied", 403), StorageError),
    ],
)
def test_a_write_sent_without_an_answer_is_an_unknown_outcome(
    error: Exception, expected: type[Exception]
) -> None:
    with pytest.raises(UploadError) as caught, aws.storage_errors("Writing", write=True):
        raise error
    assert type(caught.value) is expected
    # The same failure of a read (or of a write that may land harmlessly) is merely transient.
    with pytest.raises(UploadError) as read, aws.storage_errors("Reading"):
        raise error
    assert type(read.value) is (StorageError if expected is StorageError else TransientStorageError)
    assert issubclass(WriteOutcomeUnknown, TransientStorageError)


@pytest.mark.parametrize(
    ("value", "scale"),
    [
        (None, 1.0),
        ("", 1.0),
        ("1", 1.0),
        ("2", 2.0),
        ("2.3", 2.5),  # up to the next half
        ("2.5", 2.5),
        ("2.51", 3.0),
        ("0.5", 1.0),  # never faster than AWS
        ("-3", 1.0),
        ("garbage", 1.0),
        ("nan", 1.0),
        ("inf", 1.0),
        ("1e9", 16.0),  # capped
        ("16.2", 16.0),
    ],
)
def test_time_scale(value: str | None, scale: float) -> None:
    env = {} if value is None else {names.SDK_TIMEOUT_SCALE: value}
    assert deadline.time_scale(env) == scale
