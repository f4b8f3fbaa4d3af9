"""Client cache and SDK error classification shared by store, record and compensate."""

from __future__ import annotations

import botocore.exceptions
import pytest

from tasks.contract.errors import StorageError, TransientStorageError
from tasks.core import aws


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
    config = local_s3.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1, 2)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}


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
