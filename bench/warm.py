"""Warm handler time: each workflow task's Lambda handler called again and again in one process
against moto in-process (``mock_aws``), for a ``MAX_FILE_BYTES`` file and a 1 KB file.

Each timed round is one upload as the state machine runs it (infra/state_machine.py): Validate,
Store and Record on the happy path, then Compensate as after a Record that timed out once its
write had landed (the compensation path's heaviest case: it fences the request in the ledger,
undoes the metadata item, deletes the stored version and releases the item's lease). Every
task gets the payload its Task state passes, with the client's body as JSON text.

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
import json
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from tasks.contract import idempotency, ledger, names
from tasks.contract.errors import TIMEOUT_ERROR

REGION: Final = "us-east-1"
# The tasks one upload runs, happy path then compensation (report runs only when compensate
# crashed, the sweep on a schedule: cold init measures them, not this).
TASKS: Final = (names.VALIDATE, names.STORE, names.RECORD, names.COMPENSATE)


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


def body(size: int, index: int) -> str:
    """The client's body as the JSON text API Gateway passes on (the workflow's ``$.body``)."""
    data = (index.to_bytes(4, "big") + os.urandom(size))[:size]
    return json.dumps(
        {
            "productId": "BENCH-001",
            "productName": "Benchmark product",
            "price": 12.34,
            "fileName": f"file-{size}-{index}.bin",
            "fileContent": base64.b64encode(data).decode("ascii"),
        }
    )


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
        names.IDEMPOTENCY_TABLE_NAME: "bench-claims",
        names.LEDGER_TABLE_NAME: "bench-ledger",
        # moto's in-process stub answers in botocore's ``before-send`` event, ahead of the tasks'
        # deadline hook (tasks.core.aws), so that hook counts moto's own work (tens of ms for
        # the ledger's transactions, more on a busy machine) as time already spent: record's
        # 0.75 s deadline could refuse a call moto has already applied. The scale stretches the
        # deadline as local mode does; with mock_aws no socket is opened, so it changes nothing
        # else that is timed.
        names.SDK_TIMEOUT_SCALE: "16",
    }
    touched = [*environment, "AWS_ENDPOINT_URL", names.UPLOAD_KEY_ARN]
    saved = {name: os.environ.get(name) for name in touched}
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
    _create_tables(boto3.client("dynamodb", region_name=REGION))
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


def _create_tables(dynamodb: Any) -> None:
    """The metadata, idempotency and ledger tables as infra/storage.py defines them (keys, the
    ledger's OpenIntents index, the TTL attributes)."""
    dynamodb.create_table(
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
    dynamodb.create_table(
        TableName=os.environ[names.IDEMPOTENCY_TABLE_NAME],
        KeySchema=[{"AttributeName": idempotency.KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": idempotency.KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=os.environ[names.LEDGER_TABLE_NAME],
        BillingMode="PAY_PER_REQUEST",
        **ledger.table_schema(),
    )
    for table, attribute in (
        (names.IDEMPOTENCY_TABLE_NAME, idempotency.EXPIRES_ATTRIBUTE),
        (names.LEDGER_TABLE_NAME, ledger.EXPIRES_AT),
    ):
        dynamodb.update_time_to_live(
            TableName=os.environ[table],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )


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

    # Validate: the execution input (no Idempotency-Key; the caller's id as API Gateway gives it).
    upload = call(
        "validate",
        {"requestId": request_id, "idempotencyKey": None, "caller": "bench", "body": request},
    )
    # Store: the upload, the body text again (the file is in it) and the execution's context.
    stored = call(
        "store",
        {
            "requestId": request_id,
            "upload": upload,
            "body": request,
            "attempt": 0,
            "startedAt": started_at,
        },
    )
    # DiscardFileContent moves Store's result to $.stored; Record gets it beside the upload.
    call("record", {"requestId": request_id, "upload": upload, "stored": stored})
    # Compensate, as after Record timed out once its write had landed (RecordFailed): it fences
    # the intent, undoes the item record wrote (a read and a delete), deletes the version store
    # created (one list, one head, one delete) and releases the lease (already gone: one
    # conditional delete).
    call(
        "compensate",
        {
            "requestId": request_id,
            "attempt": 0,
            "productId": upload["productId"],
            "productName": upload["productName"],
            "s3Key": upload["s3Key"],
            "startedAt": started_at,
            "idempotencyId": upload.get("idempotencyId"),
            "failedState": names.RECORD_STATE,
            "error": TIMEOUT_ERROR,
        },
    )
