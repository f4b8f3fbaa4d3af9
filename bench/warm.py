"""Warm handler time: each task's Lambda handler called again and again in one process against
moto in-process (``mock_aws``), for a ``MAX_FILE_BYTES`` file and a 1 KB file.

The handlers run exactly as on Lambda (``tasks.<task>.handler(event, context)``, settings from
``os.environ``, Powertools decorators included; log lines and EMF documents are written to
/dev/null). Time spent inside the SDK call (botocore's ``client._make_api_call``: serialization,
the HTTP round trip to moto and moto's own work) is measured apart from the rest (our code,
Powertools, msgspec), which is the Python work a larger memory size would speed up.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from tasks.contract import names

REGION: Final = "us-east-1"
TASKS: Final = names.TASKS


@dataclass
class WarmResult:
    task: str
    size: int
    total_ms: list[float] = field(default_factory=list)
    aws_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.total_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.total_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]

    @property
    def aws_median(self) -> float:
        return statistics.median(self.aws_ms)

    @property
    def python_median(self) -> float:
        return statistics.median(t - a for t, a in zip(self.total_ms, self.aws_ms, strict=True))


class _Context:
    """The parts of a LambdaContext Powertools reads."""

    function_name = "UploadService-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:UploadService-bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 3000


class CallTimer:
    """Accumulates the time spent inside botocore API calls, of every client (the tasks' shared
    ones and any a task creates itself, e.g. record's tighter-budget client)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Time every ``BaseClient._make_api_call`` while inside (installed after the handlers
        were imported, so the X-Ray patch's own work counts as part of the call, as on Lambda)."""
        from botocore.client import BaseClient

        original: Callable[..., Any] = BaseClient._make_api_call
        timer = self

        def timed(client: Any, operation: str, params: dict[str, Any]) -> Any:
            timer._depth += 1
            started = time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                timer._depth -= 1
                if timer._depth == 0:  # a call made inside a call is counted once
                    timer.seconds += time.perf_counter() - started

        BaseClient._make_api_call = timed
        try:
            yield
        finally:
            BaseClient._make_api_call = original


def body(size: int, index: int) -> dict[str, Any]:
    data = (index.to_bytes(4, "big") + os.urandom(size))[:size]
    return {
        "productId": "BENCH-001",
        "productName": "Benchmark product",
        "price": 12.34,
        "fileName": f"file-{size}-{index}.bin",
        "fileContent": base64.b64encode(data).decode("ascii"),
    }


@contextlib.contextmanager
def quiet(logger: Any) -> Iterator[None]:
    """Log lines and EMF documents go to /dev/null (still formatted and written)."""
    with open(os.devnull, "w") as sink:
        streams = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
        previous = [h.setStream(sink) for h in streams]
        try:
            with contextlib.redirect_stdout(sink):
                yield
        finally:
            for handler, stream in zip(streams, previous, strict=True):
                handler.setStream(stream if stream is not None else io.StringIO())


def measure(sizes: list[int], calls: int, warmup: int = 5) -> list[WarmResult]:
    """``calls`` timed handler calls per task and size (after ``warmup`` untimed ones)."""
    from moto import mock_aws

    from infra.functions import COMMON_ENVIRONMENT

    environment = {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        **COMMON_ENVIRONMENT,
        names.UPLOAD_BUCKET_NAME: "bench-uploads",
        names.METADATA_TABLE_NAME: "bench-metadata",
    }
    saved = {name: os.environ.get(name) for name in [*environment, "AWS_ENDPOINT_URL"]}
    os.environ.update(environment)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            return _measure(sizes, calls, warmup)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _measure(sizes: list[int], calls: int, warmup: int) -> list[WarmResult]:
    import boto3

    from tasks.core import aws
    from tasks.core.observability import logger

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=os.environ[names.UPLOAD_BUCKET_NAME])
    s3.put_bucket_versioning(
        Bucket=os.environ[names.UPLOAD_BUCKET_NAME], VersioningConfiguration={"Status": "Enabled"}
    )
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    os.environ[names.UPLOAD_KEY_ARN] = key
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=os.environ[names.METADATA_TABLE_NAME],
        KeySchema=[
            {"AttributeName": "productId", "KeyType": "HASH"},
            {"AttributeName": "productName", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "productId", "AttributeType": "S"},
            {"AttributeName": "productName", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    aws.clear_clients()
    handlers = {t: importlib.import_module(f"tasks.{t}").handler for t in TASKS}
    timer = CallTimer()
    results: list[WarmResult] = []
    with quiet(logger), timer.installed():
        for size in sizes:
            found = {t: WarmResult(t, size) for t in TASKS}
            for index in range(warmup + calls):
                _one_upload(handlers, timer, size, index, found if index >= warmup else None)
            results.extend(found.values())
    aws.clear_clients()
    return results


def _one_upload(
    handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]],
    timer: CallTimer,
    size: int,
    index: int,
    found: dict[str, WarmResult] | None,
) -> None:
    request_id = str(uuid.uuid4())
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    request = body(size, index)

    def call(task: str, event: dict[str, Any]) -> dict[str, Any]:
        before = timer.seconds
        t0 = time.perf_counter()
        result = handlers[task](event, _Context())
        elapsed = time.perf_counter() - t0
        if found is not None:
            found[task].total_ms.append(elapsed * 1000)
            found[task].aws_ms.append((timer.seconds - before) * 1000)
        return result

    upload = call("validate", {"requestId": request_id, "idempotencyKey": None, "body": request})
    stored = call(
        "store",
        {
            "requestId": request_id,
            "upload": upload,
            "fileContent": request["fileContent"],
            "attempt": 0,
            "startedAt": started_at,
        },
    )
    call("record", {"requestId": request_id, "upload": upload, "stored": stored})
    # Compensate undoes both: the item record just wrote (a read and a delete) and the version
    # store created (one list, one head, one delete).
    call(
        "compensate",
        {
            "requestId": request_id,
            "productId": upload["productId"],
            "productName": upload["productName"],
            "s3Key": upload["s3Key"],
            "startedAt": started_at,
        },
    )
